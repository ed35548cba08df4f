"""UCF-101 -> manifests train1, test1, train2, test2, train3, test3: the three official folds.

Fold k comes from trainlist0k.txt / testlist0k.txt (9,537 / 3,783 clips in fold 1). As for
HMDB-51 the folds reuse the clips, so ids are `<k>/<clip>` and a clip is stored once per fold;
option `folds` (default [1, 2, 3]) prepares fewer. Labels follow classInd.txt (index - 1). A
clip listed under another class than its folder, or missing from some fold, fails.
"""

from __future__ import annotations

from reprolab.data.prepare import PrepareContext, PrepareError, SampleSpec, SplitPlan
from reprolab.data.prepare.image_files import read_rows, require
from reprolab.data.prepare.video_files import default_options as video_defaults
from reprolab.data.prepare.video_files import encode_video

VIDEOS = "UCF101.rar"
SPLITS = "UCF101TrainTestSplits-RecognitionTask.zip"
SHARD_SIZE = 64


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


def default_options(ctx: PrepareContext) -> dict:
    return {**video_defaults(ctx), "folds": [1, 2, 3]}


def plan(ctx: PrepareContext) -> list[SplitPlan]:
    lists = ctx.extracted_dir(SPLITS) / "ucfTrainTestlist"
    classes = read_class_index(lists / "classInd.txt")
    tags = read_folds(lists, classes)
    root = ctx.extracted_dir(VIDEOS) / "UCF-101"
    clips, unlisted = [], []
    for label, name in enumerate(classes):
        for path in sorted(require(root / name, f"class folder {name}").glob("*.avi")):
            clip_tags = tags.pop(f"{name}/{path.name}", None)
            if clip_tags is None or "" in clip_tags:
                unlisted.append(path.name)
            else:
                clips.append((path, label, clip_tags))
    if unlisted or tags:
        raise PrepareError(f"ucf101: {len(unlisted)} clips missing from some fold's lists "
                           f"(e.g. {unlisted[:3]}), {len(tags)} listed clips not found "
                           f"(e.g. {sorted(tags)[:3]})")
    plans = []
    for fold in ctx.options.get("folds", [1, 2, 3]):
        for part in ("train", "test"):
            samples = [SampleSpec(id=f"{fold}/{path.stem}", label=label, source=str(path),
                                  extra={"clip": path.stem})
                       for path, label, clip_tags in clips if clip_tags[fold - 1] == part]
            plans.append(SplitPlan(f"{part}{fold}", classes, samples))
    return plans


def encode(spec: SampleSpec, options: dict) -> dict:
    return encode_video(spec, options)
