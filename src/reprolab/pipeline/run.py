"""Run one stage of a recipe's chain, and record it.

`run_stage(recipe, stage, profile=..., overrides=..., seed=..., device=...)`:

1. resolves the whole chain (reprolab.pipeline.resolve) and checks every stage this one reads,
   directly or through others: it must have finished (stage.json), with the spec it has now
   (same spec hash) and from the runs that are there now (same run ids). Outputs made with
   another configuration are never read; the error names the stage to run again.
2. empties the stage's folder (stage.json first) and runs the stage:
   - a task run trains with the shared engine (reprolab.engine.loop.fit; `init_from` is the
     engine's), scores final.pt on the benchmark's evaluation split like `reprolab evaluate`,
     and writes a RunResult: to results/<recipe>/ for the last stage (the recipe's result), to
     the stage folder for the others (so that reports never take a teacher for the recipe);
   - an inference step loads the `from` stage's final weights and config, runs the registered
     step (reprolab.pipeline.steps) on the split, and writes a derived split
     (reprolab.data.derived) whose info names this run and stage;
3. writes metrics/<profile>/<recipe>/<stage>.json and, last, stage.json.

Provenance: a task run's config carries `stage_inputs`, and its RunResult `provenance.stages`,
the chain of every stage it depends on and itself, in order: stage, kind, run id, spec hash and
outputs (checkpoint; derived split path, fingerprint and sample count) with their metrics.

A failure in a stage records a failed RunResult for the recipe (error names the stage) and
raises StageFailed.
"""

from __future__ import annotations

import copy
import json
import shutil
import time
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from reprolab import atomic
from reprolab.engine.runs import CONFIG_FILE
from reprolab.errors import ReprolabError
from reprolab.names import unknown_name
from reprolab.pipeline.layout import StageLayout
from reprolab.pipeline.resolve import derived_name, load_chain, spec_hash, upstream


class StageFailed(ReprolabError, RuntimeError):
    """A stage raised while running; a failed RunResult was recorded."""


def read_record(layout: StageLayout, stage: str) -> dict[str, Any] | None:
    path = layout.record(stage)
    return json.loads(path.read_text()) if path.is_file() else None


def chain_entry(record: dict[str, Any]) -> dict[str, Any]:
    """What the provenance chain keeps of a stage's record."""
    keys = ("stage", "kind", "run_id", "spec_sha256")
    return {**{k: record[k] for k in keys}, **record["outputs"], "metrics": record.get("metrics", {})}


def stage_state(specs: dict[str, dict[str, Any]], layout: StageLayout, stage: str) -> tuple[str, str]:
    """("done" | "not run" | "stale", why) for one stage of the chain as it is resolved now."""
    record = read_record(layout, stage)
    if record is None:
        return "not run", "has not run"
    if record["spec_sha256"] != spec_hash(specs[stage]):
        return "stale", "ran with another configuration than it has now"
    for entry in record["chain"]:
        current = read_record(layout, entry["stage"])
        if current is None or current["run_id"] != entry["run_id"]:
            return "stale", f"was made from another run of {entry['stage']!r} than the one there now"
    return "done", ""


def check_inputs(specs: dict[str, dict[str, Any]], layout: StageLayout, stage: str) -> list[dict[str, Any]]:
    """The chain of finished, current stages `stage` reads; MissingDataError naming the first
    stage to run (again) otherwise."""
    from reprolab.errors import MissingDataError

    chain = []
    for name in upstream(specs, stage):
        state, why = stage_state(specs, layout, name)
        if state != "done":
            raise MissingDataError(
                f"stage {stage!r} of {layout.recipe} reads stage {name!r}, which {why}. Run: "
                f"reprolab run-stage {layout.recipe} {name} --profile {layout.profile} (with the same "
                f"--seed and overrides), or the chain: reprolab run-stages {layout.recipe} --from {name}")
        chain.append(chain_entry(read_record(layout, name)))
    return chain


def check_stages(specs: dict[str, dict[str, Any]], device: str | None = None) -> None:
    """Raise a usage error (ConfigError) now for a bad device or a task stage's bad key or value,
    before any stage folder, spec or record is written."""
    from reprolab.engine import distributed
    from reprolab.tasks import build_task

    distributed.resolve_device(device)
    for spec in specs.values():
        if spec["stage"]["kind"] == "task":
            build_task(spec)


