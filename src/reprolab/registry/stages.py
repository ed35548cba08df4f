"""The `stages:` block of a recipe, validated with the recipe (pydantic, unknown keys forbidden).

A stage is one of two kinds, told apart by its keys:

task run (the default)
    task        the trainer (default: the recipe's `task`)
    model, data, optim, eval
                merged over the recipe's own blocks (after its `tiny:` block in the tiny profile)
    data.train_from: <inference stage>
                train on that stage's derived split instead of the benchmark's training split
    data.eval_from: <inference stage>
                evaluate on that stage's derived split (e.g. the CAMs of the evaluation images
                that a random walk propagates) instead of the benchmark's evaluation split
    init_from: <task stage>
                start from that stage's final weights (reprolab.engine.init_from)
    tiny        what the tiny profile changes in this stage (model, data, optim, eval)

inference step
    infer       a registered step (reprolab.pipeline.steps), e.g. predicted-labels
    from        the task stage whose trained model it runs
    split       train | eval: the `from` stage's training or evaluation split (of its dataset);
                with `dataset`, a split of that dataset
    dataset     infer on another dataset than the `from` stage's (web-video WSSS: a VOC-trained
                encoder on the user's videos); its split `split` (e.g. all), read by the step
    options     the step's options, checked against the step's own model when the chain is
                resolved (`reprolab check`, `reprolab stages ...`, `run-stage`): the steps are code
                of reprolab.pipeline, above the registries
    tiny        {options: ...} for the tiny profile

Cross-checks: a stage reads only stages declared before it (an unknown or later name is an
error), `from`/`init_from` name task stages and `data.train_from` an inference stage, and the
chain ends with a task run, whose evaluation is the recipe's result.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

STAGE_NAME = re.compile(r"^[a-z][a-z0-9-]*$")
RESERVED = ("resolve",)   # the generated dvc.yaml's first stage
TASK_BLOCKS = ("model", "data", "optim", "eval")
_ALIASES = {"from_": "from"}


def _keys(names: list[str]) -> str:
    return ", ".join(f"`{_ALIASES.get(n, n)}`" for n in names)


class Stage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    # a task run
    task: str | None = Field(default=None, description="the trainer (default: the recipe's task)")
    model: dict[str, Any] = Field(default_factory=dict)
    data: dict[str, Any] = Field(default_factory=dict,
                                 description="`train_from: <inference stage>` trains on its outputs")
    optim: dict[str, Any] = Field(default_factory=dict)
    eval: dict[str, Any] = Field(default_factory=dict)
    init_from: str | None = Field(default=None, description="a task stage whose final weights start this one")
    # an inference step
    infer: str | None = Field(default=None, description="a step of reprolab.pipeline.steps.STEPS")
    from_: str | None = Field(default=None, alias="from", description="the task stage whose model runs")
    dataset: str | None = Field(default=None, description="infer on this dataset's `split` instead")
    split: str = Field(default="train", description="which split of `from` to infer on (train | eval), "
                       "or of `dataset`")
    options: dict[str, Any] = Field(default_factory=dict, description="the step's options")
    # both
    tiny: dict[str, Any] = Field(default_factory=dict, description="what the tiny profile changes")

    @field_validator("split")
    @classmethod
    def _split_of_from(cls, split: str, info: ValidationInfo) -> str:
        if info.data.get("dataset") is None and split not in ("train", "eval"):
            raise ValueError(f"{split!r}: use train or eval (the `from` stage's splits), or name a "
                             "`dataset` whose split it is")
        return split

    @model_validator(mode="after")
    def _one_kind(self) -> Stage:
        given = self.model_fields_set
        if self.infer is None:
            stray = [f for f in ("from_", "split", "options", "dataset") if f in given]
            if stray:
                raise ValueError(f"{_keys(stray)} belong to inference stages: add `infer: <step>` "
                                 "or remove them")
            unknown = sorted(set(self.tiny) - set(TASK_BLOCKS))
            if unknown:
                raise ValueError(f"`tiny.{unknown[0]}`: a task stage's tiny block sets "
                                 f"{', '.join(TASK_BLOCKS)}")
            for key in ("train_from", "eval_from"):
                value = self.data.get(key)
                if value is not None and not isinstance(value, str):
                    raise ValueError(f"`data.{key}`: expected a stage name, got {value!r}")
            return self
        stray = [f for f in ("task", *TASK_BLOCKS, "init_from") if f in given]
        if stray:
            raise ValueError(f"{_keys(stray)} belong to task stages; an inference stage runs the "
                             "model of its `from` stage as that stage trained it")
        if self.from_ is None:
            raise ValueError("`from`: required: the task stage whose trained model the step runs")
        unknown = sorted(set(self.tiny) - {"options"})
        if unknown:
            raise ValueError(f"`tiny.{unknown[0]}`: an inference stage's tiny block sets options only")
        return self

    @property
    def kind(self) -> Literal["task", "inference"]:
        return "task" if self.infer is None else "inference"

    @property
    def train_from(self) -> str | None:
        return self.data.get("train_from")

    @property
    def eval_from(self) -> str | None:
        return self.data.get("eval_from")

    def references(self) -> list[tuple[str, str, str]]:
        """(key, stage named, the kind that key needs) for every stage this one reads."""
        if self.kind == "inference":
            return [("from", self.from_, "task")]
        refs = []
        if self.train_from is not None:
            refs.append(("data.train_from", self.train_from, "inference"))
        if self.eval_from is not None:
            refs.append(("data.eval_from", self.eval_from, "inference"))
        if self.init_from is not None:
            refs.append(("init_from", self.init_from, "task"))
        return refs

    @property
    def inputs(self) -> list[str]:
        return list(dict.fromkeys(target for _, target, _ in self.references()))


def check_chain(stages: dict[str, Stage]) -> dict[str, Stage]:
    """Names are usable as folders and DVC stages; every reference points to an earlier stage of
    the right kind; the last stage is a task run."""
    problems = []
    order = list(stages)
    for position, (name, stage) in enumerate(stages.items()):
        if not STAGE_NAME.match(name):
            problems.append(f"stage name {name!r}: use lower-case letters, digits and dashes, "
                            "starting with a letter (it names a folder and a DVC stage)")
        elif name in RESERVED:
            problems.append(f"stage name {name!r} is reserved (the generated dvc.yaml uses it)")
        for key, target, kind in stage.references():
            if target not in stages:
                problems.append(f"`{name}.{key}`: no stage {target!r} (stages: {', '.join(order)})")
            elif order.index(target) >= position:
                problems.append(f"`{name}.{key}`: {target!r} is not declared before {name!r}; a "
                                f"stage reads only earlier stages (order: {', '.join(order)})")
            elif stages[target].kind != kind:
                article = "an" if stages[target].kind == "inference" else "a"
                problems.append(f"`{name}.{key}`: {target!r} is {article} {stages[target].kind} "
                                f"stage; `{key}` needs a{'n' if kind == 'inference' else ''} {kind} stage")
    if stages and stages[order[-1]].kind != "task":
        problems.append(f"the last stage, {order[-1]!r}, is an inference step; the chain ends with "
                        "a task run (its evaluation is the recipe's result)")
    if problems:
        raise ValueError("; ".join(problems))
    return stages


Stages = Annotated[dict[str, Stage], AfterValidator(check_chain)]


def describe_errors(error: ValidationError) -> str:
    """`key: message` for each problem, the way registry errors read."""
    parts = []
    for item in error.errors():
        key = ".".join(str(p) for p in item["loc"]) or "(top level)"
        message = "unknown key" if item["type"] == "extra_forbidden" else item["msg"]
        parts.append(f"`{key}`: {message}")
    return "; ".join(parts)
