"""Benchmarks of the dataset manager (not in the default run). Select with ``-m benchmark``:

    OMP_NUM_THREADS=1 python -m pytest tests/perf/test_data_perf.py -m benchmark -s

1. Prepare throughput: SSv2-like WebM (VP9) videos, 240x320, 48 frames at 12 fps (about the real
   SSv2 size and length), decoded with PyAV into JPEG frame shards by 2 worker processes, with the
   full profile's options (scale to height 256, JPEG quality 95). PERF_VIDEOS videos (default
   1,000) are hard links to PERF_DISTINCT distinct encoded videos: decoding cost is per video,
   so the copies measure the same work while the fixture stays quick to build.
2. Reading: load a prepared manifest (`open_split`) and read PERF_READS (10,000) random samples
   (all JPEG bytes of each), as a DataLoader worker would; then decode 8 frames of 1,000 of them.

Each prints its numbers and stores them in pytest-benchmark's ``extra_info``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

pytestmark = pytest.mark.benchmark

VIDEOS = int(os.environ.get("PERF_VIDEOS", "1000"))
DISTINCT = int(os.environ.get("PERF_DISTINCT", "40"))
READS = int(os.environ.get("PERF_READS", "10000"))
WORKERS = 2
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _only_when_selected(request):
    if "benchmark" not in (request.config.getoption("markexpr") or "").replace("not benchmark", ""):
        pytest.skip("benchmark: run with -m benchmark")


def _write_checkout(root: Path, train: int, validation: int) -> None:
    card = yaml.safe_load((REPO / "datasets/sthv2/card.yaml").read_text())
    card["tiny"]["splits"] = {"train": train, "validation": validation}
    (root / "datasets/sthv2").mkdir(parents=True)
    (root / "datasets/sthv2/card.yaml").write_text(yaml.safe_dump(card, sort_keys=False))
    for name in ("reproductions", "benchmarks"):
        (root / name).mkdir()
    (root / "pyproject.toml").write_text("[project]\nname = 'perf'\n")


def _build_raw(root: Path) -> dict[str, int]:
    """SSv2 raw layout (JSON labels + extracted WebM folder) with VIDEOS videos in the tiny tree."""
    from scipy.ndimage import gaussian_filter

    from reprolab.data.fixtures.sthv1 import MOTIONS, render_video
    from reprolab.data.fixtures.sthv2 import encode_webm, template_of
    from reprolab.data.layout import DatasetLayout

    layout = DatasetLayout("sthv2", "tiny", root)
    videos = layout.extracted_dir("20bn-something-something-v2.tar.gz") / "20bn-something-something-v2"
    videos.mkdir(parents=True)
    layout.raw.mkdir(parents=True)
    classes = [name for name, _ in MOTIONS[:4]]
    distinct = []
    for k in range(DISTINCT):
        rng = np.random.default_rng(k)
        video = render_video(rng, MOTIONS[k % 4][1], 48, 240, 320)
        # Smooth the per-pixel noise of the tiny fixture: camera video compresses like this,
        # not like white noise (JPEG sizes and encode times stay realistic).
        video = gaussian_filter(video, sigma=(0, 1.5, 1.5, 0))
        path = layout.base / f"distinct-{k}.webm"
        path.write_bytes(encode_webm(video, 12, fast=True))
        distinct.append(path)
    entries = {"train": [], "validation": []}
    for i in range(VIDEOS):
        video_id = str(100_000 + i)
        os.link(distinct[i % DISTINCT], videos / f"{video_id}.webm")
        split = "validation" if i % 10 == 0 else "train"
        name = classes[(i % DISTINCT) % 4]
        entries[split].append({"id": video_id, "label": name, "template": template_of(name),
                               "placeholders": ["something"]})
    labels = {name: str(i) for i, name in enumerate(sorted(classes))}
    (layout.raw / "something-something-v2-labels.json").write_text(json.dumps(labels))
    for split, items in entries.items():
        (layout.raw / f"something-something-v2-{split}.json").write_text(json.dumps(items))
    return {split: len(items) for split, items in entries.items()}


@pytest.fixture(scope="module")
def webm_checkout(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("perf") / "checkout"
    root.mkdir()
    started = time.perf_counter()
    counts = {"train": VIDEOS - len(range(0, VIDEOS, 10)), "validation": len(range(0, VIDEOS, 10))}
    _write_checkout(root, counts["train"], counts["validation"])
    assert _build_raw(root) == counts
    print(f"\nfixture: {VIDEOS} WebM videos ({DISTINCT} distinct, 240x320, 48 frames) "
          f"built in {time.perf_counter() - started:.1f} s")
    return root


def test_prepare_throughput_webm(benchmark, webm_checkout):
    from reprolab.data.prepare import prepare_dataset
    from reprolab.registry import load_card

    card = load_card(webm_checkout / "datasets/sthv2/card.yaml")

    def run():
        import shutil

        from reprolab.data.layout import DatasetLayout

        shutil.rmtree(DatasetLayout("sthv2", "tiny", webm_checkout).prepared, ignore_errors=True)
        return prepare_dataset(card, "tiny", root=webm_checkout, workers=WORKERS, progress=False,
                               options={"height": 256, "jpeg_quality": 95})

    started = time.perf_counter()
    reports = benchmark.pedantic(run, rounds=1, iterations=1)
    seconds = time.perf_counter() - started
    videos = sum(r.samples for r in reports)
    assert videos == VIDEOS
    rate = videos / seconds
    benchmark.extra_info.update({"videos": videos, "seconds": seconds, "videos_per_s": rate,
                                 "frames_per_s": rate * 48, "workers": WORKERS})
    print(f"\nprepare: {videos} videos (48 frames each, 240x320 -> 256x341 JPEG) in {seconds:.1f} s "
          f"with {WORKERS} workers: {rate:.1f} videos/s, {rate * 48:.0f} frames/s")


def test_manifest_load_and_random_reads(benchmark, webm_checkout):
    from reprolab.data import decode_frames, open_split
    from reprolab.data.layout import DatasetLayout

    layout = DatasetLayout("sthv2", "tiny", webm_checkout)
    if "train" not in layout.prepared_splits():
        from reprolab.data.prepare import prepare_dataset
        from reprolab.registry import load_card

        prepare_dataset(load_card(webm_checkout / "datasets/sthv2/card.yaml"), "tiny",
                        root=webm_checkout, workers=WORKERS, progress=False,
                        options={"height": 256, "jpeg_quality": 95})
    order = np.random.default_rng(0).integers(0, 2**31, READS)

    def run():
        started = time.perf_counter()
        split = open_split("sthv2", "train", "tiny", root=webm_checkout)
        loaded = time.perf_counter() - started
        total = 0
        for i in order % len(split):
            total += sum(len(f) for f in split[int(i)].frames)
        return loaded, time.perf_counter() - started, total, split

    loaded, seconds, total, split = benchmark.pedantic(run, rounds=1, iterations=1)
    started = time.perf_counter()
    for i in order[:1000] % len(split):
        sample = split[int(i)]
        decode_frames(sample.frames, np.linspace(0, sample.num_frames - 1, 8).round().astype(int))
    decode_s = time.perf_counter() - started
    benchmark.extra_info.update({"reads": READS, "manifest_load_s": loaded, "total_s": seconds,
                                 "samples_per_s": READS / seconds, "mb_read": total / 2**20,
                                 "decode_8_frames_per_s": 1000 / decode_s})
    print(f"\nread: manifest of {len(split)} samples loaded in {loaded * 1000:.0f} ms; {READS} random "
          f"samples ({total / 2**20:.0f} MiB of JPEG) in {seconds:.2f} s = {READS / seconds:.0f} "
          f"samples/s; decoding 8 frames: {1000 / decode_s:.0f} samples/s")
