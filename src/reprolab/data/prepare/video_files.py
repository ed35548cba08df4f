"""Shared pieces of the video preparers: decode a video (or a time window of it) to JPEG frames.

Frames are stored as JPEG (the frame-folder format SELFY and MotionSqueeze read), scaled so that
the shorter side is `short_side` (256 in the full profile, as their preprocessing; None keeps
the size), optionally resampled to `fps` (MotionSqueeze extracts Kinetics at 25 fps) by taking,
for each target time, the last decoded frame at or before it.
"""

from __future__ import annotations

import io
from typing import Any


def default_options(ctx) -> dict[str, Any]:
    return {"short_side": 256 if ctx.profile == "full" else None, "jpeg_quality": 95}


def video_to_jpeg(path: str, *, short_side: int | None = None, quality: int = 95,
                  fps: float | None = None, start: float | None = None,
                  end: float | None = None) -> list[bytes]:
    """JPEG frames of `path` between `start` and `end` seconds (whole video when None)."""
    import av

    frames: list[bytes] = []
    next_time = start or 0.0
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        if start:  # jump to the keyframe before the window instead of decoding from 0 s
            container.seek(int(start * av.time_base), backward=True, any_frame=False)
        for frame in container.decode(stream):
            time = float(frame.time) if frame.time is not None else len(frames) / float(stream.average_rate or 25)
            if start is not None and time < start - 1e-6:
                continue
            if end is not None and time >= end - 1e-6:
                break
            if fps is not None:
                if time + 1e-6 < next_time:
                    continue
                next_time += 1.0 / fps
            if short_side is not None and min(frame.width, frame.height) != short_side:
                scale = short_side / min(frame.width, frame.height)
                frame = frame.reformat(width=max(1, round(frame.width * scale)),
                                       height=max(1, round(frame.height * scale)),
                                       interpolation="BICUBIC")
            buffer = io.BytesIO()
            frame.to_image().save(buffer, format="JPEG", quality=quality)
            frames.append(buffer.getvalue())
    if not frames:
        window = "" if start is None else f" between {start} s and {end} s"
        raise ValueError(f"{path}: no video frames decoded{window}")
    return frames


def encode_video(spec, options: dict) -> dict:
    """The `encode` of a preparer whose SampleSpec.source is a video path, or a dict with
    `path` and optional `start` / `end` seconds."""
    source = spec.source if isinstance(spec.source, dict) else {"path": spec.source}
    return {"frames": video_to_jpeg(
        source["path"], short_side=options.get("short_side"),
        quality=int(options.get("jpeg_quality", 95)), fps=options.get("fps"),
        start=source.get("start"), end=source.get("end"))}
