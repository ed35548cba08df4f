"""Benchmark (not in the default run): the caption label space at the scale of the Karpathy train
split (113,287 images, five captions each). Select with ``-m benchmark``:

    OMP_NUM_THREADS=1 python -m pytest tests/perf/test_caption_labels_perf.py -m benchmark -s

Synthetic captions: 8 to 12 words per sentence drawn from a Zipf-like law over 20,000 made-up
words, plus English function words (the stop words TF-IDF drops), so that frequent words are
shared by a large part of the images as in COCO ("man", "table", ...) and distance rows are dense.
"""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import numpy as np
import pytest

from reprolab.data.label_spaces.caption import CaptionLabels
from tests.perf.test_retrieval_perf import PeakRSS

pytestmark = pytest.mark.benchmark

KARPATHY_TRAIN = 113_287
VOCABULARY = 20_000
FUNCTION_WORDS = ("a", "the", "of", "on", "in", "with", "and", "is", "an", "at")


@pytest.fixture(autouse=True)
def _only_when_selected(request):
    if "benchmark" not in (request.config.getoption("markexpr") or "").replace("not benchmark", ""):
        pytest.skip("benchmark: run with -m benchmark")


def synthetic_split(n: int, seed: int = 0) -> list[SimpleNamespace]:
    rng = np.random.default_rng(seed)
    words = np.array([f"w{i}x" for i in range(VOCABULARY)] + list(FUNCTION_WORDS))
    content = 1.0 / np.arange(1, VOCABULARY + 1) ** 1.1
    lengths = rng.integers(8, 13, size=(n, 5))
    total = int(lengths.sum())
    is_function = rng.random(total) < 0.35
    drawn = np.where(is_function, VOCABULARY + rng.integers(len(FUNCTION_WORDS), size=total),
                     rng.choice(VOCABULARY, size=total, p=content / content.sum()))
    tokens, samples, at = words[drawn], [], 0
    for row in lengths:
        sentences = []
        for length in row:
            sentences.append(" ".join(tokens[at:at + length]) + ".")
            at += length
        samples.append(SimpleNamespace(extra={"captions": json.dumps(sentences)}))
    return samples


def test_caption_labels_at_karpathy_train_scale(benchmark):
    split = synthetic_split(KARPATHY_TRAIN)
    rng = np.random.default_rng(1)
    result = {}

    def build():
        with PeakRSS() as memory:
            result["space"] = CaptionLabels(split, {})
        result["build_mib"] = memory.extra_mib

    benchmark.pedantic(build, rounds=1, iterations=1)
    space = result["space"]
    anchors = rng.choice(KARPATHY_TRAIN, size=20, replace=False)
    start = time.perf_counter()
    for anchor in anchors:
        neighbours, distances = space.sorted_neighbours(int(anchor))
    per_anchor = (time.perf_counter() - start) / len(anchors)
    assert len(neighbours) == KARPATHY_TRAIN - 1 and np.all(np.diff(distances) >= 0)

    block = rng.choice(KARPATHY_TRAIN, size=1000, replace=False)
    with PeakRSS() as memory:
        start = time.perf_counter()
        rows = space.distance_rows(block)
        per_1000 = time.perf_counter() - start
    assert rows.shape == (1000, KARPATHY_TRAIN) and rows.dtype == np.float32
    nonzero = float((space.features.getnnz(axis=1)).mean())
    shared = float((rows < 1).mean())
    benchmark.extra_info.update(
        build_s=round(benchmark.stats.stats.mean, 2), build_extra_mib=round(result["build_mib"]),
        sorted_neighbours_ms=round(1000 * per_anchor, 1), distance_rows_1000_s=round(per_1000, 2),
        distance_rows_1000_extra_mib=round(memory.extra_mib), terms_per_image=round(nonzero, 1),
        fraction_sharing_a_word=round(shared, 3))
    print(f"\nCaptionLabels on {KARPATHY_TRAIN:,} synthetic images: build {benchmark.stats.stats.mean:.1f} s "
          f"(+{result['build_mib']:.0f} MiB), sorted_neighbours {1000 * per_anchor:.0f} ms per anchor, "
          f"distance_rows of 1,000 images {per_1000:.1f} s (+{memory.extra_mib:.0f} MiB); "
          f"{nonzero:.0f} terms per image, {100 * shared:.0f}% of pairs share a word")
