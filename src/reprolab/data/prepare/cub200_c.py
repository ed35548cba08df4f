"""Distorted CUB-200-2011 for URIE -> manifests built with `reprolab.data.corruptions`.

Every image is cropped to its CUB bounding box and resized to `CROP` x `CROP` (256, as URIE;
the tiny profile uses `tiny.crop_size`), then:
- `train` (official training images), clean, and `train_distorted`: every training image under
  each of the 15 seen corruptions at each severity 1-5 (ids `<image id>@<corruption>-<severity>`),
  the pre-generated pool URIE's loader samples from: per sample and epoch one of 16 options
  (15 corruptions or clean, `corruptions.draw(rng, SEEN, clean=True)`) and a severity. Training
  thus needs no corruption code on the GPU machine. Option `train_distorted: false` skips it
  (then the loader can corrupt on the fly with `corruptions.corrupt`).
- `test_clean`: the official test images, undistorted.
- `test_seen` / `test_unseen`: each test image once, with one corruption drawn uniformly from
  the 15 seen / 4 unseen ones and a severity uniform in 1-5, fixed by `SEED` and the image id
  (as URIE's tng_tsfrm_validation.csv / val_tsfrm_validation.csv, which hold the authors' own
  draws). Sample id `<image id>@<corruption>-<severity>`; columns `corruption`, `severity`.

Payload `image`: JPEG (quality 95; URIE's distorted CUB is JPEG too). Labels index the 200
classes. Extra columns: `path`, `corruption` ("clean" when none), `severity` (0 when none).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from reprolab.data import corruptions
from reprolab.data.prepare import PrepareContext, SampleSpec, SplitPlan
from reprolab.data.prepare.cub200 import ARCHIVE, read_cub

CROP = 256
SEED = 2020
JPEG_QUALITY = 95
SHARD_SIZE = 256


def default_options(ctx: PrepareContext) -> dict:
    return {"train_distorted": True}


def crop_size(ctx: PrepareContext) -> int:
    if ctx.profile == "full":
        return CROP
    size = ctx.card.tiny.get("crop_size", 64)
    if not isinstance(size, int) or size < corruptions.MIN_SIDE:
        raise ValueError(f"datasets/{ctx.card.id}/card.yaml key tiny.crop_size: {size!r}; "
                         f"expected an integer >= {corruptions.MIN_SIDE}")
    return size


def plan(ctx: PrepareContext) -> list[SplitPlan]:
    root = ctx.extracted_dir(ARCHIVE) / "CUB_200_2011"
    classes, records = read_cub(root)
    size = crop_size(ctx)
    splits: dict[str, list[SampleSpec]] = {"train": [], "train_distorted": [], "test_clean": [],
                                           "test_seen": [], "test_unseen": []}
    if not ctx.options.get("train_distorted", True):
        del splits["train_distorted"]

    def spec(r, name=None, severity=0, seed=None) -> SampleSpec:
        sample_id = r["id"] if name is None else f"{r['id']}@{name}-{severity}"
        source = {"file": str(r["file"]), "box": [r["bbox_x"], r["bbox_y"], r["bbox_w"], r["bbox_h"]],
                  "size": size, "corruption": name, "severity": severity, "seed": seed}
        return SampleSpec(id=sample_id, label=r["label"], source=source,
                          extra={"path": r["path"], "corruption": name or "clean", "severity": severity})

    for r in records:
        if r["is_training_image"]:
            splits["train"].append(spec(r))
            if "train_distorted" in splits:
                for c, name in enumerate(corruptions.SEEN):
                    for severity in corruptions.SEVERITIES:
                        seed = [SEED, int(r["id"]), 100 + c, severity]
                        splits["train_distorted"].append(spec(r, name, severity, seed=seed))
            continue
        splits["test_clean"].append(spec(r))
        for stream, (split, names) in enumerate((("test_seen", corruptions.SEEN),
                                                  ("test_unseen", corruptions.UNSEEN)), 1):
            seed = [SEED, int(r["id"]), stream]  # one random stream per image and test split
            name, severity = corruptions.draw(np.random.RandomState(seed), names)
            splits[split].append(spec(r, name, severity, seed=[*seed, 1]))
    return [SplitPlan(name, classes, samples) for name, samples in splits.items()]


def encode(spec: SampleSpec, options: dict) -> dict:
    from PIL import Image

    source = spec.source
    x, y, w, h = source["box"]
    with Image.open(Path(source["file"])) as image:
        crop = image.convert("RGB").crop((int(x), int(y), int(x + w), int(y + h)))
        crop = crop.resize((source["size"], source["size"]), Image.BILINEAR)
    pixels = np.asarray(crop)
    if source["corruption"] is not None:
        pixels = corruptions.corrupt(pixels, source["corruption"], source["severity"],
                                     rng=np.random.RandomState(source["seed"]))
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return {"image": buffer.getvalue()}
