"""The video training data path per CPU core: ours beside the official TSN-style loader, one run
(issue 16, section 2).

    OMP_NUM_THREADS=1 REPROLAB_OFFICIAL_SELFY=/path/to/SELFY python benchmarks/perf/video_data_path.py

The same JPEG frames (the motion fixture's renderer at Something-Something V1 size: 100x176, 40
frames a video, quality 90, held in memory as a prepared split serves them) go through
- ours: reprolab.data.datasets.video.VideoClipDataset (torchvision.io.decode_jpeg, GroupScale to
  240x320, multi-scale crop to 224, selective flip, normalise on uint8/float tensors);
- official: arunos728/SELFY ops/transforms.py as its main.py composes them for training: PIL
  Image.open(...).convert('RGB') per frame, GroupScale((240, 320)), GroupMultiScaleCrop(224,
  [1, .875, .75, .66]), GroupRandomHorizontalFlip(selective_flip=True), Stack, ToTorchFormatTensor,
  GroupNormalize. Loaded at run time from REPROLAB_OFFICIAL_SELFY (not part of this repository);
  unset, that row is skipped.
Both decode 8 frames a clip (the same frame indices for both), on one thread; rounds alternate
between the two so that load drifts on a shared machine cancel. Prints clips/s per core and the
ratio (the issue's goal: ours at least 2x the official loader).
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from reprolab.data.datasets.video import VideoClipDataset  # noqa: E402
from reprolab.data.fixtures.sthv1 import MOTIONS, encode_jpeg, render_video  # noqa: E402

VIDEOS, FRAMES, HEIGHT, WIDTH, SEGMENTS = 16, 40, 100, 176, 8
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


class InMemorySplit:
    """Encoded JPEG frames in memory, with the interface VideoClipDataset reads."""

    def __init__(self):
        rng = np.random.default_rng(0)
        self.encoded, self.labels = [], []
        for i in range(VIDEOS):
            label = i % len(MOTIONS)
            video = render_video(rng, MOTIONS[label][1], FRAMES, HEIGHT, WIDTH)
            self.encoded.append([encode_jpeg(frame) for frame in video])
            self.labels.append(label)
        self.num_frames = [FRAMES] * VIDEOS
        self.classes = [name for name, _ in MOTIONS]
        self.requested: list[list[int]] = []  # the frame indices ours asked for, for the official side

    def __len__(self):
        return VIDEOS

    def frames(self, index, frame_indices):
        self.requested.append([int(i) for i in frame_indices])
        return [self.encoded[index][int(i)] for i in frame_indices]


def official_pipeline(root: Path):
    spec = importlib.util.spec_from_file_location("official_selfy_transforms", root / "ops" / "transforms.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    import torchvision
    from PIL import Image

    transform = torchvision.transforms.Compose([
        module.GroupScale((240, 320)),
        module.GroupMultiScaleCrop(224, [1, .875, .75, .66]),
        module.GroupRandomHorizontalFlip(selective_flip=True, is_flow=False),
        module.Stack(roll=False),
        module.ToTorchFormatTensor(div=True),
        module.GroupNormalize(MEAN, STD),
    ])

    def load(encoded_frames, label):
        images = [Image.open(io.BytesIO(bytes(frame.numpy() if hasattr(frame, "numpy") else frame)))
                  .convert("RGB") for frame in encoded_frames]
        tensor, _ = transform((images, label))
        return tensor.view(SEGMENTS, 3, 224, 224)

    return load


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=48, help="clips per side per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    split = InMemorySplit()
    ours = VideoClipDataset(split, segments=SEGMENTS, train=True, resize=(240, 320), crop=224)
    root = os.environ.get("REPROLAB_OFFICIAL_SELFY")
    official = official_pipeline(Path(root)) if root else None
    if official is None:
        print("official: skipped (REPROLAB_OFFICIAL_SELFY is not set)")

    times: dict[str, list[float]] = {"ours": [], "official": []}
    counter = 0
    for _ in range(args.rounds):
        split.requested.clear()
        start = time.perf_counter()
        for _ in range(args.clips):
            item = ours[(counter % VIDEOS, counter)]
            counter += 1
        times["ours"].append((time.perf_counter() - start) / args.clips)
        assert item["frames"].shape == (SEGMENTS, 3, 224, 224)
        if official is None:
            continue
        requests = list(split.requested)
        start = time.perf_counter()
        for n, indices in enumerate(requests):
            video = (counter - args.clips + n) % VIDEOS
            clip = official([split.encoded[video][i] for i in indices], split.labels[video])
        times["official"].append((time.perf_counter() - start) / len(requests))
        assert clip.shape == (SEGMENTS, 3, 224, 224)

    print(f"one training clip: {SEGMENTS} frames from {HEIGHT}x{WIDTH} JPEGs -> {SEGMENTS}x3x224x224, "
          f"1 thread, {args.rounds} rounds x {args.clips} clips (median round)")
    rates = {name: 1.0 / statistics.median(t) for name, t in times.items() if t}
    for name, rate in rates.items():
        print(f"{name:<9} {rate:8.1f} clips/s per core")
    if len(rates) == 2:
        print(f"ours / official: {rates['ours'] / rates['official']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
