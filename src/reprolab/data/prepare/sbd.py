"""SBD -> manifests: `train` (8,498) and `val` (2,857) of benchmark_RELEASE/dataset.

Payload: `image` (SBD's JPEG) and `mask` (the GTcls class map as a VOC palette PNG, 0-20, no
void label). Label -1 (multi-label); `image_labels` names the classes present (CategoriesPresent).
"""

from __future__ import annotations

import numpy as np

from reprolab.data.prepare import PrepareContext, SampleSpec, SplitPlan
from reprolab.data.prepare.image_files import encode_image, require
from reprolab.data.prepare.voc2012 import VOC_CLASSES, mask_png, read_ids, sbd_mask

ARCHIVE = "benchmark.tgz"
SHARD_SIZE = 256


def classes_present(mat_path) -> list[str]:
    from scipy.io import loadmat

    mat = loadmat(require(mat_path, "the SBD mask"), squeeze_me=True, struct_as_record=False)
    present = sorted({int(c) for c in np.atleast_1d(mat["GTcls"].CategoriesPresent)})
    if any(not 1 <= c <= len(VOC_CLASSES) for c in present):
        raise ValueError(f"{mat_path}: CategoriesPresent {present} outside 1-20")
    return [VOC_CLASSES[c - 1] for c in present]


def plan(ctx: PrepareContext) -> list[SplitPlan]:
    root = ctx.extracted_dir(ARCHIVE) / "benchmark_RELEASE" / "dataset"
    plans = []
    for split in ("train", "val"):
        samples = []
        for image_id in read_ids(root / f"{split}.txt"):
            mat = require(root / "cls" / f"{image_id}.mat", f"SBD mask of {image_id}")
            image = require(root / "img" / f"{image_id}.jpg", f"image {image_id}")
            samples.append(SampleSpec(id=image_id, label=-1,
                                      source={"image": str(image), "mask": str(mat)},
                                      extra={"image_labels": " ".join(classes_present(mat))}))
        plans.append(SplitPlan(split, None, samples))
    return plans


def encode(spec: SampleSpec, options: dict) -> dict:
    return encode_image(spec.source["image"], mask=mask_png(sbd_mask(spec.source["mask"])))
