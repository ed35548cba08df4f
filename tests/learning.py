"""Learning checks that must hold on any machine, and the grid that shows they do.

A tiny run's metric depends on floating-point details of the machine (CPU, BLAS kernels, the
thread count): two machines train the same seed to different weights. A test that asserts
learning must therefore pass with a margin at every thread count and seed, not only at the one
it was tuned on. Tests marked ``@pytest.mark.learning(seed=N)`` take the ``learning`` fixture
(tests/conftest.py), which

- runs the test with ``torch.set_num_threads(REPROLAB_TEST_THREADS)`` (default 2, CI's cores),
- hands it the seed to train with, ``learning.seed``: REPROLAB_TEST_SEED, default the marker's N,
- asserts each measured value against its threshold (``learning.at_least`` / ``at_most``) and,
  when REPROLAB_LEARNING_RECORD names a file, appends value, threshold and margin to it.

``python -m tests.learning [--threads 1 2] [--seeds 0 1 2] [-- PYTEST ARGS]`` (``nox -s
learning-robustness``) runs every learning test at each (threads, seed) and prints one table:
a row per check, a column per (threads, seed), the threshold and the smallest margin.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

THREADS_VAR, SEED_VAR, RECORD_VAR = "REPROLAB_TEST_THREADS", "REPROLAB_TEST_SEED", "REPROLAB_LEARNING_RECORD"
CI_THREADS = 2  # the CI machine has two cores; every CI run of a learning test uses two threads
SUMMARY: list[str] = []  # lines for the end of the pytest run (tests/conftest.py pytest_terminal_summary)


@dataclass
class Learning:
    """What one learning test runs with (threads, seed) and the checks it made."""

    test: str
    threads: int
    seed: int
    ci_seed: int
    record: Path | None = None
    checks: list[dict] = field(default_factory=list)

    def at_least(self, check: str, value: float, threshold: float) -> None:
        self._check(check, float(value), float(threshold), float(value) - float(threshold), ">=")

    def at_most(self, check: str, value: float, threshold: float) -> None:
        self._check(check, float(value), float(threshold), float(threshold) - float(value), "<=")

    def _check(self, check: str, value: float, threshold: float, margin: float, op: str) -> None:
        row = {"test": self.test, "check": check, "threads": self.threads, "seed": self.seed,
               "ci_seed": self.ci_seed, "value": value, "op": op, "threshold": threshold,
               "margin": margin, "ok": margin >= 0}
        self.checks.append(row)
        if self.record is not None:
            with self.record.open("a") as f:
                f.write(json.dumps(row) + "\n")
        assert margin >= 0, (f"{check}: {value:.4g} is not {op} {threshold:.4g} "
                             f"({self.threads} threads, seed {self.seed})")


def from_environment(test: str, ci_seed: int) -> Learning:
    record = os.environ.get(RECORD_VAR)
    return Learning(test=test, threads=int(os.environ.get(THREADS_VAR, CI_THREADS)),
                    seed=int(os.environ.get(SEED_VAR, ci_seed)), ci_seed=ci_seed,
                    record=Path(record) if record else None)


# ---- the robustness grid ---------------------------------------------------------------------
def _number(value: float) -> str:
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.3f}"


def table(rows: Sequence[dict], threads: Sequence[int], seeds: Sequence[int]) -> str:
    """Markdown: a row per (test, check), a column per (threads, seed) holding the measured value
    (`*`: the CI setting, two threads and the test's own seed; `FAIL` after a value below its
    threshold; `-`: not measured), then the threshold and the smallest margin over the grid."""
    from tabulate import tabulate

    cells: dict[tuple[str, str], dict[tuple[int, int], dict]] = {}
    for row in rows:
        cells.setdefault((row["test"], row["check"]), {})[(row["threads"], row["seed"])] = row
    header = ["test", "check", *(f"t{t} s{s}" for t in threads for s in seeds), "threshold", "min margin"]
    body = []
    for (test, check), grid in cells.items():
        any_row = next(iter(grid.values()))
        line = [test.split("::")[-1], check]
        for t in threads:
            for s in seeds:
                row = grid.get((t, s))
                if row is None:
                    line.append("-")
                    continue
                mark = "*" if (t == CI_THREADS and s == row["ci_seed"]) else ""
                line.append(_number(row["value"]) + mark + ("" if row["ok"] else " FAIL"))
        margins = [row["margin"] for row in grid.values()]
        missing = len(grid) < len(threads) * len(seeds)
        line += [f"{any_row['op']} {_number(any_row['threshold'])}",
                 _number(min(margins)) + (" (cells missing)" if missing else "")]
        body.append(line)
    return tabulate(body, header, tablefmt="github", disable_numparse=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.learning",
                                     description="Run every learning test at each thread count and seed.")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--record", type=Path, help="keep every check as JSON lines in this file")
    parser.add_argument("--out", type=Path, help="also write the table to this file")
    parser.add_argument("pytest_args", nargs="*", help="after --: more pytest arguments (-k ...)")
    args = parser.parse_args(argv)
    record = args.record or Path(tempfile.mkdtemp(prefix="learning-")) / "checks.jsonl"
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text("")
    failed = []
    for threads in args.threads:
        for seed in args.seeds:
            env = {**os.environ, THREADS_VAR: str(threads), SEED_VAR: str(seed), RECORD_VAR: str(record)}
            # OpenMP threads that sleep instead of spinning while they wait: the same arithmetic
            # (the same values, bit for bit), but on a machine shared with other jobs two spinning
            # threads ran ten times slower than one.
            env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
            started = time.perf_counter()
            print(f"== {threads} thread(s), seed {seed}", flush=True)
            code = subprocess.call([sys.executable, "-m", "pytest", "-m", "learning", "-q",
                                    "-p", "no:cacheprovider", *args.pytest_args], env=env)
            print(f"== {threads} thread(s), seed {seed}: pytest exit {code} in "
                  f"{time.perf_counter() - started:.0f} s", flush=True)
            if code != 0:
                failed.append((threads, seed))
    rows = [json.loads(line) for line in record.read_text().splitlines() if line]
    text = (f"Learning checks at {len(args.threads)} thread count(s) x {len(args.seeds)} seed(s) "
            f"(records: {record})\n\n" + table(rows, args.threads, args.seeds) + "\n")
    sys.stdout.write("\n" + text)
    if args.out:
        args.out.write_text(text)
    if failed:
        print(f"failing pytest runs (threads, seed): {failed}", file=sys.stderr)
    return 1 if failed or not rows else 0


if __name__ == "__main__":
    sys.exit(main())