def run_stage(recipe_id: str, stage: str, *, profile: str = "full", overrides: list[str] | None = None,
              seed: int | None = None, device: str | None = None,
              show_progress: bool = False) -> dict[str, Any]:
    """Run one stage of the checkout's recipe; return its record (what stage.json holds)."""
    from reprolab.engine import distributed
    from reprolab.engine.runs import RunFailedError
    from reprolab.errors import MissingDataError
    from reprolab.results import new_run_id

    _, specs, layout = load_chain(recipe_id, profile, overrides, seed)
    if stage not in specs:
        raise unknown_name("stage", stage, specs, where=f"recipe {recipe_id}: ")
    spec = specs[stage]
    check_stages({stage: spec}, device)  # usage errors first, before missing inputs or data
    chain = check_inputs(specs, layout, stage)
    kind = spec["stage"]["kind"]
    config = {**copy.deepcopy(spec), "stage_inputs": chain}
    task = None
    if kind == "task":
        from reprolab.tasks import build_task

        task = build_task(config)
        task.check_data()  # missing data: stop before the stage folder is emptied
    ctx = distributed.setup(device)
    try:
        run = {"run_id": distributed.broadcast_object(ctx, new_run_id(int(spec["seed"]))),
               "recipe": recipe_id, "stage": stage, "seed": int(spec["seed"]), "profile": profile,
               "spec_sha256": spec_hash(spec), "started_at": datetime.now(UTC).isoformat(),
               "device": str(ctx.device), "world_size": ctx.world_size}
        started = time.perf_counter()
        if ctx.is_main:
            _clear(layout, stage)
        distributed.barrier(ctx)
        try:
            if task is not None:
                outputs, metrics = _train_and_evaluate(task, config, chain, run, layout, ctx, show_progress)
            else:
                outputs, metrics = _infer(config, run, layout, ctx)
        except (MissingDataError, NotImplementedError):
            raise
        except RunFailedError as error:  # the engine recorded it (its chain names this stage)
            raise StageFailed(f"stage {stage!r} of {recipe_id}: {error}") from error
        except Exception as error:  # noqa: BLE001 - recorded, then reported as a failed stage
            if ctx.is_main:
                path = _record_failure(config, run, error, ctx, time.perf_counter() - started, chain)
                raise StageFailed(f"stage {stage!r} of {recipe_id} failed: {type(error).__name__}: "
                                  f"{error}\nrecorded in {path}") from error
            raise
        record = {"recipe": recipe_id, "profile": profile, "stage": stage, "kind": kind,
                  "run_id": run["run_id"], "seed": run["seed"], "spec_sha256": run["spec_sha256"],
                  "started_at": run["started_at"],
                  "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
                  "wall_time_s": time.perf_counter() - started,
                  "outputs": outputs, "metrics": metrics, "chain": chain}
        if ctx.is_main:
            atomic.write_json(layout.metrics(stage), metrics)
            atomic.write_json(layout.record(stage), record)   # last: the stage is complete
        distributed.barrier(ctx)
        return record
    finally:
        distributed.teardown()


def _clear(layout: StageLayout, stage: str) -> None:
    layout.record(stage).unlink(missing_ok=True)   # first: from now on the stage is "not run"
    layout.metrics(stage).unlink(missing_ok=True)
    shutil.rmtree(layout.stage_dir(stage), ignore_errors=True)
    layout.stage_dir(stage).mkdir(parents=True)


# --------------------------------------------------------------------------- task runs


def _train_and_evaluate(task, config: dict[str, Any], chain: list[dict[str, Any]], run: dict[str, Any],
                        layout: StageLayout, ctx, show_progress: bool):
    """The stage's run directory through the engine's own train_run and evaluate_run."""
    from reprolab.engine.runs import evaluate_run, train_run
    from reprolab.results import ResultsStore

    name = run["stage"]
    me = {"stage": name, "kind": "task", "run_id": run["run_id"], "spec_sha256": run["spec_sha256"]}
    run_fields = {k: run[k] for k in ("stage", "spec_sha256")}
    train_run(config, ctx, out=layout.run_dir(name), show_progress=show_progress, run_id=run["run_id"],
              run_fields=run_fields, provenance={"stages": [*chain, {**me, "status": "failed"}]})
    outputs = {"run_dir": layout.relative(layout.run_dir(name)),
               "checkpoint": layout.relative(layout.checkpoint(name))}
    # The last stage's result is the recipe's (results/<recipe>/); the others stay in their
    # stage folder, so that reports never take a teacher's score for the recipe's.
    store = None if config["stage"]["final"] else ResultsStore(layout.stage_dir(name) / "results")
    # The provenance chain names this stage's outputs; its metrics are known only after evaluation.
    evaluated = evaluate_run(layout.run_dir(name), ctx, show_progress=show_progress, store=store,
                             provenance={"stages": [*chain, {**me, **outputs}]})
    if evaluated is None:  # not rank 0
        return outputs, {}
    outputs["result"] = layout.relative(evaluated.record)
    split, shown = evaluated.split, ", ".join(f"{k} {v:.2f}" for k, v in evaluated.metrics.items())
    print(f"{layout.recipe} stage {name} ({layout.profile}, seed {config['seed']}) on "
          f"{split.dataset}/{split.name} ({split.samples} samples): {shown}\nresult: {evaluated.record}",
          flush=True)
    return outputs, evaluated.metrics


