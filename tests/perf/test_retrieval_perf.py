"""Benchmarks (not in the default run): retrieval evaluation at SOP scale, BN-Inception training
throughput on CPU. Select with ``-m benchmark``, e.g.

    OMP_NUM_THREADS=2 python -m pytest tests/perf/test_retrieval_perf.py -m benchmark -s

Each prints its numbers and stores them in pytest-benchmark's ``extra_info``.
"""

from __future__ import annotations

import time

import pytest
import torch
import torch.nn.functional as F
from benchmarks.perf.memory import PeakRSS

from reprolab.metrics.retrieval import recall_at_k
from reprolab.models.embedding import build_embedding_model, param_groups
from reprolab.models.losses import ProxyAnchorLoss

pytestmark = pytest.mark.benchmark

SOP_TEST_IMAGES, SOP_TEST_CLASSES = 60_502, 11_316  # about 5.3 images per class


@pytest.fixture(autouse=True)
def _only_when_selected(request):
    if "benchmark" not in (request.config.getoption("markexpr") or "").replace("not benchmark", ""):
        pytest.skip("benchmark: run with -m benchmark")


@pytest.mark.parametrize("backend", ["faiss", "torch"])
def test_sop_scale_recall_evaluation(benchmark, backend):
    torch.set_num_threads(2)
    g = torch.Generator().manual_seed(0)
    embeddings = F.normalize(torch.randn(SOP_TEST_IMAGES, 512, generator=g), dim=1)
    labels = torch.randint(0, SOP_TEST_CLASSES, (SOP_TEST_IMAGES,), generator=g)
    result = {}

    def evaluate():
        with PeakRSS() as memory:
            result["metrics"] = recall_at_k(embeddings, labels, ks=(1, 10, 100, 1000), backend=backend)
        result["extra_mib"] = memory.extra_mib

    benchmark.pedantic(evaluate, rounds=1, iterations=1)
    benchmark.extra_info.update(peak_extra_memory_mib=round(result["extra_mib"]), **result["metrics"])
    print(f"\nSOP-scale Recall@{{1,10,100,1000}} ({backend}): {benchmark.stats.stats.mean:.1f} s, "
          f"peak extra memory {result['extra_mib']:.0f} MiB, metrics {result['metrics']}")
    # random embeddings: recall@1000 is about 1000 x 4.3 / 60,501, far from 100
    assert result["metrics"]["recall@1000"] < 20


def test_bn_inception_training_throughput_batch_180(benchmark):
    torch.set_num_threads(2)
    torch.manual_seed(0)
    batch = 180
    model = build_embedding_model("bn_inception", 512, freeze_bn=True).train()
    criterion = ProxyAnchorLoss(100, 512)
    optimizer = torch.optim.AdamW(param_groups(model, criterion, 1e-4), lr=1e-4, weight_decay=1e-4)
    images = torch.randn(batch, 3, 224, 224) * 50
    labels = torch.randint(0, 100, (batch,))

    def step():
        loss = criterion(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_value_(model.parameters(), 10)
        optimizer.step()

    with PeakRSS() as memory:
        step()  # warm-up: allocator, optimizer state (its memory counts, its time does not)
        start = time.perf_counter()
        benchmark.pedantic(step, rounds=2, iterations=1)
        elapsed = time.perf_counter() - start
    images_per_s = 2 * batch / elapsed
    benchmark.extra_info.update(images_per_second=round(images_per_s, 2),
                                peak_extra_memory_mib=round(memory.extra_mib))
    print(f"\nBN-Inception train step, batch {batch} at 224x224, 2 threads: "
          f"{images_per_s:.1f} images/s, peak extra memory {memory.extra_mib:.0f} MiB")
    assert images_per_s > 0
