"""Benchmark (not in the default run): PSA's random walk on a full-size VOC image (500 x 375 ->
a 63 x 47 map at stride 8, N = 2,961 positions), the official dense transition matrix squared
8 times against the sparse walk (256 sparse products). Each runs in a fresh process and reports
its peak resident memory above the process's baseline and its time:

    OMP_NUM_THREADS=1 python -m pytest tests/perf/test_random_walk_perf.py -m benchmark -s
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.benchmark

_SCRIPT = r"""
import json, resource, sys, time, torch
from reprolab.models.segmentation.affinity import pair_indices
from reprolab.models.segmentation.random_walk import propagate
torch.set_num_threads(1)
height, width, stride = 375, 500, 8
h, w = -(-height // stride), -(-width // stride)
source, target = pair_indices(5, h, w)
g = torch.Generator().manual_seed(0)
aff = torch.rand(target.numel() // source.numel(), source.numel(), generator=g)
cam = torch.zeros(20, height, width); cam[[0, 14]] = torch.rand(2, height, width, generator=g)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
scores = propagate(cam, aff, 5, stride, dense=sys.argv[1] == "dense")
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base
print(json.dumps({"positions": h * w, "seconds": seconds, "peak_mib": peak / 1024, "checksum": float(scores.sum())}))
"""


def _run(kind: str) -> dict:
    out = subprocess.run([sys.executable, "-c", _SCRIPT, kind], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_random_walk_memory_on_a_voc_image(benchmark):
    dense, sparse = _run("dense"), _run("sparse")
    print(f"\nrandom walk, 500x375 image ({dense['positions']} positions), 1 thread: "
          f"dense {dense['seconds']:.2f} s, +{dense['peak_mib']:.0f} MiB; "
          f"sparse {sparse['seconds']:.2f} s, +{sparse['peak_mib']:.0f} MiB")
    benchmark.extra_info.update(dense=dense, sparse=sparse)
    benchmark.pedantic(lambda: None, rounds=1)
    assert abs(dense["checksum"] - sparse["checksum"]) <= 1e-4 * abs(dense["checksum"])
    assert sparse["peak_mib"] < dense["peak_mib"]
