"""UCF-101 -> one manifest `all` (every clip once) with the three official folds as columns.

As for HMDB-51, the folds reuse the clips, so `fold1`, `fold2`, `fold3` say `train` or `test`
per clip (trainlist0k.txt / testlist0k.txt). Labels follow classInd.txt (index - 1). A clip
listed in a fold under another class than its folder, or not listed in some fold, fails.
"""

from __future__ import annotations

from reprolab.data.prepare import PrepareContext, PrepareError, SampleSpec, SplitPlan
from reprolab.data.prepare.image_files import read_rows, require
from reprolab.data.prepare.video_files import default_options, encode_video

VIDEOS = "UCF101.rar"
SPLITS = "UCF101TrainTestSplits-RecognitionTask.zip"
SHARD_SIZE = 64
__all__ = ["default_options", "encode", "plan"]


def read_class_index(path) -> list[str]:
    rows = read_rows(require(path, "classInd.txt"), 2)
    if [int(i) for i, _ in rows] != list(range(1, len(rows) + 1)):
        raise ValueError(f"{path}: class indices are not 1..{len(rows)} in order")
    return [name for _, name in rows]


def read_folds(lists, classes: list[str]) -> dict[str, list[str]]:
    folds: dict[str, list[str]] = {}
    for fold in (1, 2, 3):
        for clip, index in read_rows(require(lists / f"trainlist0{fold}.txt", "a train list"), 2):
            if classes[int(index) - 1] != clip.split("/")[0]:
                raise ValueError(f"{lists / f'trainlist0{fold}.txt'}: {clip} listed as class {index}")
            folds.setdefault(clip, [""] * 3)[fold - 1] = "train"
        for (clip,) in read_rows(require(lists / f"testlist0{fold}.txt", "a test list"), 1):
            folds.setdefault(clip, [""] * 3)[fold - 1] = "test"
    return folds


def plan(ctx: PrepareContext) -> list[SplitPlan]:
    lists = ctx.extracted_dir(SPLITS) / "ucfTrainTestlist"
    classes = read_class_index(lists / "classInd.txt")
    folds = read_folds(lists, classes)
    root = ctx.extracted_dir(VIDEOS) / "UCF-101"
    samples, unlisted = [], []
    for label, name in enumerate(classes):
        for path in sorted(require(root / name, f"class folder {name}").glob("*.avi")):
            tags = folds.pop(f"{name}/{path.name}", None)
            if tags is None or "" in tags:
                unlisted.append(path.name)
                continue
            samples.append(SampleSpec(id=path.stem, label=label, source=str(path),
                                      extra={"fold1": tags[0], "fold2": tags[1], "fold3": tags[2]}))
    if unlisted or folds:
        raise PrepareError(f"ucf101: {len(unlisted)} clips missing from some fold's lists "
                           f"(e.g. {unlisted[:3]}), {len(folds)} listed clips not found "
                           f"(e.g. {sorted(folds)[:3]})")
    return [SplitPlan("all", classes, samples)]


def encode(spec: SampleSpec, options: dict) -> dict:
    return encode_video(spec, options)
