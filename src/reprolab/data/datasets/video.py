"""Video clips for training and testing: frame sampling, decoding and the clip transforms.

Sampling follows the official TSN-style `ops/dataset.py` of SELFY and MotionSqueeze (indices
here are 0-based; the official ones are 1-based file numbers):

- `segment` (`--mode 1`): T equal segments; training takes a random frame in each, testing the
  centre frame of each. Several test clips shift the centres evenly within a segment.
- `dense` (`--mode 0`, I3D style, Kinetics): T frames at stride 64/T inside a 64-frame window;
  training (and the official in-training validation) starts the window at random, testing takes
  10 evenly spaced windows.

`VideoClipDataset` reads frames from a prepared split (reprolab.data.reader: JPEG frames decoded
with torchvision.io.decode_jpeg), or from a video file with PyAV when a sample stores a video
instead of frames. Training items are `(index, seed)` pairs from the engine's sampler; the seed
alone decides which frames, crop and flip a clip gets.
"""

from __future__ import annotations

import io
import random
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from reprolab.data.transforms.video import EvalClipTransform, TrainClipTransform

Sampling = Literal["segment", "dense"]
DENSE_WINDOW = 64


# --------------------------------------------------------------------------- frame sampling


def segment_train_indices(num_frames: int, segments: int, rng: np.random.Generator) -> np.ndarray:
    """One random frame per segment (TSNDataSet._sample_indices, mode 1)."""
    average = num_frames // segments
    if average > 0:
        return np.arange(segments) * average + rng.integers(0, average, size=segments)
    if num_frames > segments:
        return np.sort(rng.integers(0, num_frames, size=segments))
    return np.zeros(segments, dtype=np.int64)


def segment_test_indices(num_frames: int, segments: int, clips: int = 1) -> list[np.ndarray]:
    """Segment centres (TSNDataSet._get_val_indices); clip k shifts them by k/clips of a segment."""
    if num_frames <= segments:
        return [np.zeros(segments, dtype=np.int64) for _ in range(clips)]
    tick = num_frames / float(segments)
    return [
        np.minimum(np.array([int(tick / 2.0 + tick * k / clips + tick * x) for x in range(segments)]),
                   num_frames - 1)
        for k in range(clips)
    ]


def dense_indices(num_frames: int, segments: int, start: int, window: int = DENSE_WINDOW) -> np.ndarray:
    stride = window // segments
    return (np.arange(segments) * stride + start) % num_frames


def dense_train_indices(num_frames: int, segments: int, rng: np.random.Generator,
                        window: int = DENSE_WINDOW) -> np.ndarray:
    """A random 64-frame window (TSNDataSet._sample_indices, mode 0)."""
    positions = max(1, 1 + num_frames - window)
    # The official `np.random.randint(0, sample_pos - 1)` never picks the last start.
    start = 0 if positions == 1 else int(rng.integers(0, max(1, positions - 1)))
    return dense_indices(num_frames, segments, start, window)


def dense_test_indices(num_frames: int, segments: int, clips: int = 10,
                       window: int = DENSE_WINDOW) -> list[np.ndarray]:
    """`clips` evenly spaced windows (TSNDataSet._get_test_indices, mode 0)."""
    positions = max(1, 1 + num_frames - window)
    starts = np.linspace(0, positions - 1, num=clips, dtype=int)
    return [dense_indices(num_frames, segments, int(s), window) for s in starts]


# --------------------------------------------------------------------------- decoding


def decode_video(data: bytes | str, indices: Sequence[int]) -> torch.Tensor:
    """Frames `indices` (0-based, in decode order) of a video file or its bytes, with PyAV.

    Returns uint8 (T, 3, H, W). Frames past the end repeat the last decoded frame, as a list of
    extracted JPEGs shorter than its header count would in the frame-folder pipeline.
    """
    import av

    wanted = sorted(set(int(i) for i in indices))
    if not wanted:
        raise ValueError("decode_video: no frame indices")
    found: dict[int, np.ndarray] = {}
    source = io.BytesIO(data) if isinstance(data, bytes | bytearray) else data
    last = None
    with av.open(source) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for position, frame in enumerate(container.decode(stream)):
            if position in wanted:
                found[position] = frame.to_ndarray(format="rgb24")
            last = frame
            if position >= wanted[-1]:
                break
    if last is None:
        raise ValueError(f"decode_video: {data if isinstance(data, str) else 'video bytes'} has no frames")
    tail = found[max(found)] if found else last.to_ndarray(format="rgb24")
    frames = [found.get(int(i), tail) for i in indices]
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous()


