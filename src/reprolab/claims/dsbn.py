"""Claims benchmark: does DSBN help unsupervised domain adaptation, and does stage 2 add to it?

A small-scale replay of the paper's ladder on the Office-31 tiny fixture, whose domains draw the
same class shapes under a per-domain colour, contrast and background transform
(reprolab.data.fixtures.office31): target accuracy of

    source only (shared BN, no adaptation loss) < MSTN with shared BN ("MSTN reproduced")
    < MSTN + DSBN (stage 1) < MSTN + DSBN, stage 1 + stage 2 (self-training)

Every model runs the tiny profile of one DSBN recipe (default office31-a2w) through the shared
engine, with only the keys below changed: the same backbone, input, schedule and seeds. The
source-only row also reports its source accuracy (the fixture's shift: source >> target).

Run (after `reprolab data fetch office31 --profile tiny && reprolab data prepare office31 --profile tiny`):

    python -m reprolab.claims.dsbn [--recipe office31-a2w] [--seeds 0 1 2] [--out table.md] [key=value ...]

Prints a markdown table of target accuracy (mean +- std over seeds, and per seed). Not run in CI.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from tabulate import tabulate

SOURCE_ONLY = ["model.adversarial=false", "model.semantic=false", "model.dsbn=false"]
SHARED_BN = ["model.dsbn=false"]
# (label, stage-1 overrides, run stage 2?)
MODELS = (
    ("source only (shared BN)", SOURCE_ONLY, False),
    ("MSTN, shared BN (MSTN reproduced)", SHARED_BN, False),
    ("MSTN + DSBN, stage 1", [], False),
    ("MSTN + DSBN, stage 1 + 2", [], True),
)


def _spec(recipe_id: str, stage: str, seed: int, overrides: Sequence[str]) -> dict:
    from reprolab.pipeline.resolve import stage_specs
    from reprolab.registry import load_registry

    reg = load_registry()
    recipe = reg.recipe(recipe_id)
    return stage_specs(recipe, reg.benchmarks[recipe.benchmark], "tiny", list(overrides), seed)[stage]


def _evaluate(task, model, split: str) -> float:
    """Accuracy of `model` on a domain split of the task's dataset, in that domain's branch."""
    from reprolab.engine.distributed import DistContext
    from reprolab.engine.loop import evaluate
    from reprolab.tasks.domain_adaptation import DomainImages

    data = task.data_cfg
    names = [*data.sources, data.target]
    domain = task.target_domain if split == data.target else (0 if data.merge_sources else names.index(split))
    prepared = task.open_split(split)
    dataset = DomainImages([(prepared, r, domain) for r in range(len(prepared))], task.transform(False))
    return evaluate(task, model, dataset, DistContext(), show_progress=False)["acc"]


def train_chain(recipe: str, seed: int, stage1: Sequence[str], with_stage2: bool, overrides: Sequence[str],
                workdir: Path) -> dict[str, float]:
    """Train stage 1 (and stage 2 from it); target and source accuracy of the last stage run."""
    from reprolab.engine.distributed import DistContext
    from reprolab.engine.loop import fit
    from reprolab.tasks import build_task

    out: dict[str, float] = {}
    config = _spec(recipe, "stage1", seed, [*overrides, *stage1])
    task = build_task(config)
    task.check_data()
    run_dir = workdir / f"{recipe}-{abs(hash(tuple(stage1)))}-s{seed}-stage1"
    result = fit(task, config, run_dir, DistContext(), seed=seed, show_progress=False)
    model = task.build_model(pretrained=False)
    import torch

    model.load_state_dict(torch.load(result.final_checkpoint, weights_only=False)["model"])
    out["target"] = _evaluate(task, model, task.data_cfg.target)
    out["source"] = _evaluate(task, model, task.data_cfg.sources[0])
    if with_stage2:
        config2 = _spec(recipe, "stage2", seed, list(overrides))
        config2["init_from"] = {"stage": "stage1", "checkpoint": str(result.final_checkpoint)}
        task2 = build_task(config2)
        result2 = fit(task2, config2, run_dir.with_name(run_dir.name.replace("stage1", "stage2")),
                      DistContext(), seed=seed, show_progress=False)
        model2 = task2.build_model(pretrained=False)
        model2.load_state_dict(torch.load(result2.final_checkpoint, weights_only=False)["model"])
        out["target"] = _evaluate(task2, model2, task2.data_cfg.target)
        out["source"] = _evaluate(task2, model2, task2.data_cfg.sources[0])
    return out


def run(recipe: str, seeds: Sequence[int], overrides: Sequence[str], models=MODELS) -> str:
    rows = []
    with tempfile.TemporaryDirectory(prefix="claims-dsbn-") as tmp:
        for label, stage1, with_stage2 in models:
            target, source, wall = [], [], 0.0
            for seed in seeds:
                started = time.perf_counter()
                out = train_chain(recipe, seed, stage1, with_stage2, overrides, Path(tmp))
                target.append(out["target"])
                source.append(out["source"])
                wall += time.perf_counter() - started
                print(f"{label} seed {seed}: target {out['target']:.1f}, source {out['source']:.1f}",
                      file=sys.stderr, flush=True)
            rows.append([label, _mean_std(target), " / ".join(f"{s:.1f}" for s in target), _mean_std(source),
                         f"{wall / len(seeds):.0f}"])
    headers = ["model", f"target acc % (mean ± std, {len(seeds)} seeds)", "per seed",
               "source acc %", "s per run"]
    return tabulate(rows, headers=headers, tablefmt="github")


def _mean_std(values: list[float]) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.1f} ± {std:.1f}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reprolab.claims.dsbn", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default="office31-a2w")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=None, help="also write the table here")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="applied to every stage of every model's tiny profile, e.g. optim.epochs=4")
    args = parser.parse_args(argv)
    os.environ.setdefault("REPROLAB_NO_PROGRESS", "1")
    table = run(args.recipe, args.seeds, args.overrides)
    print(table)
    if args.out:
        args.out.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
