"""Resolve a recipe into the configuration a run uses: profile, then command-line overrides.

Order of precedence, lowest first: the recipe's base files, the recipe row, the `tiny:` block
(profile `tiny` only), then `key=value` overrides. The result is saved with every run.
"""

from __future__ import annotations

import copy
from typing import Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from reprolab.errors import ConfigError
from reprolab.registry import Recipe, deep_merge

Profile = Literal["full", "tiny"]
PROFILES: tuple[Profile, ...] = ("full", "tiny")
OVERRIDABLE = ("model", "data", "optim", "eval", "seeds")


class Options(BaseModel):
    """Base of every typed recipe block (`optim:`, a task's `model:`, `data:`, `eval:`): unknown
    keys are errors and values are checked, so a typo fails before anything runs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def parse(cls, data: Any, *, where: str, recipe: str | None = None) -> Self:
        """Validate the block `where` (e.g. "optim"); ConfigError names every bad key."""
        if isinstance(data, cls):
            return data
        try:
            return cls.model_validate({} if data is None else data)
        except ValidationError as error:
            raise ConfigError(describe_validation(error, where, recipe, cls)) from None


def describe_validation(error: ValidationError, where: str, recipe: str | None = None,
                        model: type[BaseModel] | None = None) -> str:
    """One line per problem: `key `data.scalse`: unknown key (did you mean `scales`?)`."""
    import difflib

    lines = []
    for problem in error.errors():
        key = ".".join([where, *(str(part) for part in problem["loc"])])
        if problem["type"] == "extra_forbidden":
            hint = ""
            if model is not None and len(problem["loc"]) == 1:
                close = difflib.get_close_matches(str(problem["loc"][0]), list(model.model_fields), n=1)
                hint = f" (did you mean `{close[0]}`?)" if close else f" (known: {', '.join(model.model_fields)})"
            lines.append(f"key `{key}`: unknown key{hint}")
        else:
            lines.append(f"key `{key}`: {problem['msg']} (got {problem.get('input')!r})")
    head = f"recipe {recipe}: " if recipe else ""
    return head + ("; ".join(lines) if len(lines) == 1 else "\n  " + "\n  ".join(lines))


def parse_override(text: str) -> tuple[list[str], Any, bool]:
    """`optim.lr=0.1` -> (["optim", "lr"], 0.1, False); a leading `+` allows a new key."""
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected key=value, e.g. optim.lr=0.01")
    key, raw = text.split("=", 1)
    adds = key.startswith("+")
    parts = key.lstrip("+").split(".")
    if not all(parts):
        raise ConfigError(f"override {text!r}: empty part in key {key!r}")
    if parts[0] not in OVERRIDABLE:
        raise ConfigError(
            f"override {text!r}: `{parts[0]}` cannot be overridden; use one of {', '.join(OVERRIDABLE)}"
        )
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError as error:
        raise ConfigError(f"override {text!r}: value is not valid YAML: {error}") from None
    return parts, value, adds


def apply_override(config: dict[str, Any], text: str) -> None:
    parts, value, adds = parse_override(text)
    node = config
    for depth, part in enumerate(parts[:-1]):
        if part not in node:
            if not adds:
                raise ConfigError(
                    f"override {text!r}: no key `{'.'.join(parts[: depth + 1])}` in the recipe "
                    f"(prefix the key with + to add one)"
                )
            node[part] = {}
        if not isinstance(node[part], dict):
            raise ConfigError(f"override {text!r}: `{'.'.join(parts[: depth + 1])}` is not a mapping")
        node = node[part]
    last = parts[-1]
    if last not in node and not adds:
        known = ", ".join(sorted(node)) if isinstance(node, dict) else ""
        raise ConfigError(
            f"override {text!r}: no key `{'.'.join(parts)}` in the recipe (known here: {known}); "
            f"prefix the key with + to add one"
        )
    node[last] = value


def resolve(recipe: Recipe, profile: Profile = "full", overrides: list[str] | None = None) -> dict[str, Any]:
    """The full configuration of a run of `recipe`, as plain data (JSON/YAML serialisable)."""
    if profile not in PROFILES:
        raise ConfigError(f"profile {profile!r}: expected one of {', '.join(PROFILES)}")
    body = {key: copy.deepcopy(getattr(recipe, key)) for key in OVERRIDABLE}
    if profile == "tiny":
        unknown = set(recipe.tiny) - set(OVERRIDABLE)
        if unknown:
            raise ConfigError(
                f"recipe {recipe.id}: key `tiny.{sorted(unknown)[0]}` cannot be set by the tiny "
                f"profile; use one of {', '.join(OVERRIDABLE)}"
            )
        body = deep_merge(body, recipe.tiny)
    for text in overrides or []:
        apply_override(body, text)
    return {
        "recipe": recipe.id,
        "paper": recipe.paper,
        "title": recipe.title,
        "task": recipe.task,
        "benchmark": recipe.benchmark,
        "profile": profile,
        **body,
        "overrides": list(overrides or []),
    }


def resolved_config(recipe_id: str, profile: str, overrides: list[str] | None = None,
                    seed: int | None = None, *, root=None) -> dict[str, Any]:
    """The recipe resolved for one run, with its benchmark and seed recorded in it."""
    from reprolab.registry import load_registry

    reg = load_registry(root)
    recipe = reg.recipe(recipe_id)
    config = resolve(recipe, profile, overrides)  # type: ignore[arg-type]
    config["benchmark_spec"] = reg.benchmarks[recipe.benchmark].model_dump(mode="json")
    config["seed"] = int(seed if seed is not None else config["seeds"][0])
    return config


def check_recipes(reg, profiles: tuple[Profile, ...] = PROFILES) -> int:
    """Resolve every recipe in every profile and type-check it through its task's typed blocks;
    RegistryErrors names each recipe file and key at fault. Returns how many were checked."""
    from reprolab.registry import RegistryError, RegistryErrors
    from reprolab.tasks import TASKS, build_task

    errors, checked = [], 0
    for recipe in sorted(reg.recipes.values(), key=lambda r: r.id):
        path = reg.files[f"recipe:{recipe.id}"]
        if recipe.task not in TASKS:
            continue  # a task without a trainer yet: its rows say "no trainer" in the reports
        for profile in profiles:
            try:
                config = resolve(recipe, profile)
                config["benchmark_spec"] = reg.benchmarks[recipe.benchmark].model_dump(mode="json")
                build_task(config)
            except (ConfigError, ValueError, KeyError) as error:
                message = str(error.args[0] if isinstance(error, KeyError) and error.args else error)
                errors.append(RegistryError(path, [f"profile {profile}: {message}"]))
            checked += 1
    if errors:
        raise RegistryErrors(errors)
    return checked
