"""MS-COCO 2014 detection -> manifests `train` (82,783) and `val` (40,504).

Payload `image` (the JPEG bytes). Label -1 (several objects per image); `objects` is a JSON list
of {"category", "category_id", "bbox": [x, y, w, h], "area", "iscrowd"} from
annotations/instances_<split>2014.json (polygons stay in the JSON: UBBR needs boxes only);
`image_labels` names the categories present. Images without annotations are kept, as in COCO.
"""

from __future__ import annotations

import json
from collections import defaultdict

from reprolab.data.prepare import PrepareContext, PrepareError, SampleSpec, SplitPlan
from reprolab.data.prepare.image_files import encode_image, require

YEAR = 2014
SHARD_SIZE = 256


def read_instances(path) -> tuple[dict, list[dict], dict[int, list[dict]]]:
    try:
        data = json.loads(require(path, path.name).read_text(encoding="utf-8"))
        categories = {c["id"]: c["name"] for c in data["categories"]}
        images = data["images"]
        by_image: dict[int, list[dict]] = defaultdict(list)
        for a in data["annotations"]:
            if a["category_id"] not in categories:
                raise PrepareError(f"{path}: annotation {a['id']} has unknown category {a['category_id']}")
            by_image[a["image_id"]].append(a)
    except (ValueError, KeyError, TypeError) as error:
        raise PrepareError(f"{path}: not a COCO instances file ({type(error).__name__}: {error})") from None
    return categories, images, by_image


def coco_plans(ctx: PrepareContext, year: int) -> list[SplitPlan]:
    annotations = ctx.extracted_dir(f"annotations_trainval{year}.zip") / "annotations"
    plans = []
    for split in ("train", "val"):
        categories, images, by_image = read_instances(annotations / f"instances_{split}{year}.json")
        folder = ctx.extracted_dir(f"{split}{year}.zip") / f"{split}{year}"
        samples = []
        for image in sorted(images, key=lambda im: im["id"]):
            objects = [{"category": categories[a["category_id"]], "category_id": a["category_id"],
                        "bbox": a["bbox"], "area": a["area"], "iscrowd": a["iscrowd"]}
                       for a in by_image.get(image["id"], [])]
            names = sorted({o["category"] for o in objects})
            samples.append(SampleSpec(
                id=str(image["id"]), label=-1,
                source=str(require(folder / image["file_name"], image["file_name"])),
                extra={"file_name": image["file_name"], "objects": json.dumps(objects),
                       "image_labels": " ".join(n.replace(" ", "_") for n in names)}))
        plans.append(SplitPlan(split, None, samples))
    return plans


def plan(ctx: PrepareContext) -> list[SplitPlan]:
    return coco_plans(ctx, YEAR)


def encode(spec: SampleSpec, options: dict) -> dict:
    return encode_image(spec.source)
