"""Cars-196 -> manifests: the metric-learning split (classes 1-98 train, 99-196 test).

Reads cars_annos.mat as Proxy Anchor does (`annotations`: relative_im_path, class 1-based) and
the images from car_ims.tgz. Sample id = the image file stem (000001 ...). Labels index all 196
classes (names from `class_names`). Extra columns: `path`, `is_test` (the official
classification split) and the box `bbox_x1, bbox_y1, bbox_x2, bbox_y2` (1-based, inclusive).
"""

from __future__ import annotations

from pathlib import PurePosixPath

from reprolab.data.prepare import PrepareContext, SampleSpec, SplitPlan
from reprolab.data.prepare.image_files import encode_image, require

ARCHIVE = "car_ims.tgz"
ANNOTATIONS = "cars_annos.mat"
SHARD_SIZE = 256


def _scalar(value):
    import numpy as np

    return np.asarray(value).reshape(-1)[0].item() if not isinstance(value, str) else value


def read_annotations(path) -> tuple[list[str], list[dict]]:
    from scipy.io import loadmat

    mat = loadmat(path, squeeze_me=True)
    for key in ("annotations", "class_names"):
        if key not in mat:
            raise ValueError(f"{path}: no variable {key!r} (is this cars_annos.mat?)")
    classes = [str(name) for name in mat["class_names"]]
    annotations = mat["annotations"]
    fields = annotations.dtype.names or ()
    missing = {"relative_im_path", "class", "test", "bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2"} - set(fields)
    if missing:
        raise ValueError(f"{path}: `annotations` lacks fields {sorted(missing)}")
    records = []
    for row in annotations.reshape(-1):
        label = int(_scalar(row["class"])) - 1
        if not 0 <= label < len(classes):
            raise ValueError(f"{path}: {row['relative_im_path']} has class {label + 1}; "
                             f"class_names lists {len(classes)}")
        records.append({"path": str(row["relative_im_path"]), "label": label,
                        "is_test": bool(_scalar(row["test"])),
                        **{k: int(_scalar(row[k])) for k in ("bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2")}})
    return classes, records


def plan(ctx: PrepareContext) -> list[SplitPlan]:
    classes, records = read_annotations(ctx.raw_file(ANNOTATIONS))
    images = ctx.extracted_dir(ARCHIVE)
    half = len(classes) // 2
    splits: dict[str, list[SampleSpec]] = {"train": [], "test": []}
    for r in records:
        file = require(images / r["path"], r["path"])
        extra = {k: r[k] for k in ("path", "is_test", "bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2")}
        spec = SampleSpec(id=PurePosixPath(r["path"]).stem, label=r["label"], source=str(file), extra=extra)
        splits["train" if r["label"] < half else "test"].append(spec)
    return [SplitPlan(name, classes, samples) for name, samples in splits.items()]


def encode(spec: SampleSpec, options: dict) -> dict:
    return encode_image(spec.source)
