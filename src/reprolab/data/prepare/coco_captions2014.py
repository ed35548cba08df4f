"""COCO 2014 captions, Karpathy split -> manifests `train` (train + restval), `val`, `test`.

The split comes from caption_datasets.zip's dataset_coco.json; the captions from COCO's own
annotations/captions_{train,val}2014.json (`captions`: a JSON list of the raw sentences, in
annotation id order). Sample id = the COCO image id. Label -1 (captions are not classes).
"""

from __future__ import annotations

import json
from collections import defaultdict

from reprolab.data.prepare import PrepareContext, PrepareError, SampleSpec, SplitPlan
from reprolab.data.prepare.image_files import encode_image, require

SPLITS = {"train": ("train", "restval"), "val": ("val",), "test": ("test",)}
SHARD_SIZE = 256


def read_json(path):
    try:
        return json.loads(require(path, path.name).read_text(encoding="utf-8"))
    except ValueError as error:
        raise PrepareError(f"{path}: not valid JSON ({error})") from None


def plan(ctx: PrepareContext) -> list[SplitPlan]:
    karpathy = read_json(ctx.extracted_dir("caption_datasets.zip") / "dataset_coco.json")
    annotations = ctx.extracted_dir("annotations_trainval2014.zip") / "annotations"
    captions: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for part in ("train", "val"):
        for a in read_json(annotations / f"captions_{part}2014.json")["annotations"]:
            captions[a["image_id"]].append((a["id"], a["caption"].strip()))
    folders = {part: ctx.extracted_dir(f"{part}2014.zip") / f"{part}2014" for part in ("train", "val")}
    samples: dict[str, list[SampleSpec]] = {name: [] for name in SPLITS}
    owner = {k: name for name, kinds in SPLITS.items() for k in kinds}
    for record in sorted(karpathy["images"], key=lambda r: r["cocoid"]):
        if record["split"] not in owner:
            raise PrepareError(f"dataset_coco.json: image {record['cocoid']} has split {record['split']!r}")
        part = record["filepath"].removesuffix("2014")
        if part not in folders or not captions.get(record["cocoid"]):
            raise PrepareError(f"dataset_coco.json: image {record['cocoid']} ({record['filepath']}) "
                               "has no COCO 2014 image folder or no captions")
        texts = [text for _, text in sorted(captions[record["cocoid"]])]
        samples[owner[record["split"]]].append(SampleSpec(
            id=str(record["cocoid"]), label=-1,
            source=str(require(folders[part] / record["filename"], record["filename"])),
            extra={"file_name": record["filename"], "karpathy_split": record["split"],
                   "captions": json.dumps(texts)}))
    return [SplitPlan(name, None, specs) for name, specs in samples.items()]


def encode(spec: SampleSpec, options: dict) -> dict:
    return encode_image(spec.source)
