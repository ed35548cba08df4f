"""SOP-scale Recall@K against this machine's float32 matmul bound (issue 16, section 4).

    OMP_NUM_THREADS=2 python benchmarks/perf/retrieval_bound.py [--items 60502] [--current faiss]

1. The float32 matmul peak: the best of a few `torch.mm` runs, on a square 4096^3 product and on
   the shape one retrieval block has ((block x 512) @ (512 x items)).
2. The bound: an exact all-pairs search needs 2 x items^2 x dim FLOPs (3.75 TFLOP for SOP's
   60,502 x 512); at the peak that takes bound_s.
3. Recall@{1,10,100,1000} by blocked matmul + first-hit ranks (reprolab.metrics.retrieval,
   backend "blocked"): time, peak extra resident memory, ratio to the bound.
4. The same metrics by the neighbour search used before (`--current faiss` or `torch`; `none`
   skips it): time, memory, and whether every Recall@K is identical.

Random unit vectors with SOP's class sizes (about 5.3 images per class) stand in for real
embeddings: the work is the same. Prints one table; not a test (the machine decides the time).

On a shared machine wall time depends on who else runs; the script also measures process CPU
time (all threads): the matmul peak as FLOP per CPU-second and each search's CPU seconds, whose
ratio does not change when other processes take turns on the cores. The peak is measured before
and after the searches; the bound uses the higher.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path[:0] = [str(Path(__file__).resolve().parents[2] / "src"), str(Path(__file__).resolve().parents[2])]

from benchmarks.perf.memory import PeakRSS  # noqa: E402

from reprolab.metrics.retrieval import BLOCKED_CHUNK_BYTES, recall_at_k  # noqa: E402

SOP_TEST_IMAGES, SOP_TEST_CLASSES, DIM = 60_502, 11_316, 512
KS = (1, 10, 100, 1000)


def matmul_gflops(m: int, k: int, n: int, repeats: int = 3) -> tuple[float, float]:
    """(GFLOP per wall second, GFLOP per CPU second): the best of `repeats` products."""
    a, b = torch.randn(m, k), torch.randn(k, n)
    out = torch.empty(m, n)
    torch.mm(a, b, out=out)  # warm-up
    wall = cpu = float("inf")
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        torch.mm(a, b, out=out)
        wall = min(wall, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
    flops = 2 * m * k * n
    return flops / wall / 1e9, flops / cpu / 1e9


def peaks(block: int, n: int) -> dict[str, tuple[float, float]]:
    return {"4096^3": matmul_gflops(4096, 4096, 4096),
            f"({block}x{DIM})@({DIM}x{n})": matmul_gflops(block, DIM, n)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=SOP_TEST_IMAGES)
    parser.add_argument("--current", choices=("faiss", "torch", "none"), default="faiss")
    parser.add_argument("--chunk", type=int, default=None, help="query rows per block (default: 512 MB of scores)")
    args = parser.parse_args(argv)
    n = args.items
    block = args.chunk or max(1, BLOCKED_CHUNK_BYTES // (4 * n))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs")

    before = peaks(block, n)
    g = torch.Generator().manual_seed(0)
    embeddings = F.normalize(torch.randn(n, DIM, generator=g), dim=1)
    labels = torch.randint(0, max(1, round(n * SOP_TEST_CLASSES / SOP_TEST_IMAGES)), (n,), generator=g)
    rows = []
    results = {}
    for backend in ("blocked", *(() if args.current == "none" else (args.current,))):
        with PeakRSS() as memory:
            start, start_cpu = time.perf_counter(), time.process_time()
            results[backend] = recall_at_k(embeddings, labels, KS, chunk_size=args.chunk, backend=backend)
            seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
        rows.append((backend, seconds, cpu_seconds, memory.extra_mib))
    after = peaks(block, n)

    flops = 2 * n * n * DIM
    for when, measured in (("before", before), ("after", after)):
        for shape, (wall, cpu) in measured.items():
            print(f"float32 matmul {shape}, {when}: {wall:.1f} GFLOP/s, {cpu:.1f} GFLOP per CPU-second")
    peak = max(wall for measured in (before, after) for wall, _ in measured.values())
    cpu_peak = max(cpu for measured in (before, after) for _, cpu in measured.values())
    bound_s, bound_cpu_s = flops / peak / 1e9, flops / cpu_peak / 1e9
    print(f"exact search: {flops / 1e12:.2f} TFLOP; bound {bound_s:.1f} s at {peak:.1f} GFLOP/s, "
          f"{bound_cpu_s:.1f} CPU-seconds at {cpu_peak:.1f} GFLOP per CPU-second")
    print(f"\nRecall@{{{','.join(map(str, KS))}}} of {n} x {DIM} (each item queries all others):")
    print(f"{'backend':<10}{'wall s':>9}{'x bound':>9}{'CPU s':>9}{'x CPU bound':>13}{'peak extra MiB':>16}")
    for backend, seconds, cpu_seconds, mib in rows:
        print(f"{backend:<10}{seconds:>9.1f}{seconds / bound_s:>9.2f}{cpu_seconds:>9.1f}"
              f"{cpu_seconds / bound_cpu_s:>13.2f}{mib:>16.0f}")
    print("metrics:", {backend: {k: round(v, 4) for k, v in m.items()} for backend, m in results.items()})
    if len(results) == 2:
        same = results["blocked"] == results[args.current]
        print(f"Recall@K identical to the {args.current} search: {same}")
        return 0 if same else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
