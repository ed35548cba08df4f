"""Claims benchmark: do motion features (SELFY, MotionSqueeze) beat appearance-only models?

A small-scale replay of the papers' central comparison on the Something-Something V1 tiny fixture,
whose classes differ only by the direction of motion (reprolab.data.fixtures.sthv1): every frame
set is equally likely under both classes of a pair, so a model blind to temporal order (TSN)
should stay at chance, TSM can learn order from its temporal shift, and SELFY / MotionSqueeze add
explicit motion features. Each model runs its recipe's tiny profile (same backbone width, input,
schedule) through the shared engine, for several seeds.

Run (after `reprolab data fetch sthv1 --profile tiny && reprolab data prepare sthv1 --profile tiny`):

    python -m reprolab.claims.video [--seeds 0 1 2] [--out table.md] [key=value ...]

Prints a markdown table of validation top-1 (mean +- std over seeds, and per seed). Minutes per
run on a CPU core; not run in CI.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from tabulate import tabulate

from reprolab.claims.common import emit, fit_config, mean_std, parser, per_seed

MODELS = (
    ("TSN (no temporal modelling)", "sthv1-tsn-r50-8f"),
    ("TSM", "sthv1-tsm-r50-8f"),
    ("MotionSqueeze (TSM + MS)", "sthv1-ms-tsm-r50-8f"),
    ("SELFY (TSM + SELFY)", "sthv1-selfy-tsm-r50-8f"),
)


def train_once(recipe: str, seed: int, overrides: Sequence[str], workdir: Path) -> dict[str, float]:
    from reprolab.config import resolved_config

    _, result = fit_config(resolved_config(recipe, "tiny", list(overrides), seed), seed,
                           workdir / f"{recipe}-s{seed}")
    return {"top1": result.history[-1]["eval_top1"], "wall_s": result.wall_time_s}


def run(seeds: Sequence[int], overrides: Sequence[str], models=MODELS) -> str:
    rows = []
    with tempfile.TemporaryDirectory(prefix="claims-video-") as tmp:
        for label, recipe in models:
            scores, wall = [], 0.0
            for seed in seeds:
                started = time.perf_counter()
                out = train_once(recipe, seed, overrides, Path(tmp))
                scores.append(out["top1"])
                wall += time.perf_counter() - started
                print(f"{label} seed {seed}: top-1 {out['top1']:.1f}", file=sys.stderr, flush=True)
            rows.append([label, recipe, mean_std(scores), per_seed(scores), f"{wall / len(seeds):.0f}"])
    headers = ["model", "recipe (tiny profile)", f"val top-1 % (mean ± std, {len(seeds)} seeds)",
               "per seed", "s per run"]
    return tabulate(rows, headers=headers, tablefmt="github")


def main(argv: Sequence[str] | None = None) -> int:
    args = parser("reprolab.claims.video", __doc__, "applied to every model's tiny profile, e.g. "
                  "optim.epochs=4").parse_args(argv)
    return emit("reprolab.claims.video", lambda: run(args.seeds, args.overrides), args.out)


if __name__ == "__main__":
    sys.exit(main())
