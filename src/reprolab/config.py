"""Resolve a recipe into the configuration a run uses: profile, then command-line overrides.

Order of precedence, lowest first: the recipe's base files, the recipe row, the `tiny:` block
(profile `tiny` only), then `key=value` overrides. The result is saved with every run.
"""

from __future__ import annotations

import copy
from typing import Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError, model_validator

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


# The recipe's `optim:` block, typed: what the one training loop and its optimizer read
# (reprolab.engine.loop, reprolab.engine.optim).
class TrainOptions(Options):
    # optimizer (reprolab.engine.optim)
    name: Literal["sgd", "adamw", "adam"] = "sgd"  # adam: L2 in the gradient (torch.optim.Adam), as URIE
    lr: float = Field(ge=0)
    weight_decay: float = Field(default=0.0, ge=0)
    momentum: float = Field(default=0.9, ge=0)            # sgd
    nesterov: bool = False                                # sgd
    betas: tuple[float, float] = (0.9, 0.999)             # adamw, adam
    eps: float = Field(default=1e-8, gt=0)                # adamw, adam
    # learning-rate schedule, per iteration
    schedule: Literal["step", "cosine", "constant", "inverse", "poly"] = "constant"
    milestones: list[int] = Field(default_factory=list, description="step: epochs at which lr *= gamma")
    gamma: float = Field(default=0.1, gt=0)
    min_lr_ratio: float = Field(default=0.0, ge=0, le=1, description="cosine: final lr / peak lr")
    decay: float = Field(default=0.0, ge=0, description="inverse: lr = lr0 / (1 + it * decay)")
    power: float = Field(default=0.9, gt=0, description="poly: lr = lr0 * (1 - it / total) ** power")
    warmup_epochs: float = Field(default=0.0, ge=0)
    warmup_start_factor: float | None = Field(default=None, ge=0, le=1)
    # the loop (reprolab.engine.loop)
    batch_size: PositiveInt = Field(description="global batch, split evenly across ranks")
    epochs: int = Field(ge=0, description="0: no training; the run evaluates its initial weights (released ones)")
    drop_last: bool = True
    clip_grad_norm: float | None = Field(default=None, gt=0)
    clip_grad_value: float | None = Field(default=None, gt=0)
    amp: Literal["none", "bf16", "fp16"] = "none"
    channels_last: bool = False
    # GPU speed options, off by default and no-ops on CPU (benchmarks/perf/gpu_train.py measures them)
    fused_optimizer: bool = Field(default=False, description="CUDA: the fused SGD / AdamW kernels")
    compile: bool = Field(default=False, description="CUDA: torch.compile the training model")
    cudnn_benchmark: bool = Field(default=False, description="CUDA: cudnn autotuning (not deterministic)")
    num_workers: int = Field(default=0, ge=0)
    eval_every: int = Field(default=1, ge=0, description="0: never during training")
    checkpoint_every: int = Field(default=0, ge=0, description="iterations; 0: epoch ends only")
    deterministic: bool = False
    max_steps_per_epoch: PositiveInt | None = Field(default=None, description="cap for smoke runs")

    @model_validator(mode="before")
    @classmethod
    def _lower_case_names(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            for key in ("name", "schedule", "amp"):
                if isinstance(data.get(key), str):
                    data[key] = data[key].lower()
        return data

    @classmethod
    def of(cls, optim: TrainOptions | dict[str, Any]) -> TrainOptions:
        """Typed options from a recipe's `optim:` block (or options already typed)."""
        return cls.parse(optim, where="optim")


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
        from reprolab.names import hint

        raise ConfigError(
            f"override {text!r}: no key `{'.'.join(parts)}` in the recipe ({hint(last, node)}); "
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
    if recipe.stages:  # its result comes from the chain, not from one run of the recipe-level keys
        raise ConfigError(f"recipe {recipe_id} is a multi-stage pipeline ({', '.join(recipe.stages)}); "
                          f"run it with `reprolab run-stages {recipe_id}` or one stage with "
                          f"`reprolab run-stage {recipe_id} <stage>`")
    config = resolve(recipe, profile, overrides)  # type: ignore[arg-type]
    config["benchmark_spec"] = reg.benchmarks[recipe.benchmark].model_dump(mode="json")
    config["seed"] = int(seed if seed is not None else config["seeds"][0])
    return config

