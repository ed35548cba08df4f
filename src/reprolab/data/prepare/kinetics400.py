"""Kinetics-400 -> manifests `train` and `val` from the CSVs and the videos you supplied.

Class index = sorted label names of train.csv (400). A CSV row whose clip
<youtube_id>_<start:06d>_<end:06d>.mp4 is not in the supplied videos is skipped with a warning
naming how many are missing (many YouTube clips are gone; the card's counts are the published
ones, so prepare with --allow-count-mismatch and the difference is recorded). Frames at 25 fps,
short side 256, as MotionSqueeze's preprocessing (full profile; tiny keeps the fixture's).
"""

from __future__ import annotations

import csv
import warnings

from reprolab.data.prepare import PrepareContext, PrepareError, SampleSpec, SplitPlan
from reprolab.data.prepare.image_files import require
from reprolab.data.prepare.video_files import default_options as video_defaults
from reprolab.data.prepare.video_files import encode_video

ANNOTATIONS = "kinetics400.tar.gz"
VIDEOS = "kinetics400_videos.tar"
SPLITS = {"train": ("train.csv", "train"), "val": ("validate.csv", "val")}
COLUMNS = ["label", "youtube_id", "time_start", "time_end", "split"]
SHARD_SIZE = 64


def default_options(ctx: PrepareContext) -> dict:
    return {**video_defaults(ctx), "fps": 25 if ctx.profile == "full" else None}


def read_csv(path) -> list[dict[str, str]]:
    with open(require(path, path.name), newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames != COLUMNS:
            raise PrepareError(f"{path}: expected the header {','.join(COLUMNS)}, got {reader.fieldnames}")
        return list(reader)


def clip_name(row: dict[str, str]) -> str:
    return f"{row['youtube_id']}_{int(float(row['time_start'])):06d}_{int(float(row['time_end'])):06d}"


def plan(ctx: PrepareContext) -> list[SplitPlan]:
    annotations = ctx.extracted_dir(ANNOTATIONS) / "kinetics400"
    videos = ctx.extracted_dir(VIDEOS)
    tables = {split: read_csv(annotations / filename) for split, (filename, _) in SPLITS.items()}
    classes = sorted({row["label"] for row in tables["train"]})
    index = {name: i for i, name in enumerate(classes)}
    plans = []
    for split, (_, folder) in SPLITS.items():
        samples, missing = [], []
        for row in tables[split]:
            if row["label"] not in index:
                raise PrepareError(f"{annotations / SPLITS[split][0]}: label {row['label']!r} is "
                                   "not a training class")
            name = clip_name(row)
            video = videos / folder / f"{name}.mp4"
            if not video.is_file():
                missing.append(name)
                continue
            samples.append(SampleSpec(id=name, label=index[row["label"]], source=str(video),
                                      extra={"youtube_id": row["youtube_id"]}))
        if missing:
            warnings.warn(f"kinetics400/{split}: {len(missing)} of {len(tables[split])} listed "
                          f"clips are missing in {videos / folder} (e.g. {missing[:3]})", stacklevel=2)
        plans.append(SplitPlan(split, classes, samples))
    return plans


def encode(spec: SampleSpec, options: dict) -> dict:
    return encode_video(spec, options)
