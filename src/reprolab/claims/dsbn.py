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

import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from tabulate import tabulate

from reprolab.claims.common import emit, fit_config, mean_std, parser, per_seed, trained_model

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
    run_dir = workdir / f"{recipe}-{abs(hash(tuple(stage1)))}-s{seed}-stage1"
    task, result = fit_config(_spec(recipe, "stage1", seed, [*overrides, *stage1]), seed, run_dir)
    if with_stage2:
        config2 = _spec(recipe, "stage2", seed, list(overrides))
        config2["init_from"] = {"stage": "stage1", "checkpoint": str(result.final_checkpoint)}
        task, result = fit_config(config2, seed, run_dir.with_name(run_dir.name.replace("stage1", "stage2")))
    model = trained_model(task, result)
    return {"target": _evaluate(task, model, task.data_cfg.target),
            "source": _evaluate(task, model, task.data_cfg.sources[0])}


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
            rows.append([label, mean_std(target), per_seed(target), mean_std(source),
                         f"{wall / len(seeds):.0f}"])
    headers = ["model", f"target acc % (mean ± std, {len(seeds)} seeds)", "per seed",
               "source acc %", "s per run"]
    return tabulate(rows, headers=headers, tablefmt="github")


def main(argv: Sequence[str] | None = None) -> int:
    p = parser("reprolab.claims.dsbn", __doc__, "applied to every stage of every model's tiny profile, "
               "e.g. optim.epochs=4")
    p.add_argument("--recipe", default="office31-a2w")
    args = p.parse_args(argv)
    return emit("reprolab.claims.dsbn", lambda: run(args.recipe, args.seeds, args.overrides), args.out)


if __name__ == "__main__":
    raise SystemExit(main())