def _record_failure(config: dict[str, Any], run: dict[str, Any], error: BaseException, ctx,
                    wall_time_s: float, chain: list[dict[str, Any]]) -> Path:
    """A failed inference step: a failed RunResult of the recipe whose error names the stage."""
    from reprolab.results import error_text, record_run

    me = {"stage": run["stage"], "kind": config["stage"]["kind"], "run_id": run["run_id"],
          "spec_sha256": run["spec_sha256"], "status": "failed"}
    return record_run(config, run, status="failed", device=str(ctx.device), world_size=ctx.world_size,
                      error=f"stage {run['stage']}: {error_text(error)}", wall_time_s=wall_time_s,
                      provenance={"stages": [*chain, me]})


# --------------------------------------------------------------------------- inference steps


def _infer(config: dict[str, Any], run: dict[str, Any], layout: StageLayout, ctx):
    """Run the step on the `from` stage's model (main process only) and write the derived split."""
    from reprolab.data.derived import write_derived_split
    from reprolab.data.reader import open_split
    from reprolab.engine import checkpoint, distributed
    from reprolab.engine.distributed import DistContext
    from reprolab.engine.loop import predict_all
    from reprolab.pipeline.steps import STEPS, InferenceRun
    from reprolab.tasks import build_task
    from reprolab.tasks.base import SplitDescription

    stage = config["stage"]
    source_stage = stage["from"]
    outputs = {"split": layout.split_ref(run["stage"], derived_name(stage))}
    if not ctx.is_main:
        distributed.barrier(ctx)
        return outputs, {}
    trained = yaml.safe_load((layout.run_dir(source_stage) / CONFIG_FILE).read_text())
    if stage.get("dataset") is None:
        trained["data"]["eval_split"] = stage["split_name"]  # the split to infer on, eval transforms
    task = build_task(trained)
    model = task.build_model(pretrained=False).to(ctx.device)
    model.load_state_dict(checkpoint.load(layout.checkpoint(source_stage), map_location=ctx.device)["model"])
    step = STEPS.get(stage["infer"])
    if stage.get("dataset") is not None:
        # another dataset than the model's (web-video WSSS: the VOC encoder on the user's videos):
        # the step reads the prepared split itself; the task's predict does not apply to it
        source = open_split(stage["dataset"], stage["split_name"], trained["profile"])
        dataset, predictions = source, _no_predictions(stage)
        described = SplitDescription(stage["dataset"], stage["split_name"], len(source), source.fingerprint)
    else:
        dataset = task.build_dataset("eval")
        described = task.describe_split(dataset, "eval")
        source = open_split(described.dataset, described.name, trained["profile"])
        alone = DistContext(device=ctx.device)  # the step runs on rank 0 only: no collective calls
        predictions = partial(predict_all, task, model, dataset, alone, show_progress=False,
                              num_workers=task.options.num_workers)
    rows = step.function(InferenceRun(task, model, dataset, source, predictions),
                         step.parse_options(stage["options"]))
    from_record = read_record(layout, source_stage) or {}
    info = write_derived_split(layout.split_dir(run["stage"]), derived_name(stage), source, rows, derived={
        "recipe": config["recipe"], "profile": config["profile"], "stage": run["stage"],
        "run_id": run["run_id"], "step": step.name, "options": stage["options"],
        "from": {"stage": source_stage, "run_id": from_record.get("run_id")},
        "chain": config["stage_inputs"],
    })
    outputs.update(fingerprint=info["fingerprint"], samples=info["samples"])
    metrics = {k: float(v) for k, v in rows.metrics.items()}
    shown = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items())
    print(f"{layout.recipe} stage {run['stage']} ({step.name} on {described.dataset}/"
          f"{described.name}, {info['samples']} of {len(source)} samples kept): {shown}\n"
          f"derived split: {outputs['split']} ({info['fingerprint']})", flush=True)
    distributed.barrier(ctx)
    return outputs, metrics


def _no_predictions(stage: dict[str, Any]):
    def predictions():
        raise NotImplementedError(f"step {stage['infer']} infers on dataset {stage['dataset']}, not on "
                                  "its model's task split: it cannot use run.predict()")
    return predictions
