"""A stage's spec: its whole configuration, resolved from the recipe, the profile and overrides.

Order of precedence, lowest first: the recipe (with its bases), the recipe's `tiny:` block (tiny
profile), the stage's own model/data/optim/eval, the stage's `tiny:` block, then the `key=value`
overrides. `optim.lr=0.1` applies to every task stage; `stages.<stage>.<key>=value` to one stage
(`stages.student.optim.lr=0.1`, `stages.pseudo-labels.options.min_score=0.5`).

A task stage's spec is a resolved config as `reprolab train` would use (recipe, task, model,
data, optim, eval, seed, benchmark_spec, ...) plus `stage:` (its name, kind and inputs) and,
where it reads earlier stages, `data.train_split` (the derived split's path) and `init_from`
(the checkpoint path). An inference stage's spec holds the step, its options, the `from` stage
and the split. A spec holds nothing that changes from run to run (no run ids, times or machine
paths), so a spec file's hash changes exactly when the stage would compute something else: that
is what DVC compares.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from reprolab import atomic
from reprolab.config import OVERRIDABLE, ConfigError, apply_override, resolve
from reprolab.names import unknown_name
from reprolab.pipeline.layout import StageLayout
from reprolab.pipeline.steps import STEPS
from reprolab.registry import Benchmark, Recipe, deep_merge
from reprolab.registry.stages import TASK_BLOCKS, Stage, check_chain, describe_errors

PREFIX = "stages."
# A recipe without `stages:` is a chain of one task stage, so that run-stage and `stages dvc`
# (a DVC pipeline per recipe) treat every recipe alike; `reprolab train` runs the same config.
PLAIN_STAGE = "train"


def recipe_stages(recipe: Recipe) -> dict[str, Stage]:
    """The recipe's chain: its `stages:`, or one task stage named `train` for a plain recipe."""
    return dict(recipe.stages) if recipe.stages else {PLAIN_STAGE: Stage()}


