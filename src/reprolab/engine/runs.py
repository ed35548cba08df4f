"""Run directories: train a resolved config into one, evaluate one into the results store.

A run directory (default runs/<recipe>/<run-id>/; fixed by `out` for DVC) holds:

    config.yaml         the resolved configuration (recipe + profile + overrides + benchmark)
    run.json            run id, seed, profile, device, world size, start time, training wall time
    metrics.jsonl       one line per epoch; history.json, the same as a JSON array (dvc plots)
    checkpoints/        last.pt (resumable), final.pt (evaluated)
    predictions.parquet per-sample predictions of the evaluation (reprolab.predictions)

`train_run` leaves final.pt; `evaluate_run` scores it on the benchmark's evaluation split and
adds one RunResult to results/<recipe>/. A failure of either adds a RunResult with status
"failed" and raises RunFailedError; errors in the configuration or missing data raise before
anything is written.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from reprolab import atomic, paths, predictions
from reprolab.errors import ConfigError, ReprolabError, UsageError
from reprolab.results import ResultsStore, SplitInfo, new_run_id, record_run

CONFIG_FILE = "config.yaml"
RUN_FILE = "run.json"
METRICS_LOG = "metrics.jsonl"


class RunFailedError(ReprolabError, RuntimeError):
    """Training or evaluation raised; a failed RunResult records it (`record` is its path)."""

    def __init__(self, message: str, record: Path):
        super().__init__(message)
        self.record = record


@dataclass(frozen=True)
class TrainedRun:
    run_dir: Path
    run: dict[str, Any]
    history: list[dict[str, Any]]


@dataclass(frozen=True)
class EvaluatedRun:
    run_dir: Path
    config: dict[str, Any]
    metrics: dict[str, float]
    split: SplitInfo
    record: Path


def read_history(run_dir: Path) -> list[dict[str, Any]]:
    log = Path(run_dir) / METRICS_LOG
    if not log.is_file():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def read_run_dir(run_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(config, run) of a run directory, or FileNotFoundError saying how to make one."""
    run_dir = Path(run_dir)
    for name in (CONFIG_FILE, RUN_FILE):
        if not (run_dir / name).is_file():
            raise FileNotFoundError(f"{run_dir / name}: not a run directory (train it with "
                                    "`reprolab train <recipe> --out RUN_DIR`)")
    return yaml.safe_load((run_dir / CONFIG_FILE).read_text()), json.loads((run_dir / RUN_FILE).read_text())


def _differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    keys = sorted(set(saved) | set(current))
    return [k for k in keys if saved.get(k) != current.get(k)]


def _record_failure(stage: str, error: BaseException, config: dict[str, Any], run: dict[str, Any],
                    ctx, started: float, run_dir: Path, hint: str = "",
                    provenance: dict[str, Any] | None = None) -> RunFailedError:
    record = record_run(config, run, status="failed", device=str(ctx.device), world_size=ctx.world_size,
                        error=error, wall_time_s=time.perf_counter() - started,
                        history=read_history(run_dir), log_path=paths.checkout_relative(run_dir / METRICS_LOG),
                        provenance=provenance)
    return RunFailedError(f"{stage} failed: {type(error).__name__}: {error}\n"
                          f"reprolab: recorded in {record}{hint}", record)


def _open_run_dir(config: dict[str, Any], out: Path | None, resume: bool, ctx, run_id: str | None,
                  run_fields: dict[str, Any] | None) -> tuple[Path, dict[str, Any]]:
    from reprolab.engine import distributed

    run_id = run_id or distributed.broadcast_object(ctx, new_run_id(config["seed"]))
    run_dir = Path(out) if out else paths.runs_dir() / config["recipe"] / run_id
    if resume:
        if not (run_dir / CONFIG_FILE).is_file():
            raise ConfigError(f"--resume: {run_dir} holds no run ({CONFIG_FILE} missing); pass the "
                              "run directory with --out")
        changed = _differences(yaml.safe_load((run_dir / CONFIG_FILE).read_text()), config)
        if changed:
            raise ConfigError(f"--resume: the configuration differs from {run_dir / CONFIG_FILE} in "
                              f"{', '.join(changed)}; resume with the same recipe, profile, seed and "
                              "overrides")
        return run_dir, json.loads((run_dir / RUN_FILE).read_text())
    if run_dir.exists() and any(run_dir.iterdir()):
        raise ConfigError(f"--out {run_dir}: the directory already holds a run; pass --resume to "
                          "continue it, or choose another directory")
    run = {"run_id": run_id, "recipe": config["recipe"], "seed": config["seed"],
           "profile": config["profile"], "started_at": datetime.now(UTC).isoformat(),
           "device": str(ctx.device), "world_size": ctx.world_size, **(run_fields or {})}
    if ctx.is_main:
        atomic.write_text(run_dir / CONFIG_FILE, yaml.safe_dump(config, sort_keys=False))
        atomic.write_json(run_dir / RUN_FILE, run)
    distributed.barrier(ctx)
    return run_dir, run


