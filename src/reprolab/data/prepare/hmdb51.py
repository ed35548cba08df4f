"""HMDB-51 -> manifests train1, test1, train2, test2, train3, test3: the three official folds.

Fold k comes from testTrainMulti_7030_splits/<class>_test_split<k>.txt (tag 1 train, 2 test,
0 unused): 3,570 train / 1,530 test clips. The folds reuse the clips and prepared splits never
share samples, so ids are `<k>/<clip>` and a clip is stored once per fold that uses it (about
three times the frames of one copy); option `folds` (default [1, 2, 3]) prepares fewer.

hmdb51_org.rar holds one RAR per class; plan() unpacks those (safely, once) next to the outer
archive's folder. Labels index the sorted class names. Frames: every frame, JPEG, short side 256
(full profile), as MotionSqueeze's `ffmpeg -vf scale=-1:256`.
"""

from __future__ import annotations

from pathlib import Path

from reprolab.data.prepare import PrepareContext, PrepareError, SampleSpec, SplitPlan
from reprolab.data.prepare.image_files import read_rows
from reprolab.data.prepare.video_files import default_options as video_defaults
from reprolab.data.prepare.video_files import encode_video

VIDEOS = "hmdb51_org.rar"
SPLITS = "test_train_splits.rar"
SPLIT_DIR = "testTrainMulti_7030_splits"
TAGS = {"0": "unused", "1": "train", "2": "test"}
SHARD_SIZE = 64


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


def default_options(ctx: PrepareContext) -> dict:
    return {**video_defaults(ctx), "folds": [1, 2, 3]}


def plan(ctx: PrepareContext) -> list[SplitPlan]:
    videos = unpack_classes(ctx)
    classes = sorted(p.name for p in videos.iterdir() if p.is_dir())
    tags = read_folds(ctx.extracted_dir(SPLITS) / SPLIT_DIR, classes)
    clips, missing = [], []
    for label, name in enumerate(classes):
        for path in sorted((videos / name).rglob("*.avi")):
            if path.name not in tags or "" in tags[path.name]:
                missing.append(path.name)
            else:
                clips.append((path, label))
    if missing:
        raise PrepareError(f"hmdb51: {len(missing)} clips have no tag in every fold's split file, "
                           f"e.g. {missing[:3]}")
    plans = []
    for fold in ctx.options.get("folds", [1, 2, 3]):
        for part in ("train", "test"):
            samples = [SampleSpec(id=f"{fold}/{path.stem}", label=label, source=str(path),
                                  extra={"clip": path.stem})
                       for path, label in clips if tags[path.name][fold - 1] == part]
            plans.append(SplitPlan(f"{part}{fold}", classes, samples))
    return plans


def encode(spec: SampleSpec, options: dict) -> dict:
    return encode_video(spec, options)
