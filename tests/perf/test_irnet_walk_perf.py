"""Benchmark (not in the default run): IRNet's boundary random walk on a 500x375 VOC image.

    OMP_NUM_THREADS=1 python -m pytest tests/perf/test_irnet_walk_perf.py -m benchmark -s

At stride 4 the map is 94x125 = 11,750 pixels. The official ``propagate_to_edge`` builds the
dense 11,750^2 transition matrix (552 MB in float32) and squares it 8 times (two more such
matrices alive at once); ours keeps ~69 entries per pixel and multiplies the scores 256 times.
The dense path is timed at half resolution (47x63) and its full-size memory is stated from the
matrix size, so the benchmark stays a CPU-minute job.
"""

from __future__ import annotations

import time

import pytest
import torch

from reprolab.models.segmentation.irnet_inference import SparseTransition, random_walk
from tests.perf.test_retrieval_perf import PeakRSS

pytestmark = pytest.mark.benchmark


@pytest.fixture(autouse=True)
def _only_when_selected(request):
    if "benchmark" not in (request.config.getoption("markexpr") or "").replace("not benchmark", ""):
        pytest.skip("benchmark: run with -m benchmark")


def inputs(height: int, width: int, classes: int = 3):
    g = torch.Generator().manual_seed(0)
    return torch.rand(classes, height, width, generator=g), torch.rand(1, height, width, generator=g) ** 4


def test_sparse_walk_at_voc_size():
    torch.set_num_threads(1)
    scores, boundary = inputs(94, 125)
    with PeakRSS() as memory:
        start = time.perf_counter()
        rw = random_walk(scores, boundary)
        seconds = time.perf_counter() - start
    nnz = SparseTransition(boundary).values.numel()
    dense_mb = (94 * 125) ** 2 * 4 / 2**20
    print(f"\nsparse walk 94x125 (500x375 image), 3 classes: {seconds:.2f} s, peak +{memory.peak - memory.base >> 20} MB, "
          f"{nnz} nonzeros ({nnz / (94 * 125):.1f} per pixel); the dense matrix alone is {dense_mb:.0f} MB, "
          f"x3 while squaring")
    assert torch.isfinite(rw).all()
    assert memory.peak - memory.base < dense_mb * 2**20 / 4


def test_dense_against_sparse_at_half_size():
    torch.set_num_threads(1)
    scores, boundary = inputs(47, 63)
    start = time.perf_counter()
    sparse = random_walk(scores, boundary)
    sparse_s = time.perf_counter() - start
    with PeakRSS() as memory:
        start = time.perf_counter()
        power = SparseTransition(boundary).dense()
        for _ in range(8):
            power = power @ power
        dense = ((scores * (1 - boundary)).reshape(3, -1) @ power).reshape(sparse.shape)
        dense_s = time.perf_counter() - start
    print(f"\n47x63: sparse {sparse_s:.2f} s; dense (official scheme) {dense_s:.2f} s, peak +{memory.peak - memory.base >> 20} MB; "
          f"max relative difference {((sparse - dense).abs() / dense.abs().clamp(min=1e-12)).max():.1e} (float32)")
    torch.testing.assert_close(sparse, dense, rtol=1e-3, atol=1e-6)
