"""A recipe's chain as DVC stages: `reprolab stages dvc <recipe> --profile tiny [overrides]`.

Writes pipelines/<recipe>/<profile>/dvc.yaml (DVC finds dvc.yaml files in subfolders; run it
with `dvc repro pipelines/<recipe>/<profile>/dvc.yaml`, or plain `dvc repro`):

    resolve         always_changed: `reprolab stages resolve ...` rewrites every stage's spec
                    (runs/<recipe>/<profile>/specs/<stage>.yaml) from the recipe files as they
                    are now, bases and benchmark included; cheap, and no file list to maintain
    <stage>, ...    `reprolab run-stage <recipe> <stage> ...`, depending on its own spec file,
                    the prepared data it reads, the outputs of the stages it reads and the code;
                    output: its stage folder, metrics: metrics/<profile>/<recipe>/<stage>.json
    plots           per task stage, `<stage>/loss` and `<stage>/eval_<metric>` (its benchmark's
                    first metric) per epoch from its run's history.json (`dvc plots show`)

DVC skips a stage whose dependencies hash as before, so editing one stage's keys in the recipe
changes that stage's spec only: it and the stages that read its outputs run again, the earlier
ones are skipped. Overrides given here are baked into the commands: `stages.<s>.` overrides go
to the command of stage s and of the stages after it that read it (and to resolve), so they do
not invalidate earlier stages. Outputs are not cached (`cache: false`), like the root dvc.yaml's
runs: checkpoints stay where the run wrote them.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

import yaml

from reprolab import atomic
from reprolab.engine.logs import HISTORY_ARRAY
from reprolab.pipeline.layout import StageLayout
from reprolab.pipeline.resolve import load_chain, split_overrides, upstream

TASK_CODE = ("src/reprolab/engine", "src/reprolab/models", "src/reprolab/tasks")
INFERENCE_CODE = ("src/reprolab/pipeline", "src/reprolab/models", "src/reprolab/tasks")


def _command(*words: str) -> str:
    return " ".join(shlex.quote(w) for w in words)


def _data_deps(spec: dict[str, Any], reg, profile: str) -> list[str]:
    datasets = [spec["benchmark_spec"]["dataset"], *spec["data"].get("extra_datasets", [])]
    deps = []
    for dataset in datasets:
        card = reg.datasets.get(dataset)
        folder = "raw" if card is not None and card.kind == "weights" else "prepared"
        deps.append(f"datasets/{dataset}/{profile}/{folder}")
    return deps


def dvc_stages(recipe_id: str, profile: str, overrides: list[str] | None = None,
               seed: int | None = None, root: Path | None = None) -> dict[str, Any]:
    """The `stages:` mapping of the chain's dvc.yaml."""
    from reprolab.registry import load_registry

    overrides = list(overrides or [])
    _, specs, layout = load_chain(recipe_id, profile, overrides, seed, root)
    reg = load_registry(root)
    checkout = layout.checkout
    wdir = os.path.relpath(checkout, layout.dvc_file.parent)
    head = [recipe_id, "--profile", profile, *(["--seed", str(seed)] if seed is not None else [])]
    common, scoped = split_overrides(overrides, list(specs))
    stages: dict[str, Any] = {"resolve": {
        "cmd": _command("reprolab", "stages", "resolve", *head, *overrides),
        "wdir": wdir,
        "always_changed": True,
        "outs": [{layout.relative(layout.spec(name)): {"cache": False}} for name in specs],
    }}
    for name, spec in specs.items():
        reads = upstream(specs, name)
        mine = [*common, *(t for n in [*reads, name] for t in scoped[n])]
        kind = spec["stage"]["kind"]
        data_spec = spec if kind == "task" else specs[spec["stage"]["from"]]
        deps = [layout.relative(layout.spec(name)), *_data_deps(data_spec, reg, profile)]
        deps += [layout.relative(layout.stage_dir(i)) for i in spec["stage"]["inputs"]]
        deps += [c for c in (TASK_CODE if kind == "task" else INFERENCE_CODE) if (checkout / c).exists()]
        stages[name] = {
            "cmd": _command("reprolab", "run-stage", recipe_id, name, *head[1:], "--no-progress", *mine),
            "wdir": wdir,
            "deps": deps,
            "outs": [{layout.relative(layout.stage_dir(name)): {"cache": False}}],
            "metrics": [{layout.relative(layout.metrics(name)): {"cache": False}}],
        }
    return stages


def dvc_plots(recipe_id: str, profile: str, overrides: list[str] | None = None,
              seed: int | None = None, root: Path | None = None) -> list[dict[str, Any]]:
    """The `plots:` list: each task stage's loss and primary metric, each on its own axes (given no
    y field, DVC would plot the history's last column, eval_samples)."""
    _, specs, layout = load_chain(recipe_id, profile, list(overrides or []), seed, root)
    plots = []
    for name, spec in specs.items():
        if spec["stage"]["kind"] != "task":
            continue
        # Paths in dvc.yaml outside stages are relative to its folder.
        history = os.path.relpath(layout.run_dir(name) / HISTORY_ARRAY, layout.dvc_file.parent)
        fields = ["loss"]
        if spec["optim"].get("eval_every", 1):  # 0: never evaluated while training
            fields.append(f"eval_{spec['benchmark_spec']['metrics'][0]}")
        for field in fields:
            plots.append({f"{name}/{field}": {"x": "epoch", "y": {history: field}}})
    return plots


def write_dvc_yaml(recipe_id: str, profile: str, overrides: list[str] | None = None,
                   seed: int | None = None, root: Path | None = None) -> Path:
    layout = StageLayout(recipe_id, profile, root)
    stages = dvc_stages(recipe_id, profile, overrides, seed, root)
    plots = dvc_plots(recipe_id, profile, overrides, seed, root)
    words = ["reprolab", "stages", "dvc", recipe_id, "--profile", profile,
             *(["--seed", str(seed)] if seed is not None else []), *(overrides or [])]
    header = (f"# Generated by `{_command(*words)}`: the stages of recipe {recipe_id}\n"
              f"# ({profile} profile) as DVC stages. Regenerate it instead of editing it.\n")
    text = header + yaml.safe_dump({"stages": stages, "plots": plots}, sort_keys=False)
    return atomic.write_text(layout.dvc_file, text)
