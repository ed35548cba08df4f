"""Benchmark (not in the default run) of the video training pipeline, per CPU core:

    OMP_NUM_THREADS=1 python -m pytest tests/perf/test_video_pipeline_perf.py -m benchmark -s

One training clip as SELFY/MotionSqueeze load it on Something-Something V1: 8 segment-sampled
JPEG frames decoded with torchvision.io.decode_jpeg, GroupScale to 240x320, GroupMultiScaleCrop
to 224x224, selective flip, normalisation. The frames are the motion fixture's renderer at
SSv1-like size (100x176, 40 frames per video, JPEG quality 90), held in memory as a prepared split
would serve them, so the number is the decode + augmentation cost a DataLoader worker pays.
`benchmarks/perf/video_data_path.py` measures the same beside the official loader.
"""

from __future__ import annotations

import pytest
import torch
from benchmarks.perf.video_data_path import HEIGHT, VIDEOS, WIDTH, InMemorySplit

from reprolab.data.datasets.video import VideoClipDataset

pytestmark = pytest.mark.benchmark

def test_training_clips_per_second_per_core(benchmark):
    torch.set_num_threads(1)
    data = VideoClipDataset(InMemorySplit(), segments=8, train=True, resize=(240, 320), crop=224)
    counter = iter(range(10**9))

    def one_clip():
        n = next(counter)
        return data[(n % VIDEOS, n)]

    item = benchmark.pedantic(one_clip, rounds=60, warmup_rounds=5, iterations=1)
    assert item["frames"].shape == (8, 3, 224, 224)
    clips_per_s = 1.0 / benchmark.stats.stats.mean
    benchmark.extra_info["clips_per_s_per_core"] = clips_per_s
    print(f"\nvideo training pipeline: {clips_per_s:.1f} clips/s per core "
          f"(8 x 224x224 frames from {HEIGHT}x{WIDTH} JPEGs)")


def test_eval_clips_per_second_per_core(benchmark):
    torch.set_num_threads(1)
    data = VideoClipDataset(InMemorySplit(), segments=8, train=False, resize=(240, 320), crop=224)
    counter = iter(range(10**9))
    item = benchmark.pedantic(lambda: data[next(counter) % VIDEOS], rounds=60, warmup_rounds=5, iterations=1)
    assert item["frames"].shape == (1, 8, 3, 224, 224)
    clips_per_s = 1.0 / benchmark.stats.stats.mean
    benchmark.extra_info["clips_per_s_per_core"] = clips_per_s
    print(f"\nvideo test pipeline (1 clip x centre crop): {clips_per_s:.1f} clips/s per core")
