"""DeepFashion In-Shop -> manifests: train, query and gallery (list_eval_partition.txt).

Sample id = the image path. Train labels index the training items; query and gallery share one
label space (the 3,985 test items), so a query's positives are the gallery images with its
label. Class names are the item ids; extra column: `path`.
"""

from __future__ import annotations

from reprolab.data.prepare import PrepareContext, SampleSpec, SplitPlan
from reprolab.data.prepare.image_files import encode_image, read_rows, require

ARCHIVE = "img.zip"
PARTITION = "list_eval_partition.txt"
SHARD_SIZE = 512
STATUSES = ("train", "query", "gallery")


def read_partition(path) -> list[list[str]]:
    with open(path, encoding="utf-8") as handle:
        first = handle.readline().strip()
    if not first.isdigit():
        raise ValueError(f"{path}:1: expected the image count, got {first!r}")
    rows = read_rows(path, 3, skip=1)
    if not rows or rows[0] != ["image_name", "item_id", "evaluation_status"]:
        raise ValueError(f"{path}:2: expected the header `image_name item_id evaluation_status`")
    rows = rows[1:]
    if len(rows) != int(first):
        raise ValueError(f"{path}: line 1 announces {first} images, the file lists {len(rows)}")
    bad = [r for r in rows if r[2] not in STATUSES]
    if bad:
        raise ValueError(f"{path}: unknown evaluation_status {bad[0][2]!r} (expected {STATUSES})")
    return rows


def plan(ctx: PrepareContext) -> list[SplitPlan]:
    rows = read_partition(ctx.raw_file(PARTITION))
    root = ctx.extracted_dir(ARCHIVE)
    train_items = sorted({item for _, item, status in rows if status == "train"})
    test_items = sorted({item for _, item, status in rows if status != "train"})
    plans = []
    for split in STATUSES:
        items = train_items if split == "train" else test_items
        index = {item: i for i, item in enumerate(items)}
        samples = [SampleSpec(id=path, label=index[item], source=str(require(root / path, path)),
                              extra={"path": path})
                   for path, item, status in rows if status == split]
        plans.append(SplitPlan(split, items, samples))
    return plans


def encode(spec: SampleSpec, options: dict) -> dict:
    return encode_image(spec.source)