def train_run(config: dict[str, Any], ctx, *, out: Path | None = None, resume: bool = False,
              show_progress: bool = True, run_id: str | None = None,
              run_fields: dict[str, Any] | None = None,
              provenance: dict[str, Any] | None = None) -> TrainedRun:
    """Train `config` (from reprolab.config.resolved_config, or a pipeline stage's spec) into a
    run directory. `run_id` and `run_fields` (extra keys of run.json) come from a pipeline stage;
    `provenance` is added to a failed run's record."""
    from reprolab.engine.init_from import init_checkpoint
    from reprolab.engine.loop import fit
    from reprolab.errors import MissingDataError
    from reprolab.tasks import build_task

    task = build_task(config)
    task.check_data()  # missing data or weights: raise before a run directory is made
    init_checkpoint(config)
    run_dir, run = _open_run_dir(config, out, resume, ctx, run_id, run_fields)
    run["data_hashes"] = {**run.get("data_hashes", {}), **task.splits_read()}  # in its records
    started = time.perf_counter()
    try:
        result = fit(task, config, run_dir, ctx, seed=config["seed"], resume=resume,
                     show_progress=show_progress, verbose=True)
    except UsageError:  # a bad value only the model or loop could see: exit 2, not a failed run
        if ctx.is_main and not resume and not any((run_dir / "checkpoints").glob("*.pt")):
            shutil.rmtree(run_dir, ignore_errors=True)  # nothing was trained: leave no run behind
        raise
    except (MissingDataError, NotImplementedError):
        raise
    except Exception as error:  # noqa: BLE001 - recorded, then reported as a failed run
        if not ctx.is_main:
            raise
        hint = "" if run_fields else (f"; resume with `reprolab train {config['recipe']} --out {run_dir} "
                                      "--resume`")
        raise _record_failure("training", error, config, run, ctx, started, run_dir, hint,
                              provenance) from error
    if ctx.is_main:
        run["train_wall_time_s"] = run.get("train_wall_time_s", 0.0) + result.wall_time_s
        run["epochs_done"] = len(result.history)
        run["data_hashes"] = {**run["data_hashes"], **task.splits_read()}
        atomic.write_json(run_dir / RUN_FILE, run)
    return TrainedRun(run_dir, run, result.history)


def evaluate_run(run_dir: Path, ctx, *, show_progress: bool = True, store: ResultsStore | None = None,
                 provenance: dict[str, Any] | None = None) -> EvaluatedRun | None:
    """Score a run directory's final weights and record the result in `store` (default:
    results/), with `provenance` added (a pipeline stage's chain); rank 0 returns it."""
    from reprolab.engine import checkpoint
    from reprolab.engine.loop import evaluate_with_predictions
    from reprolab.errors import MissingDataError
    from reprolab.tasks import build_task

    run_dir = Path(run_dir)
    config, run = read_run_dir(run_dir)
    task = build_task(config)  # an edited, invalid config.yaml is a usage error, not a failed run
    started = time.perf_counter()
    try:
        final = run_dir / "checkpoints" / checkpoint.FINAL
        if not final.is_file():
            raise FileNotFoundError(
                f"{final}: training did not finish; continue it with `reprolab train "
                f"{config['recipe']} --profile {config['profile']} --out {run_dir} --resume`")
        model = task.build_model(pretrained=False).to(ctx.device)
        model.load_state_dict(checkpoint.load(final, map_location=ctx.device)["model"])
        dataset = task.build_dataset("eval")
        options = task.options
        metrics, samples = evaluate_with_predictions(
            task, model, dataset, ctx, num_workers=options.num_workers, amp=options.amp,
            channels_last=options.channels_last, show_progress=show_progress)
        split = task.describe_split(dataset, "eval")
        if ctx.is_main:  # before the result: a run whose predictions are not written failed
            samples.meta.update(dataset=split.dataset, split=split.name, fingerprint=split.fingerprint,
                                recipe=config["recipe"], run_id=run["run_id"], profile=config["profile"])
            predictions.write(run_dir / predictions.PREDICTIONS_FILE, samples)
        run = {**run, "data_hashes": {**run.get("data_hashes", {}), **task.splits_read()}}
    except (MissingDataError, UsageError):
        raise  # not a failed run: missing data or a bad value (exit 2)
    except Exception as error:  # noqa: BLE001 - recorded, then reported as a failed run
        if not ctx.is_main:
            raise
        raise _record_failure("evaluation", error, config, run, ctx, started, run_dir,
                              provenance=provenance) from error
    if not ctx.is_main:
        return None
    chance = {k.removeprefix("chance:"): v for k, v in metrics.items() if k.startswith("chance:")}
    metrics = {k: v for k, v in metrics.items() if k != "samples" and not k.startswith("chance:")}
    split_info = SplitInfo(dataset=split.dataset, name=split.name, samples=split.samples,
                           fingerprint=split.fingerprint)
    record = record_run(config, run, status="ok", metrics=metrics, chance=chance, split=split_info,
                        device=str(ctx.device), world_size=ctx.world_size,
                        wall_time_s=run.get("train_wall_time_s", 0.0) + time.perf_counter() - started,
                        history=read_history(run_dir), log_path=paths.checkout_relative(run_dir / METRICS_LOG),
                        store=store, provenance=provenance)
    return EvaluatedRun(run_dir, config, metrics, split_info, record)
