"""CUB-200-2011 -> manifests: the metric-learning split (classes 1-100 train, 101-200 test).

Sample id = the CUB image id. Labels index the 200 classes of classes.txt (so a test label
names the same class as in the paper's lists); train holds the first half of the classes, test
the second (Proxy Anchor, pytorch-metric-learning). Extra columns: `path` (as in images.txt),
`is_training_image` (the official classification split, for URIE-style use) and the bounding box
`bbox_x, bbox_y, bbox_w, bbox_h` in pixels.
"""

from __future__ import annotations

from reprolab.data.prepare import PrepareContext, SampleSpec, SplitPlan
from reprolab.data.prepare.image_files import encode_image, read_rows, require

ARCHIVE = "CUB_200_2011.tgz"
SHARD_SIZE = 256


def read_cub(root) -> tuple[list[str], list[dict]]:
    """(class names in id order, one record per image in id order) from a CUB_200_2011 folder."""
    classes = [name for _, name in read_rows(require(root / "classes.txt", "classes.txt"), 2)]
    paths = dict(read_rows(require(root / "images.txt", "images.txt"), 2))
    labels = dict(read_rows(require(root / "image_class_labels.txt", "image_class_labels.txt"), 2))
    train = dict(read_rows(require(root / "train_test_split.txt", "train_test_split.txt"), 2))
    boxes = {row[0]: [float(v) for v in row[1:]]
             for row in read_rows(require(root / "bounding_boxes.txt", "bounding_boxes.txt"), 5)}
    records = []
    for image_id in sorted(paths, key=int):
        for table, name in ((labels, "image_class_labels.txt"), (train, "train_test_split.txt"),
                            (boxes, "bounding_boxes.txt")):
            if image_id not in table:
                raise ValueError(f"{root / name}: no line for image {image_id}")
        label = int(labels[image_id]) - 1
        if not 0 <= label < len(classes):
            raise ValueError(f"{root / 'image_class_labels.txt'}: image {image_id} has class "
                             f"{label + 1}, but classes.txt lists {len(classes)}")
        x, y, w, h = boxes[image_id]
        records.append({"id": image_id, "label": label, "path": paths[image_id],
                        "file": root / "images" / paths[image_id],
                        "is_training_image": train[image_id] == "1",
                        "bbox_x": x, "bbox_y": y, "bbox_w": w, "bbox_h": h})
    return classes, records


def plan(ctx: PrepareContext) -> list[SplitPlan]:
    root = ctx.extracted_dir(ARCHIVE) / "CUB_200_2011"
    classes, records = read_cub(root)
    half = len(classes) // 2
    splits: dict[str, list[SampleSpec]] = {"train": [], "test": []}
    for r in records:
        extra = {k: r[k] for k in ("path", "is_training_image", "bbox_x", "bbox_y", "bbox_w", "bbox_h")}
        spec = SampleSpec(id=r["id"], label=r["label"], source=str(r["file"]), extra=extra)
        splits["train" if r["label"] < half else "test"].append(spec)
    return [SplitPlan(name, classes, samples) for name, samples in splits.items()]


def encode(spec: SampleSpec, options: dict) -> dict:
    return encode_image(spec.source)
