"""Something-Something V1: JPEG frame folders -> frame shards (the JPEG bytes are kept as they are).

Classes: the names of `something-something-v1-labels.csv`, sorted alphabetically (TSM's
gen_label_sthv1.py does this; it is the class order SELFY and MotionSqueeze hard-code).
Splits: `something-something-v1-{train,validation}.csv`, lines `id;label`. Samples are ordered by
numeric video id. Frames are `%05d.jpg` in `20bn-something-something-v1/<id>/`.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from reprolab.data.prepare import PrepareContext, PrepareError, SampleSpec, SplitPlan

ARCHIVE = "20bn-something-something-v1.tar"
ROOT_DIR = "20bn-something-something-v1"
LABELS = "something-something-v1-labels.csv"
SPLITS = {"train": "something-something-v1-train.csv",
          "validation": "something-something-v1-validation.csv"}
SHARD_SIZE = 128
VERSION = 1


def read_classes(path: Path) -> list[str]:
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(set(names)) != len(names):
        raise PrepareError(f"{path}: duplicate class names")
    return sorted(names)


def read_split(path: Path, class_index: dict[str, int]) -> list[tuple[str, int]]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        video_id, sep, label = line.partition(";")
        if not sep or not video_id.strip().isdigit():
            raise PrepareError(f"{path}:{number}: expected `id;label`, got {line!r}")
        if label.strip() not in class_index:
            raise PrepareError(f"{path}:{number}: label {label.strip()!r} is not in {LABELS}")
        rows.append((video_id.strip(), class_index[label.strip()]))
    return sorted(rows, key=lambda row: int(row[0]))


def frames_root(ctx: PrepareContext) -> Path:
    extracted = ctx.extracted_dir(ARCHIVE)
    inner = extracted / ROOT_DIR
    return inner if inner.is_dir() else extracted


def plan(ctx: PrepareContext) -> list[SplitPlan]:
    classes = read_classes(ctx.raw_file(LABELS))
    index = {name: i for i, name in enumerate(classes)}
    root = frames_root(ctx)
    plans = []
    for split, filename in SPLITS.items():
        samples, missing = [], []
        for video_id, label in read_split(ctx.raw_file(filename), index):
            folder = root / video_id
            if folder.is_dir():
                samples.append(SampleSpec(video_id, label, str(folder)))
            else:
                missing.append(video_id)
        if missing:
            warnings.warn(f"sthv1/{split}: {len(missing)} listed videos have no frame folder in "
                          f"{root} (e.g. {missing[:5]})", stacklevel=2)
        plans.append(SplitPlan(split, classes, samples))
    return plans


def encode(spec: SampleSpec, options: dict) -> dict:
    files = sorted(Path(spec.source).glob("*.jpg"))
    if not files:
        raise PrepareError(f"{spec.source}: no %05d.jpg frames")
    return {"frames": [f.read_bytes() for f in files]}
