"""Diving48 -> manifests v1_train, v1_test, v2_train, v2_test: the two label versions apart.

V1 (original, noisy) and V2 (cleaned, 10/2020) label the same clips differently, so they are
separate splits with ids `v1/<vid_name>` and `v2/<vid_name>` (a clip in both versions is stored
once per version). Option `versions` (default both) prepares only some. Class names are the
vocabulary's attribute lists joined with "_" (e.g. "Back_15som_05Twis_FREE"); labels index them.
Extra columns: `vid_name`, `start_frame`, `end_frame`.
"""

from __future__ import annotations

import json
import warnings

from reprolab.data.prepare import PrepareContext, PrepareError, SampleSpec, SplitPlan
from reprolab.data.prepare.video_files import default_options as video_defaults
from reprolab.data.prepare.video_files import encode_video

ARCHIVE = "Diving48_rgb.tar.gz"
FILES = {"v1_train": "Diving48_train.json", "v1_test": "Diving48_test.json",
         "v2_train": "Diving48_V2_train.json", "v2_test": "Diving48_V2_test.json"}
SHARD_SIZE = 64


def default_options(ctx: PrepareContext) -> dict:
    return {**video_defaults(ctx), "versions": ["v1", "v2"]}


def read_json(path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise PrepareError(f"{path}: not valid JSON ({error})") from None


def plan(ctx: PrepareContext) -> list[SplitPlan]:
    vocab = read_json(ctx.raw_file("Diving48_vocab.json"))
    classes = ["_".join(entry) for entry in vocab]
    root = ctx.extracted_dir(ARCHIVE) / "rgb"
    versions = ctx.options.get("versions", ["v1", "v2"])
    plans = []
    for split, filename in FILES.items():
        version = split.split("_")[0]
        if version not in versions:
            continue
        samples, missing = [], []
        for number, entry in enumerate(read_json(ctx.raw_file(filename))):
            try:
                vid, label = str(entry["vid_name"]), int(entry["label"])
            except (KeyError, TypeError, ValueError):
                raise PrepareError(f"{ctx.layout.raw_file(filename)}: entry {number} lacks "
                                   f"vid_name/label: {entry!r}") from None
            if not 0 <= label < len(classes):
                raise PrepareError(f"{ctx.layout.raw_file(filename)}: {vid} has label {label}; "
                                   f"the vocabulary has {len(classes)} classes")
            video = root / f"{vid}.mp4"
            if not video.is_file():
                missing.append(vid)
                continue
            samples.append(SampleSpec(id=f"{version}/{vid}", label=label, source=str(video),
                                      extra={"vid_name": vid,
                                             "start_frame": int(entry.get("start_frame", -1)),
                                             "end_frame": int(entry.get("end_frame", -1))}))
        if missing:
            warnings.warn(f"diving48/{split}: {len(missing)} listed clips are missing in {root} "
                          f"(e.g. {missing[:5]})", stacklevel=2)
        plans.append(SplitPlan(split, classes, sorted(samples, key=lambda s: s.id)))
    return plans


def encode(spec: SampleSpec, options: dict) -> dict:
    return encode_video(spec, options)