def read_clip(split: Any, index: int, indices: Sequence[int]) -> torch.Tensor:
    """uint8 (T, 3, H, W) of frames `indices` of sample `index` of a prepared split.

    Frame splits store JPEG frames (decoded with torchvision.io.decode_jpeg); video splits
    store the file (bytes in `video`, or a path in `video_path`), decoded with PyAV.
    """
    from reprolab.data.reader import decode_frames

    try:
        return decode_frames(split.frames(index, indices))
    except KeyError:  # no `frames` column: a split of video files
        pass
    sample = split[index]
    video = sample.extra.get("video") or sample.extra.get("video_path")
    if video is None:
        raise ValueError(
            f"{split!r}: sample {sample.id} has neither JPEG frames nor a video; run `reprolab data "
            "prepare` again"
        )
    return decode_video(video, indices)


# --------------------------------------------------------------------------- dataset


class VideoClipDataset(Dataset):
    """Clips of a prepared split, transformed for training or testing.

    Training items: {"frames": float (T, C, H, W), "label": int}.
    Test items: {"frames": float (clips * crops, T, C, H, W), "label": int}; the task averages
    the logits of the views.
    """

    def __init__(self, split: Any, *, segments: int, train: bool, sampling: Sampling = "segment",
                 resize: int | Sequence[int] = (240, 320), crop: int = 224,
                 scales: Sequence[float] = (1.0, 0.875, 0.75, 0.66), max_distort: int = 1,
                 flip: bool = True, no_flip_classes: frozenset[int] = frozenset(),
                 clips: int = 1, crops: int = 1, dense_window: int = DENSE_WINDOW):
        if sampling not in ("segment", "dense"):
            raise ValueError(f"data.sampling: {sampling!r}; expected segment or dense")
        self.split = split
        self.segments = int(segments)
        self.train = train
        self.sampling = sampling
        self.clips = int(clips)
        self.dense_window = int(dense_window)
        self.no_flip_classes = frozenset(no_flip_classes)
        self.train_transform = TrainClipTransform(resize, crop, scales, max_distort, flip)
        self.eval_transform = EvalClipTransform(resize, crop, crops)

    def __len__(self) -> int:
        return len(self.split)

    def frame_indices(self, index: int, rng: np.random.Generator | None) -> list[np.ndarray]:
        num_frames = int(self.split.num_frames[index])
        if self.sampling == "dense":
            if self.train:
                return [dense_train_indices(num_frames, self.segments, rng, self.dense_window)]
            return dense_test_indices(num_frames, self.segments, self.clips, self.dense_window)
        if self.train:
            return [segment_train_indices(num_frames, self.segments, rng)]
        return segment_test_indices(num_frames, self.segments, self.clips)

    def __getitem__(self, item: int | tuple[int, int]) -> dict[str, Any]:
        index, seed = item if isinstance(item, tuple) else (item, 0)
        label = int(self.split.labels[index])
        if self.train:
            rng = np.random.default_rng(seed)
            (indices,) = self.frame_indices(index, rng)
            frames = read_clip(self.split, index, indices.tolist())
            flip_allowed = label not in self.no_flip_classes
            clip = self.train_transform(frames, random.Random(seed), flip_allowed)
            return {"frames": clip, "label": label}
        clips = self.frame_indices(index, None)
        wanted = sorted({int(i) for c in clips for i in c})
        decoded = read_clip(self.split, index, wanted)
        position = {frame: row for row, frame in enumerate(wanted)}
        views = [self.eval_transform(decoded[[position[int(i)] for i in c]]) for c in clips]
        return {"frames": torch.cat(views), "label": label}
