"""`reprolab train` and `reprolab evaluate`.

    reprolab train <recipe> [--profile tiny|full] [--seed N] [--out RUN_DIR] [--device cpu|cuda]
                   [--resume] [key=value ...]
    reprolab evaluate <run-dir> [--metrics-out FILE] [--history-out FILE] [--device cpu|cuda]

A run directory (default runs/<recipe>/<run-id>/; `--out` fixes it for DVC) holds:
    config.yaml         the resolved configuration (recipe + profile + overrides + benchmark)
    run.json            run id, seed, profile, device, world size, start time, training wall time
    metrics.jsonl       one line per epoch; history.json, the same as a JSON array (dvc plots)
    checkpoints/        last.pt (resumable), final.pt (evaluated)

`evaluate` scores final.pt on the benchmark's evaluation split and writes one RunResult to
results/<recipe>/<run-id>.json; a failure writes a RunResult with status "failed" and exits 1.
Multi-GPU: `torchrun --nproc-per-node N -m reprolab.cli train ...` (same for evaluate).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from reprolab import atomic, paths
from reprolab.cli import EXIT_FAILED, EXIT_OK, MissingDataError, add_profile_and_overrides
from reprolab.config import ConfigError, resolve

CONFIG_FILE = "config.yaml"
RUN_FILE = "run.json"
METRICS_LOG = "metrics.jsonl"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train", help="train a recipe",
        description="Train RECIPE (see `reprolab list recipes`) and leave a run directory that "
                    "`reprolab evaluate` scores.")
    p.add_argument("recipe")
    p.add_argument("--seed", type=int, default=None, help="default: the recipe's first seed")
    p.add_argument("--out", type=Path, default=None, metavar="RUN_DIR",
                   help="run directory (default runs/<recipe>/<run-id>)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_profile_and_overrides(p)
    p.set_defaults(handler=train_command)

    p = subparsers.add_parser(
        "evaluate", help="evaluate a trained run and record its result",
        description="Score RUN_DIR's final weights on its benchmark and write a RunResult to results/.")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--metrics-out", type=Path, default=None, metavar="FILE",
                   help="also write the metrics as flat JSON (for `dvc metrics show`)")
    p.add_argument("--history-out", type=Path, default=None, metavar="FILE",
                   help="also write the per-epoch training history as a JSON array (for `dvc plots`)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(handler=evaluate_command)


# --------------------------------------------------------------------------- helpers


def resolved_config(recipe_id: str, profile: str, overrides: list[str], seed: int | None) -> dict[str, Any]:
    """The recipe resolved for one run, with its benchmark and seed recorded in it."""
    from reprolab.registry import load_registry

    reg = load_registry()
    recipe = reg.recipe(recipe_id)
    if recipe.stages:  # its result comes from the chain, not from one run of the recipe-level keys
        raise ConfigError(f"recipe {recipe_id} is a multi-stage pipeline ({', '.join(recipe.stages)}); "
                          f"run it with `reprolab run-stages {recipe_id}` or one stage with "
                          f"`reprolab run-stage {recipe_id} <stage>`")
    config = resolve(recipe, profile, overrides)  # type: ignore[arg-type]
    config["benchmark_spec"] = reg.benchmarks[recipe.benchmark].model_dump(mode="json")
    config["seed"] = int(seed if seed is not None else config["seeds"][0])
    return config


def _differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    keys = sorted(set(saved) | set(current))
    return [k for k in keys if saved.get(k) != current.get(k)]


def _provenance(config: dict[str, Any], device: str, world_size: int):
    from reprolab import provenance
    from reprolab.results import Provenance

    root = paths.project_root()
    git = provenance.git_state(root)
    datasets = [config["benchmark_spec"]["dataset"], *config.get("data", {}).get("extra_datasets", [])]
    return Provenance(
        git_commit=git["commit"], git_dirty=git["dirty"],
        data_hashes=provenance.dvc_data_hashes(root, datasets),
        packages=provenance.package_versions(), device=device, world_size=world_size,
        hardware=provenance.hardware(device),
    )


def _read_history(run_dir: Path) -> list[dict[str, Any]]:
    log = run_dir / METRICS_LOG
    if not log.is_file():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def write_result(config: dict[str, Any], run: dict[str, Any], *, status: str, device: str,
                 world_size: int, metrics: dict[str, float] | None = None, split=None,
                 error: str | None = None, wall_time_s: float = 0.0, run_dir: Path | None = None) -> Path:
    from reprolab.results import ResultsStore, RunResult, SplitInfo

    store = ResultsStore()
    result = RunResult(
        run_id=run["run_id"], recipe=config["recipe"], paper=config["paper"],
        benchmark=config["benchmark"], profile=config["profile"], seed=int(config["seed"]),
        status=status, config=config, metrics=metrics or {},
        history=_read_history(run_dir) if run_dir else [], error=error,
        split=SplitInfo(**split.__dict__) if split is not None else None,
        provenance=_provenance(config, device, world_size),
        started_at=run["started_at"], wall_time_s=wall_time_s,
        log_path=str(run_dir / METRICS_LOG) if run_dir else None,
    )
    path = store.path_of(result.recipe, result.run_id)
    if path.is_file() and store.read(path).status == "failed":
        path.unlink()  # a later success (or failure) of the same run supersedes a failed record
    return store.write(result)


def _record_failure(stage: str, error: BaseException, config: dict[str, Any], run: dict[str, Any],
                    ctx, started: float, run_dir: Path, hint: str = "") -> None:
    """Write a `failed` RunResult for `error` and say where it is (rank 0 only)."""
    path = write_result(config, run, status="failed", device=str(ctx.device),
                        world_size=ctx.world_size, error=_error_text(error),
                        wall_time_s=time.perf_counter() - started, run_dir=run_dir)
    print(f"reprolab: {stage} failed: {type(error).__name__}: {error}\n"
          f"reprolab: recorded in {path}{hint}", file=sys.stderr)


def _error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}\n" + "".join(traceback.format_tb(error.__traceback__)[-3:])


# --------------------------------------------------------------------------- train


def train_command(args: argparse.Namespace) -> int:
    import os

    from reprolab.engine import distributed
    from reprolab.engine.loop import fit
    from reprolab.results import new_run_id
    from reprolab.tasks import get_task

    if args.no_progress:
        os.environ["REPROLAB_NO_PROGRESS"] = "1"
    config = resolved_config(args.recipe, args.profile, args.overrides, args.seed)
    seed = config["seed"]
    task = get_task(config)
    task.check_data()  # missing data: exit 4 before a run directory is made
    ctx = distributed.setup(args.device)
    try:
        run_id = distributed.broadcast_object(ctx, new_run_id(seed))
        run_dir = Path(args.out) if args.out else paths.runs_dir() / config["recipe"] / run_id
        run_file = run_dir / RUN_FILE
        if args.resume:
            if not (run_dir / CONFIG_FILE).is_file():
                raise ConfigError(f"--resume: {run_dir} holds no run ({CONFIG_FILE} missing); pass the "
                                  "run directory with --out")
            saved = yaml.safe_load((run_dir / CONFIG_FILE).read_text())
            changed = _differences(saved, config)
            if changed:
                raise ConfigError(f"--resume: the configuration differs from {run_dir / CONFIG_FILE} "
                                  f"in {', '.join(changed)}; resume with the same recipe, profile, "
                                  "seed and overrides")
            run = json.loads(run_file.read_text())
        else:
            if run_dir.exists() and any(run_dir.iterdir()):
                raise ConfigError(f"--out {run_dir}: the directory already holds a run; pass --resume "
                                  "to continue it, or choose another directory")
            run = {"run_id": run_id, "recipe": config["recipe"], "seed": seed,
                   "profile": config["profile"], "started_at": datetime.now(UTC).isoformat(),
                   "device": str(ctx.device), "world_size": ctx.world_size}
            if ctx.is_main:
                atomic.write_text(run_dir / CONFIG_FILE, yaml.safe_dump(config, sort_keys=False))
                atomic.write_json(run_file, run)
        distributed.barrier(ctx)

        started = time.perf_counter()
        try:
            result = fit(task, config, run_dir, ctx, seed=seed, resume=args.resume,
                         show_progress=not args.no_progress, verbose=True)
        except (MissingDataError, NotImplementedError):
            raise
        except Exception as error:  # noqa: BLE001 - recorded, then reported as a failed run
            if ctx.is_main:
                _record_failure("training", error, config, run, ctx, started, run_dir,
                                hint=f"; resume with `reprolab train {config['recipe']} "
                                     f"--out {run_dir} --resume`")
            return EXIT_FAILED
        if ctx.is_main:
            run["train_wall_time_s"] = run.get("train_wall_time_s", 0.0) + result.wall_time_s
            run["epochs_done"] = len(result.history)
            atomic.write_json(run_file, run)
            print(f"run directory: {run_dir}\nnext: reprolab evaluate {run_dir}")
        return EXIT_OK
    finally:
        distributed.teardown()


# --------------------------------------------------------------------------- evaluate


def evaluate_command(args: argparse.Namespace) -> int:
    import os

    from reprolab.engine import checkpoint, distributed
    from reprolab.engine.loop import evaluate
    from reprolab.tasks import get_task

    if args.no_progress:
        os.environ["REPROLAB_NO_PROGRESS"] = "1"
    run_dir = Path(args.run_dir)
    for name in (CONFIG_FILE, RUN_FILE):
        if not (run_dir / name).is_file():
            raise FileNotFoundError(f"{run_dir / name}: not a run directory (train it with "
                                    "`reprolab train <recipe> --out RUN_DIR`)")
    config = yaml.safe_load((run_dir / CONFIG_FILE).read_text())
    run = json.loads((run_dir / RUN_FILE).read_text())
    ctx = distributed.setup(args.device)
    started = time.perf_counter()
    try:
        final = run_dir / "checkpoints" / checkpoint.FINAL
        if not final.is_file():
            raise FileNotFoundError(
                f"{final}: training did not finish; continue it with `reprolab train "
                f"{config['recipe']} --profile {config['profile']} --out {run_dir} --resume`")
        task = get_task(config)
        model = task.build_model(pretrained=False).to(ctx.device)
        model.load_state_dict(checkpoint.load(final, map_location=ctx.device)["model"])
        dataset = task.build_dataset("eval")
        optim = config["optim"]
        metrics = evaluate(task, model, dataset, ctx, num_workers=int(optim.get("num_workers", 0)),
                           amp=optim.get("amp"), channels_last=bool(optim.get("channels_last", False)),
                           show_progress=not args.no_progress)
        split = task.describe_split(dataset, "eval")
    except MissingDataError:
        distributed.teardown()
        raise
    except Exception as error:  # noqa: BLE001 - recorded, then reported as a failed run
        if ctx.is_main:
            _record_failure("evaluation", error, config, run, ctx, started, run_dir)
        distributed.teardown()
        return EXIT_FAILED
    if ctx.is_main:
        metrics = {k: v for k, v in metrics.items() if k != "samples"}
        wall = run.get("train_wall_time_s", 0.0) + time.perf_counter() - started
        path = write_result(config, run, status="ok", metrics=metrics, split=split,
                            device=str(ctx.device), world_size=ctx.world_size,
                            wall_time_s=wall, run_dir=run_dir)
        if args.metrics_out:
            atomic.write_json(Path(args.metrics_out), metrics)
        if args.history_out:
            atomic.write_json(Path(args.history_out), _read_history(run_dir))
        shown = ", ".join(f"{k} {v:.2f}" for k, v in metrics.items())
        print(f"{config['recipe']} ({config['profile']}, seed {config['seed']}) on "
              f"{split.dataset}/{split.name} ({split.samples} samples): {shown}\nresult: {path}")
    distributed.teardown()
    return EXIT_OK