def split_overrides(overrides: list[str], stages: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """(overrides of every task stage, {stage: its own `stages.<stage>.` overrides})."""
    common: list[str] = []
    scoped: dict[str, list[str]] = {name: [] for name in stages}
    for text in overrides:
        key = text.split("=", 1)[0].lstrip("+")
        if not key.startswith(PREFIX):
            common.append(text)
            continue
        parts = key.split(".")
        if len(parts) < 3 or "=" not in text:
            raise ConfigError(f"override {text!r}: expected stages.<stage>.<key>=value")
        if parts[1] not in scoped:
            raise ConfigError(f"override {text!r}: no stage {parts[1]!r} (stages: {', '.join(stages)})")
        scoped[parts[1]].append(text)
    return common, scoped


def _unscoped(text: str) -> tuple[str, list[str]]:
    """`+stages.s.optim.x=1` -> (`+optim.x=1`, ["optim", "x"])."""
    key, value = text.split("=", 1)
    plus = "+" if key.startswith("+") else ""
    parts = key.lstrip("+").split(".")[2:]
    return f"{plus}{'.'.join(parts)}={value}", parts


def _set(raw: dict[str, Any], parts: list[str], text: str) -> None:
    value_text = text.split("=", 1)[1]
    try:
        value = yaml.safe_load(value_text) if value_text != "" else ""
    except yaml.YAMLError as error:
        raise ConfigError(f"override {text!r}: value is not valid YAML: {error}") from None
    node = raw
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {text!r}: `{part}` is not a mapping")
    node[parts[-1]] = value


def _block_override(parts: list[str]) -> bool:
    """Overrides of a task stage's model/data/optim/eval apply to its merged config, like
    `reprolab train` overrides (+ adds a key); the rest (init_from, options, ...) to the stage."""
    return parts[0] in TASK_BLOCKS and parts[:2] not in (["data", "train_from"], ["data", "eval_from"])


def _stages(recipe: Recipe, scoped: dict[str, list[str]]) -> dict[str, Stage]:
    """The recipe's stages with their stage-level overrides applied and validated again."""
    if not any(scoped.values()):
        return recipe_stages(recipe)
    stages = {}
    for name, stage in recipe_stages(recipe).items():
        raw = stage.model_dump(by_alias=True, exclude_unset=True)
        texts = [t for t in scoped[name] if not _block_override(_unscoped(t)[1])]
        for text in texts:
            _set(raw, _unscoped(text)[1], text)
        try:
            stages[name] = Stage.model_validate(raw)
        except ValidationError as error:
            raise ConfigError(f"override(s) {', '.join(texts)}: stage {name!r}: "
                              f"{describe_errors(error)}") from None
    try:
        return check_chain(stages)
    except ValueError as error:
        raise ConfigError(f"overrides {scoped}: {error}") from None


def _default_splits(body: dict[str, Any], benchmark: Benchmark) -> dict[str, Any]:
    data = body.get("data", {})
    return {"train": data.get("train_split", benchmark.train_split or "train"),
            "eval": data.get("eval_split", benchmark.eval_split)}


def stage_specs(recipe: Recipe, benchmark: Benchmark, profile: str = "full",
                overrides: list[str] | None = None, seed: int | None = None, *,
                root: Path | None = None) -> dict[str, dict[str, Any]]:
    """Every stage's spec, in chain order (a plain recipe: its one `train` stage)."""
    common, scoped = split_overrides(list(overrides or []), list(recipe_stages(recipe)))
    stages = _stages(recipe, scoped)
    base = resolve(recipe, profile, [])  # type: ignore[arg-type]
    seed = int(seed if seed is not None else base["seeds"][0])
    layout = StageLayout(recipe.id, profile, root)
    head = {"recipe": recipe.id, "paper": recipe.paper, "title": recipe.title,
            "benchmark": recipe.benchmark, "profile": profile}
    last = list(stages)[-1]
    specs: dict[str, dict[str, Any]] = {}
    split_names: dict[str, dict[str, Any]] = {}
    for name, stage in stages.items():
        if stage.kind == "task":
            data = {k: v for k, v in stage.data.items() if k not in ("train_from", "eval_from")}
            body = deep_merge({k: copy.deepcopy(base[k]) for k in OVERRIDABLE},
                              {"model": stage.model, "data": data, "optim": stage.optim, "eval": stage.eval})
            if profile == "tiny":
                body = deep_merge(body, stage.tiny)
            mine = [_unscoped(t)[0] for t in scoped[name] if _block_override(_unscoped(t)[1])]
            for text in [*common, *mine]:
                apply_override(body, text)
            split_names[name] = _default_splits(body, benchmark)
            spec = {**head, "task": stage.task or recipe.task, **body,
                    "overrides": [*common, *scoped[name]],
                    "benchmark_spec": benchmark.model_dump(mode="json"), "seed": seed}
            if stage.train_from is not None:
                made_by = specs[stage.train_from]["stage"]
                spec["data"]["train_split"] = layout.split_ref(stage.train_from, derived_name(made_by))
            if stage.eval_from is not None:
                made_by = specs[stage.eval_from]["stage"]
                spec["data"]["eval_split"] = layout.split_ref(stage.eval_from, derived_name(made_by))
            if stage.init_from is not None:
                spec["init_from"] = {"stage": stage.init_from,
                                     "checkpoint": layout.relative(layout.checkpoint(stage.init_from))}
            spec["stage"] = {"name": name, "kind": "task", "inputs": stage.inputs,
                             "train_from": stage.train_from, "init_from": stage.init_from,
                             "final": name == last}
            if stage.eval_from is not None:
                spec["stage"]["eval_from"] = stage.eval_from
            # what an inference stage `from` this one reads: the derived splits it trains / evaluates on
            split_names[name] = {"train": spec["data"].get("train_split", split_names[name]["train"]),
                                 "eval": spec["data"].get("eval_split", split_names[name]["eval"])}
        else:
            split_name = stage.split if stage.dataset else split_names[stage.from_][stage.split]
            if not isinstance(split_name, str):
                raise ConfigError(f"recipe {recipe.id}, stage {name}: stage {stage.from_!r} "
                                  f"evaluates several splits ({split_name}); set its "
                                  "data.eval_split to the one to infer on")
            options = dict(stage.options)
            if profile == "tiny":
                options.update(stage.tiny.get("options", {}))
                # the command line wins over the recipe's tiny options too
                holder = {"options": options}
                for text in scoped[name]:
                    if _unscoped(text)[1][0] == "options":
                        _set(holder, _unscoped(text)[1], text)
                options = holder["options"]
            if stage.infer not in STEPS:
                raise unknown_name("inference step", stage.infer, STEPS.names(),
                                   where=f"recipe {recipe.id}: key `stages.{name}.infer`: ")
            try:
                parsed = STEPS.get(stage.infer).parse_options(options).model_dump(mode="json")
            except ValueError as error:
                raise ConfigError(f"recipe {recipe.id}: key `stages.{name}.options`: {error}") from None
            spec = {**head, "overrides": list(scoped[name]), "seed": seed,
                    "stage": {"name": name, "kind": "inference", "inputs": stage.inputs,
                              "infer": stage.infer, "from": stage.from_, "split": stage.split,
                              "split_name": split_name, "options": parsed}}
            if stage.dataset is not None:
                spec["stage"]["dataset"] = stage.dataset
            if "/" in split_name:  # inferring on a derived split: name the output by its last part
                spec["stage"]["derived_name"] = split_name.rsplit("/", 1)[-1]
        specs[name] = spec
    return specs


def derived_name(stage: dict[str, Any]) -> str:
    """The split name an inference stage writes (`<stage>/split/<name>`): its source split's name,
    or the last part of it when the source is itself a derived split."""
    return stage.get("derived_name", stage["split_name"])


def spec_hash(spec: dict[str, Any]) -> str:
    return "sha256:" + hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def upstream(specs: dict[str, dict[str, Any]], stage: str) -> list[str]:
    """The stages `stage` reads, directly or through others, in chain order."""
    seen: set[str] = set()
    todo = list(specs[stage]["stage"]["inputs"])
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(specs[name]["stage"]["inputs"])
    return [name for name in specs if name in seen]


def write_specs(specs: dict[str, dict[str, Any]], layout: StageLayout) -> list[Path]:
    """Write each spec to runs/<recipe>/<profile>/specs/<stage>.yaml (atomically)."""
    return [atomic.write_text(layout.spec(name), yaml.safe_dump(spec, sort_keys=False))
            for name, spec in specs.items()]


def load_chain(recipe_id: str, profile: str, overrides: list[str] | None = None,
               seed: int | None = None, root: Path | None = None):
    """(recipe, specs, layout) of a recipe's chain in the checkout `root`."""
    from reprolab.registry import load_registry

    reg = load_registry(root)
    recipe = reg.recipe(recipe_id)
    specs = stage_specs(recipe, reg.benchmarks[recipe.benchmark], profile, overrides, seed, root=root)
    return recipe, specs, StageLayout(recipe.id, profile, root)


def check_stages(reg) -> int:
    """Resolve every multi-stage recipe's chain in both profiles and type-check each task stage
    through its task's typed blocks; RegistryErrors names each recipe file and key at fault."""
    from reprolab.registry import RegistryError, RegistryErrors
    from reprolab.tasks import build_task

    errors, checked = [], 0
    for recipe in sorted(reg.recipes.values(), key=lambda r: r.id):
        if not recipe.stages:
            continue
        for profile in ("full", "tiny"):
            try:
                specs = stage_specs(recipe, reg.benchmarks[recipe.benchmark], profile, [], None,
                                    root=reg.root)
                for spec in specs.values():
                    if spec["stage"]["kind"] == "task":
                        build_task(spec)
            except (ConfigError, ValueError, KeyError) as error:
                message = str(error.args[0] if isinstance(error, KeyError) and error.args else error)
                errors.append(RegistryError(reg.files[f"recipe:{recipe.id}"], [f"profile {profile}: {message}"]))
            checked += 1
    if errors:
        raise RegistryErrors(errors)
    return checked
