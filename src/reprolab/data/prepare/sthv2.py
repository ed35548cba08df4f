"""Something-Something V2: WebM (VP9) videos -> JPEG frame shards at the native frame rate.

Classes: `something-something-v2-labels.json` maps class name -> index string; a sample's class
is its `template` with the brackets stripped, looked up there (TSM gen_label_sthv2.py).
Decoding uses PyAV (it bundles FFmpeg: no system ffmpeg needed) and keeps every frame, i.e. the
native ~12 fps that the SELFY/TSM lists use (~49 frames per video); never re-sample to 30 fps.
The full profile scales frames to height 256 keeping the aspect ratio (bicubic, as TSM's
`ffmpeg -vf scale=-1:256`); the tiny profile keeps the fixture's size. JPEG quality 95 (PIL)
stands in for ffmpeg's `-q:v 0`.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

from reprolab.data.prepare import PrepareContext, PrepareError, SampleSpec, SplitPlan

ARCHIVE = "20bn-something-something-v2.tar.gz"
ROOT_DIR = "20bn-something-something-v2"
LABELS = "something-something-v2-labels.json"
SPLITS = {"train": "something-something-v2-train.json",
          "validation": "something-something-v2-validation.json"}
SHARD_SIZE = 128
VERSION = 1


def default_options(ctx: PrepareContext) -> dict:
    return {"height": 256 if ctx.profile == "full" else None, "jpeg_quality": 95}


def class_name(template: str) -> str:
    return template.replace("[", "").replace("]", "")


def read_classes(path: Path) -> list[str]:
    try:
        mapping = json.loads(path.read_text(encoding="utf-8"))
        order = sorted(mapping.items(), key=lambda item: int(item[1]))
    except (ValueError, TypeError, AttributeError) as error:
        raise PrepareError(f"{path}: expected a JSON object of class name -> index ({error})") from None
    classes = [name for name, _ in order]
    if [int(index) for _, index in order] != list(range(len(classes))):
        raise PrepareError(f"{path}: class indices are not 0..{len(classes) - 1}")
    return classes


def read_split(path: Path, class_index: dict[str, int]) -> list[tuple[str, int, str]]:
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise PrepareError(f"{path}: not valid JSON ({error})") from None
    rows = []
    for number, entry in enumerate(entries):
        try:
            video_id, template = str(entry["id"]), entry["template"]
        except (KeyError, TypeError):
            raise PrepareError(f"{path}: entry {number} lacks `id` or `template`: {entry!r}") from None
        name = class_name(template)
        if name not in class_index:
            raise PrepareError(f"{path}: entry {number} (id {video_id}): class {name!r} is not in {LABELS}")
        rows.append((video_id, class_index[name], template))
    return sorted(rows, key=lambda row: int(row[0]))


def plan(ctx: PrepareContext) -> list[SplitPlan]:
    classes = read_classes(ctx.raw_file(LABELS))
    index = {name: i for i, name in enumerate(classes)}
    extracted = ctx.extracted_dir(ARCHIVE)
    root = extracted / ROOT_DIR if (extracted / ROOT_DIR).is_dir() else extracted
    plans = []
    for split, filename in SPLITS.items():
        samples, missing = [], []
        for video_id, label, template in read_split(ctx.raw_file(filename), index):
            video = root / f"{video_id}.webm"
            if video.is_file():
                samples.append(SampleSpec(video_id, label, str(video), {"template": template}))
            else:
                missing.append(video_id)
        if missing:
            warnings.warn(f"sthv2/{split}: {len(missing)} listed videos are missing in {root} "
                          f"(e.g. {missing[:5]})", stacklevel=2)
        plans.append(SplitPlan(split, classes, samples))
    return plans


def decode_to_jpeg(path: str, height: int | None, quality: int) -> list[bytes]:
    """Every frame of a video as JPEG bytes, optionally scaled to `height` (aspect kept)."""
    import av

    frames = []
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            if height is not None and frame.height != height:
                width = max(1, round(frame.width * height / frame.height))
                frame = frame.reformat(width=width, height=height, interpolation="BICUBIC")
            buffer = io.BytesIO()
            frame.to_image().save(buffer, format="JPEG", quality=quality)
            frames.append(buffer.getvalue())
    if not frames:
        raise PrepareError(f"{path}: no video frames decoded")
    return frames


def encode(spec: SampleSpec, options: dict) -> dict:
    return {"frames": decode_to_jpeg(spec.source, options.get("height"),
                                     int(options.get("jpeg_quality", 95)))}
