"""Resolve a recipe into the configuration a run uses: profile, then command-line overrides.

Order of precedence, lowest first: the recipe's base files, the recipe row, the `tiny:` block
(profile `tiny` only), then `key=value` overrides. The result is saved with every run.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

import yaml

from reprolab.registry import Recipe, deep_merge

Profile = Literal["full", "tiny"]
PROFILES: tuple[Profile, ...] = ("full", "tiny")
OVERRIDABLE = ("model", "data", "optim", "eval", "seeds")


class ConfigError(ValueError):
    """An override or profile cannot be applied; the message names the key."""


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
