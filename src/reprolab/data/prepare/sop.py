"""Stanford Online Products -> manifests: Ebay_train.txt (train) and Ebay_test.txt (test).

Sample id = the image path (unique across both lists; the list ids restart per file).
Each split's labels index its own products (11,318 train / 11,316 test classes, named by their
class_id); extra columns: `class_id`, `super_class_id`, `path`.
"""

from __future__ import annotations

from reprolab.data.prepare import PrepareContext, SampleSpec, SplitPlan
from reprolab.data.prepare.image_files import encode_image, read_rows, require

ARCHIVE = "Stanford_Online_Products.zip"
HEADER = ["image_id", "class_id", "super_class_id", "path"]
SHARD_SIZE = 512


def read_list(path) -> list[list[str]]:
    rows = read_rows(require(path, path.name), 4)
    if not rows or rows[0] != HEADER:
        raise ValueError(f"{path}: expected the header line `{' '.join(HEADER)}`")
    return rows[1:]


def plan(ctx: PrepareContext) -> list[SplitPlan]:
    root = ctx.extracted_dir(ARCHIVE) / "Stanford_Online_Products"
    plans = []
    for split, name in (("train", "Ebay_train.txt"), ("test", "Ebay_test.txt")):
        rows = read_list(root / name)
        classes = sorted({int(class_id) for _, class_id, _, _ in rows})
        index = {c: i for i, c in enumerate(classes)}
        samples = [SampleSpec(id=path, label=index[int(class_id)], source=str(root / path),
                              extra={"class_id": int(class_id), "super_class_id": int(super_id),
                                     "path": path})
                   for _, class_id, super_id, path in rows]
        plans.append(SplitPlan(split, [str(c) for c in classes], samples))
    return plans


def encode(spec: SampleSpec, options: dict) -> dict:
    return encode_image(spec.source)
