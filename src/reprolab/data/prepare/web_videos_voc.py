"""User-supplied web videos per VOC class -> one manifest `all` (label = the video's folder).

Layout (see the card): web_videos/<VOC class>/<any name>.{mp4,webm,mkv,avi}, packed as
web_videos.tar. Labels index the 20 VOC classes (voc2012's order). A folder that is not a VOC
class name fails (a typo would silently drop a class); classes without videos are reported.
"""

from __future__ import annotations

import warnings

from reprolab.data.prepare import PrepareContext, PrepareError, SampleSpec, SplitPlan
from reprolab.data.prepare.video_files import default_options, encode_video
from reprolab.data.prepare.voc2012 import VOC_CLASSES

ARCHIVE = "web_videos.tar"
SUFFIXES = (".mp4", ".webm", ".mkv", ".avi")
SHARD_SIZE = 32
__all__ = ["default_options", "encode", "plan"]


def plan(ctx: PrepareContext) -> list[SplitPlan]:
    root = ctx.extracted_dir(ARCHIVE) / "web_videos"
    if not root.is_dir():
        raise PrepareError(f"{ctx.layout.raw_file(ARCHIVE)}: expected a top-level folder "
                           "web_videos/ holding one folder per VOC class")
    folders = sorted(p.name for p in root.iterdir() if p.is_dir())
    unknown = [f for f in folders if f not in VOC_CLASSES]
    if unknown:
        raise PrepareError(f"{root}: folders {unknown} are not VOC class names; use exactly: "
                           f"{' '.join(VOC_CLASSES)}")
    samples, empty = [], []
    for label, name in enumerate(VOC_CLASSES):
        files = sorted(p for p in (root / name).rglob("*") if p.suffix.lower() in SUFFIXES) \
            if (root / name).is_dir() else []
        if not files:
            empty.append(name)
        samples += [SampleSpec(id=f"{name}/{p.relative_to(root / name).as_posix()}", label=label,
                               source=str(p)) for p in files]
    if empty:
        warnings.warn(f"web-videos-voc: no videos for {len(empty)} classes: {' '.join(empty)}",
                      stacklevel=2)
    if not samples:
        raise PrepareError(f"{root}: no videos ({', '.join(SUFFIXES)}) found")
    return [SplitPlan("all", list(VOC_CLASSES), samples)]


def encode(spec: SampleSpec, options: dict) -> dict:
    return encode_video(spec, options)
