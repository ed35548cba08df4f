"""Claims benchmark: does UBBR tighten rough boxes, also around objects of a class it never saw?

A small-scale replay of UBBR's central claim on the tiny fixtures: the regressor trains on the
COCO 2017 fixture without one class (data.held_out_classes of the tiny profile: fixture "car",
drawn like VOC "bird"), then refines rough boxes (IoU >= 0.3) drawn around every object of the
VOC 2007 fixture (trainval + test). Mean IoU with the object before and after refinement, over
all objects and over the held-out class, for several seeds, through the shared engine
(recipe ubbr-rough-boxes-voc2007, tiny profile).

Run (after `reprolab data prepare coco2017 --profile tiny` and the same for voc2007, each after
its `reprolab data fetch`):

    python -m reprolab.claims.ubbr [--seeds 0 1 2] [--out table.md] [key=value ...]

Prints a markdown table; about 15 s per seed on one CPU core.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from tabulate import tabulate

from reprolab.claims.common import emit, fit_config, mean_std, parser, per_seed, trained_model

RECIPE = "ubbr-rough-boxes-voc2007"


def refine_once(seed: int, overrides: Sequence[str], workdir: Path, recipe: str = RECIPE) -> dict[str, float]:
    """Train the recipe's tiny profile with `seed`, then evaluate it: its metrics and wall time."""
    from reprolab.config import resolved_config
    from reprolab.engine.distributed import DistContext
    from reprolab.engine.loop import evaluate

    started = time.perf_counter()
    task, result = fit_config(resolved_config(recipe, "tiny", list(overrides), seed), seed,
                              workdir / f"{recipe}-s{seed}")
    metrics = evaluate(task, trained_model(task, result), task.build_dataset("eval"), DistContext(),
                       show_progress=False)
    return {**metrics, "wall_s": time.perf_counter() - started}


def run(seeds: Sequence[int], overrides: Sequence[str]) -> tuple[str, list[dict[str, float]]]:
    results = []
    with tempfile.TemporaryDirectory(prefix="claims-ubbr-") as tmp:
        for seed in seeds:
            out = refine_once(seed, overrides, Path(tmp))
            results.append(out)
            print(f"seed {seed}: mIoU {out['miou_before']:.1f} -> {out['miou_after']:.1f}, held-out class "
                  f"{out.get('miou_before_unseen', float('nan')):.1f} -> {out.get('miou_after_unseen', float('nan')):.1f}",
                  file=sys.stderr, flush=True)

    def cell(key: str) -> str:
        values = [r[key] for r in results if key in r]
        return f"{mean_std(values)} ({per_seed(values)})" if values else "-"

    rows = [["all objects", cell("miou_before"), cell("miou_after"), cell("miou_gain")],
            ["held-out class", cell("miou_before_unseen"), cell("miou_after_unseen"), cell("miou_gain_unseen")],
            ["classes seen in training", "-", cell("miou_after_seen"), "-"]]
    headers = ["objects", "mIoU before (rough boxes)", "mIoU after UBBR", "gain"]
    note = (f"\nmean ± std (per seed) over seeds {', '.join(map(str, seeds))}; recipe {RECIPE}, tiny "
            f"profile; {statistics.mean(r['wall_s'] for r in results):.0f} s per seed")
    return tabulate(rows, headers=headers, tablefmt="github") + "\n" + note, results


def main(argv: Sequence[str] | None = None) -> int:
    args = parser("reprolab.claims.ubbr", __doc__, "applied to the recipe's tiny profile, e.g. "
                  "optim.epochs=10").parse_args(argv)
    return emit("reprolab.claims.ubbr", lambda: run(args.seeds, args.overrides)[0], args.out)


if __name__ == "__main__":
    sys.exit(main())
