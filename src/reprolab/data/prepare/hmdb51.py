"""HMDB-51 -> one manifest `all` (every clip once) with the three official folds as columns.

The three folds reuse the same clips, and prepared splits must not share samples, so the clips
are stored once and `fold1`, `fold2`, `fold3` say `train`, `test` or `unused` per clip (from
testTrainMulti_7030_splits/<class>_test_split<k>.txt: tags 1, 2, 0). Fold k's training set is
`all` filtered on `fold<k> == "train"` (3,570 clips), its test set on `"test"` (1,530).

hmdb51_org.rar holds one RAR per class; plan() unpacks those (safely, once) next to the outer
archive's folder. Labels index the sorted class names. Frames: every frame, JPEG, short side 256
(full profile), as MotionSqueeze's `ffmpeg -vf scale=-1:256`.
"""

from __future__ import annotations

from pathlib import Path

from reprolab.data.prepare import PrepareContext, PrepareError, SampleSpec, SplitPlan
from reprolab.data.prepare.image_files import read_rows
from reprolab.data.prepare.video_files import default_options, encode_video

VIDEOS = "hmdb51_org.rar"
SPLITS = "test_train_splits.rar"
SPLIT_DIR = "testTrainMulti_7030_splits"
TAGS = {"0": "unused", "1": "train", "2": "test"}
SHARD_SIZE = 64
__all__ = ["default_options", "encode", "plan"]


def unpack_classes(ctx: PrepareContext) -> Path:
    """extracted/hmdb51_videos/<class>/<class>/<clip>.avi, one safe extraction per class RAR."""
    from reprolab.data.extract import extract_archive

    outer = ctx.extracted_dir(VIDEOS)
    inner = sorted(outer.glob("*.rar"))
    if not inner:
        raise PrepareError(f"{outer}: no per-class .rar archives inside {VIDEOS}")
    videos = ctx.layout.extracted / "hmdb51_videos"
    for archive in inner:
        target = videos / archive.stem
        if not target.is_dir():
            extract_archive(archive, target, progress=False)
    return videos


def read_folds(split_dir: Path, classes: list[str]) -> dict[str, list[str]]:
    """clip -> [tag of fold 1, 2, 3]."""
    folds: dict[str, list[str]] = {}
    for name in classes:
        for fold in (1, 2, 3):
            path = split_dir / f"{name}_test_split{fold}.txt"
            if not path.is_file():
                raise FileNotFoundError(f"{path}: split file missing from {SPLITS}")
            for clip, tag in read_rows(path, 2):
                if tag not in TAGS:
                    raise ValueError(f"{path}: tag {tag!r} for {clip} (expected 0, 1 or 2)")
                folds.setdefault(clip, [""] * 3)[fold - 1] = TAGS[tag]
    return folds


def plan(ctx: PrepareContext) -> list[SplitPlan]:
    videos = unpack_classes(ctx)
    classes = sorted(p.name for p in videos.iterdir() if p.is_dir())
    folds = read_folds(ctx.extracted_dir(SPLITS) / SPLIT_DIR, classes)
    samples, missing = [], []
    for label, name in enumerate(classes):
        for path in sorted((videos / name).rglob("*.avi")):
            tags = folds.get(path.name)
            if tags is None or "" in tags:
                missing.append(path.name)
                continue
            samples.append(SampleSpec(id=path.stem, label=label, source=str(path),
                                      extra={"fold1": tags[0], "fold2": tags[1], "fold3": tags[2]}))
    if missing:
        raise PrepareError(f"hmdb51: {len(missing)} clips have no tag in every fold's split file, "
                           f"e.g. {missing[:3]}")
    return [SplitPlan("all", classes, samples)]


def encode(spec: SampleSpec, options: dict) -> dict:
    return encode_video(spec, options)
