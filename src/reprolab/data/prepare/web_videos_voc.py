"""User-supplied web videos per VOC class -> one manifest `all` (label = the video's query class).

Where the videos come from, first match wins:
- `--option videos=DIR`: DIR/<VOC class>/<any name>.{mp4,webm,mkv,avi} (or DIR/web_videos/<class>/...);
- `--option videos=LIST`: a text file, one video a line, `<VOC class> <path>` (a path relative to
  the list file's folder, spaces allowed in it; `#` starts a comment);
- the card's archive web_videos.tar (web_videos/<class>/...), fetched or placed in raw/.
With none of them, MissingDataError (exit 4) says how to assemble such a crawl (`HOW_TO`) and where.

Labels index the 20 VOC classes (voc2012's order). A folder or list entry that is not a VOC class
name fails (a typo would silently drop a class); classes without videos are reported. Frames are
decoded with PyAV and sampled at `fps` (5 per second in the full profile, every frame in the tiny
one) with the shorter side scaled to `short_side` (see video_files; NOTES.md says why).
"""

from __future__ import annotations

import warnings
from pathlib import Path

from reprolab.data.prepare import PrepareContext, PrepareError, SampleSpec, SplitPlan
from reprolab.data.prepare.video_files import encode_video
from reprolab.data.prepare.voc2012 import VOC_CLASSES
from reprolab.errors import MissingDataError

ARCHIVE = "web_videos.tar"
SUFFIXES = (".mp4", ".webm", ".mkv", ".avi")
SHARD_SIZE = 32
FULL_FPS = 5.0
__all__ = ["HOW_TO", "default_options", "encode", "plan"]

HOW_TO = (
    "The crawl of Hong et al. (arXiv 1701.00352) was never published, so supply your own. For each "
    "of the 20 VOC classes, search a video site with the class name as the query (the paper "
    "retrieved YouTube videos by class name; its counts of videos and frames per class are not "
    "known to us, see reproductions/web-videos-wsss/NOTES.md) and keep the returned videos "
    "unfiltered: the method's classifier rejects the irrelevant frames. Lay them out as "
    "DIR/<class>/<any name>.{mp4,webm,mkv,avi}, <class> one of: " + " ".join(VOC_CLASSES) + ". "
    "Then either run `reprolab data prepare web-videos-voc --option videos=DIR`, or pass a list "
    "file (`--option videos=LIST`, one `<class> <path>` a line, paths relative to the list), or "
    "pack `tar cf web_videos.tar web_videos` (DIR named web_videos) and place it in "
)


def default_options(ctx: PrepareContext) -> dict:
    full = ctx.profile == "full"
    return {"short_side": 256 if full else None, "fps": FULL_FPS if full else None,
            "jpeg_quality": 95}


def plan(ctx: PrepareContext) -> list[SplitPlan]:
    where, videos = _videos(ctx)
    unknown = sorted({name for name, _ in videos} - set(VOC_CLASSES))
    if unknown:
        raise PrepareError(f"{where}: {unknown} are not VOC class names; use exactly: "
                           f"{' '.join(VOC_CLASSES)}")
    samples = sorted((SampleSpec(id=f"{name}/{_short(name, path, where)}",
                                 label=VOC_CLASSES.index(name), source=str(path))
                      for name, path in videos), key=lambda s: (s.label, s.id))
    if not samples:
        raise MissingDataError(f"web-videos-voc: {where} holds no videos ({', '.join(SUFFIXES)}). "
                               + HOW_TO + f"{ctx.layout.raw}.")
    empty = [name for k, name in enumerate(VOC_CLASSES) if all(s.label != k for s in samples)]
    if empty:
        warnings.warn(f"web-videos-voc: no videos for {len(empty)} classes: {' '.join(empty)}",
                      stacklevel=2)
    ids = [s.id for s in samples]
    if len(set(ids)) != len(ids):
        raise PrepareError(f"{where}: a video is listed twice under one class")
    return [SplitPlan("all", list(VOC_CLASSES), samples)]


def encode(spec: SampleSpec, options: dict) -> dict:
    return encode_video(spec, options)


def _videos(ctx: PrepareContext) -> tuple[Path, list[tuple[str, Path]]]:
    """(where they were found, [(class folder or list entry, video path)])."""
    given = ctx.options.get("videos")
    if given is not None:
        path = Path(str(given)).expanduser()
        if path.is_dir():
            root = path / "web_videos" if (path / "web_videos").is_dir() else path
            return root, _scan(root)
        if path.is_file():
            return path, _read_list(path)
        raise MissingDataError(f"web-videos-voc: --option videos={given}: no such folder or list "
                               "file. " + HOW_TO + f"{ctx.layout.raw}.")
    extracted = ctx.layout.extracted_dir(ARCHIVE)
    if not extracted.is_dir():
        raise MissingDataError(f"web-videos-voc: no videos: {ctx.layout.raw_file(ARCHIVE)} is not "
                               "placed and no --option videos=DIR|LIST is given. "
                               + HOW_TO + f"{ctx.layout.raw}.")
    root = extracted / "web_videos"
    if not root.is_dir():
        raise PrepareError(f"{ctx.layout.raw_file(ARCHIVE)}: expected a top-level folder "
                           "web_videos/ holding one folder per VOC class")
    return root, _scan(root)


def _scan(root: Path) -> list[tuple[str, Path]]:
    return [(folder.name, p) for folder in sorted(root.iterdir()) if folder.is_dir()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.suffix.lower() in SUFFIXES]


def _read_list(path: Path) -> list[tuple[str, Path]]:
    videos = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, _, file = line.partition(" ")
        video = (path.parent / file.strip()).resolve() if file.strip() else None
        if video is None or not video.is_file():
            raise MissingDataError(f"{path} line {number}: expected `<VOC class> <video path>`, "
                                   f"and the video must exist; got {line!r}")
        videos.append((name, video))
    return videos


def _short(name: str, path: Path, where: Path) -> str:
    """The video's id within its class: its path under the class folder (or the list's folder)."""
    for base in (where / name, where.parent if where.is_file() else where):
        try:
            return path.resolve().relative_to(base.resolve()).as_posix()
        except ValueError:
            continue
    return path.name
