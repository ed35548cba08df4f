"""ImageNet ILSVRC 2012 -> manifests `train` (1,281,167) and `val` (50,000).

Classes are the 1,000 leaf synsets of the devkit's meta.mat (num_children == 0) in sorted wnid
order, as torchvision's ImageNet; class names are the wnids (extra column `words`). The training
tar holds one uncompressed tar per class; those are not unpacked a second time (140 GB): plan()
reads their member headers and encode() reads each JPEG at its offset. Validation labels come
from ILSVRC2012_validation_ground_truth.txt (ILSVRC ids, mapped to wnids through meta.mat).
Sample id = the image file stem.
"""

from __future__ import annotations

import io
from pathlib import Path

from reprolab.data.prepare import PrepareContext, PrepareError, SampleSpec, SplitPlan
from reprolab.data.prepare.image_files import encode_image, require

TRAIN, VAL, DEVKIT = "ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar", "ILSVRC2012_devkit_t12.tar.gz"
SHARD_SIZE = 512


def read_meta(devkit) -> tuple[dict[int, str], dict[str, str]]:
    """({ILSVRC id: wnid}, {wnid: words}) of the leaf synsets, as torchvision's parse_meta_mat."""
    import numpy as np
    from scipy.io import loadmat

    path = require(devkit / "data" / "meta.mat", "meta.mat")
    synsets = loadmat(path, squeeze_me=True)["synsets"]
    ids, words = {}, {}
    for row in np.atleast_1d(synsets):
        if int(row["num_children"]) == 0:
            ids[int(row["ILSVRC2012_ID"])] = str(row["WNID"])
            words[str(row["WNID"])] = str(row["words"])
    if not ids:
        raise PrepareError(f"{path}: no leaf synsets")
    return ids, words


def tar_members(path) -> list[tuple[str, int, int]]:
    """(name, data offset, size) of the JPEG members of an uncompressed tar, headers only."""
    import tarfile

    try:
        with tarfile.open(path, mode="r:") as tar:
            return [(m.name, m.offset_data, m.size) for m in tar
                    if m.isfile() and m.name.upper().endswith(".JPEG")]
    except tarfile.TarError as error:
        raise PrepareError(f"{path}: not an uncompressed tar ({error})") from None


def plan(ctx: PrepareContext) -> list[SplitPlan]:
    devkit = ctx.extracted_dir(DEVKIT) / "ILSVRC2012_devkit_t12"
    ids, words = read_meta(devkit)
    classes = sorted(ids.values())
    index = {wnid: i for i, wnid in enumerate(classes)}
    outer = ctx.extracted_dir(TRAIN)
    train = []
    for wnid in classes:
        class_tar = require(outer / f"{wnid}.tar", f"{wnid}.tar")
        for name, offset, size in sorted(tar_members(class_tar)):
            train.append(SampleSpec(id=Path(name).stem, label=index[wnid],
                                    source={"tar": str(class_tar), "offset": offset, "size": size},
                                    extra={"words": words[wnid]}))
    truth_path = require(devkit / "data" / "ILSVRC2012_validation_ground_truth.txt", "the validation ground truth")
    truth = [int(line) for line in truth_path.read_text().split()]
    val_root = ctx.extracted_dir(VAL)
    val = []
    for n, ilsvrc_id in enumerate(truth, start=1):
        if ilsvrc_id not in ids:
            raise PrepareError(f"{truth_path}:{n}: ILSVRC id {ilsvrc_id} is not a leaf synset")
        wnid = ids[ilsvrc_id]
        path = require(val_root / f"ILSVRC2012_val_{n:08d}.JPEG", f"validation image {n}")
        val.append(SampleSpec(id=path.stem, label=index[wnid], source=str(path), extra={"words": words[wnid]}))
    return [SplitPlan("train", classes, train), SplitPlan("val", classes, val)]


def encode(spec: SampleSpec, options: dict) -> dict:
    if isinstance(spec.source, str):
        return encode_image(spec.source)
    from PIL import Image, UnidentifiedImageError

    with open(spec.source["tar"], "rb") as handle:  # a member of a class tar, read in place
        handle.seek(spec.source["offset"])
        data = handle.read(spec.source["size"])
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"{spec.source['tar']}: member {spec.id} is not a readable image ({error})") from None
    return {"image": data}
