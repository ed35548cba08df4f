"""FineGym -> manifests gym99_train, gym99_val, gym288_train, gym288_val: the annotated element
instances cut from the YouTube videos you supplied.

An element id `<youtube id>_E_<s>_<e>_A_<s>_<e>` names its event and its segment in the
annotation JSON; the cut is [event start + segment start, event start + segment end] seconds
(the segment's stage timestamps are relative to the event; multi-stage elements span the first
stage's start to the last stage's end), as mmaction2's trim_event / trim_subaction do in two
steps. Gym99 and Gym288 share elements under different labels, so ids are prefixed `gym99/` and
`gym288/` (an element of both is stored twice); option `subsets` limits which are prepared.
Class names are the label numbers (the lists carry no names). Elements whose video you could not
supply are skipped with a warning.
"""

from __future__ import annotations

import json
import warnings

from reprolab.data.prepare import PrepareContext, PrepareError, SampleSpec, SplitPlan
from reprolab.data.prepare.image_files import read_rows
from reprolab.data.prepare.video_files import default_options as video_defaults
from reprolab.data.prepare.video_files import encode_video

ANNOTATION = "finegym_annotation_info_v1.1.json"
LISTS = {"gym99_train": "gym99_train_element_v1.1.txt", "gym99_val": "gym99_val_element.txt",
         "gym288_train": "gym288_train_element_v1.1.txt", "gym288_val": "gym288_val_element.txt"}
CLASSES = {"gym99": 99, "gym288": 288}
VIDEOS = "finegym_videos.tar"
SHARD_SIZE = 128


def default_options(ctx: PrepareContext) -> dict:
    return {**video_defaults(ctx), "subsets": ["gym99", "gym288"]}


def element_window(annotation: dict, element_id: str) -> tuple[str, float, float]:
    """(youtube id, start s, end s) of an element id, from the annotation JSON."""
    try:
        head, segment = element_id.rsplit("_A_", 1)
        ytid, event = head.rsplit("_E_", 1)
        event_anno = annotation[ytid][f"E_{event}"]
        stages = event_anno["segments"][f"A_{segment}"]["timestamps"]
        event_start = float(event_anno["timestamps"][0][0])
    except (ValueError, KeyError, IndexError, TypeError):
        raise PrepareError(f"{ANNOTATION}: no annotation for element {element_id!r}") from None
    return ytid, event_start + float(stages[0][0]), event_start + float(stages[-1][1])


def plan(ctx: PrepareContext) -> list[SplitPlan]:
    try:
        annotation = json.loads(ctx.raw_file(ANNOTATION).read_text(encoding="utf-8"))
    except ValueError as error:
        raise PrepareError(f"{ctx.layout.raw_file(ANNOTATION)}: not valid JSON ({error})") from None
    videos = ctx.extracted_dir(VIDEOS)
    subsets = ctx.options.get("subsets", list(CLASSES))
    plans = []
    for split, filename in LISTS.items():
        subset = split.split("_")[0]
        if subset not in subsets:
            continue
        classes = [str(i) for i in range(CLASSES[subset])]
        samples, missing = [], set()
        for element_id, label in read_rows(ctx.raw_file(filename), 2):
            ytid, start, end = element_window(annotation, element_id)
            video = videos / f"{ytid}.mp4"
            if not video.is_file():
                missing.add(ytid)
                continue
            samples.append(SampleSpec(id=f"{subset}/{element_id}", label=int(label),
                                      source={"path": str(video), "start": start, "end": end},
                                      extra={"youtube_id": ytid, "start_s": start, "end_s": end}))
        if missing:
            warnings.warn(f"finegym/{split}: the videos of {len(missing)} YouTube ids are missing in "
                          f"{videos} (e.g. {sorted(missing)[:3]}); their elements are skipped",
                          stacklevel=2)
        plans.append(SplitPlan(split, classes, samples))
    return plans


def encode(spec: SampleSpec, options: dict) -> dict:
    return encode_video(spec, options)
