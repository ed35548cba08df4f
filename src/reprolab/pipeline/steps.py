"""Inference steps: what an inference stage (`infer: <name>`) computes with a trained model.

A step is a function `(run: InferenceRun, options) -> DerivedRows`, registered under its name
with a pydantic model of its options (extra keys forbidden, so a typo fails when the recipe
loads). `run` holds the `from` stage's task and trained model and the split to infer on;
`run.predict()` gives the task's outputs for every sample, in split order. The stage writes what
the step returns as a derived split (reprolab.data.derived) that the next stage trains on.

```python
class CamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scales: list[float] = [1.0, 0.5, 1.5, 2.0]

@inference_step("cams", CamOptions)
def cams(run: InferenceRun, options: CamOptions) -> DerivedRows:
    ...   # DerivedRows(indices, labels, payloads=[{"cam": npy_bytes}, ...])
```
Importing this module is cheap (torch is imported inside the steps), because the registry
schema reads STEPS (a reprolab.catalog.Catalog of InferenceStep) to validate recipes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from reprolab.catalog import Catalog
from reprolab.data.derived import DerivedRows


@dataclass(frozen=True)
class InferenceStep:
    name: str
    function: Callable[..., DerivedRows]
    options: type[BaseModel]

    @property
    def description(self) -> str:
        return (self.function.__doc__ or "").strip().split("\n")[0]

    def parse_options(self, options: dict[str, Any]) -> BaseModel:
        """The options as the step's model; ValueError naming the option otherwise."""
        try:
            return self.options.model_validate(options)
        except ValidationError as error:
            known = ", ".join(self.options.model_fields) or "none"
            problems = []
            for item in error.errors():
                key = ".".join(str(p) for p in item["loc"])
                message = "unknown option" if item["type"] == "extra_forbidden" else item["msg"]
                problems.append(f"`options.{key}`: {message}")
            raise ValueError(f"{'; '.join(problems)} (step {self.name} takes: {known})") from None


STEPS: Catalog = Catalog("inference step")


def inference_step(name: str, options: type[BaseModel]):
    """Register `function` as the inference step `name` with the options model `options`."""
    def register(function: Callable[..., DerivedRows]) -> Callable[..., DerivedRows]:
        STEPS.register(InferenceStep(name, function, options), name=name)
        return function
    return register


@dataclass
class InferenceRun:
    """A trained model ready to infer on one split of its dataset."""

    task: Any           # the reprolab.tasks.base.Task that trained the model
    model: Any          # its nn.Module with the final weights
    dataset: Any        # the task's evaluation-mode dataset over `split` (no augmentation)
    split: Any          # the reprolab.data.reader.PreparedSplit being inferred on
    predictions: Callable[[], tuple[Any, Any]]  # the engine's predict_all over `dataset`
    _cache: tuple[Any, Any] | None = field(default=None, repr=False)

    def predict(self):
        """(outputs, targets) of `task.predict` for every sample of the split, in split order."""
        if self._cache is None:
            self._cache = self.predictions()
        return self._cache


# --------------------------------------------------------------------------- the steps


class PredictedLabelsOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    min_score: float = Field(default=0.0, ge=0.0, le=1.0,
                             description="keep the samples whose top class probability is at least this")


@inference_step("predicted-labels", PredictedLabelsOptions)
def predicted_labels(run: InferenceRun, options: PredictedLabelsOptions) -> DerivedRows:
    """Self-training pseudo labels: each sample's arg-max class, with its softmax probability in
    `score`; samples scored below `min_score` are left out.

    Metrics: `kept` (samples), `kept_fraction`, and `label_accuracy`, the percentage of kept
    samples whose pseudo label equals the split's own label (how good the pseudo labels are).
    """
    outputs, _ = run.predict()
    score, label = outputs.softmax(dim=1).max(dim=1)
    keep = [i for i, s in enumerate(score.tolist()) if s >= options.min_score]
    labels = [int(label[i]) for i in keep]
    truth = [run.split.labels[i] for i in keep]
    known = [(p, t) for p, t in zip(labels, truth, strict=True) if t >= 0]
    metrics = {"kept": float(len(keep)), "kept_fraction": len(keep) / max(1, len(score))}
    if known:
        metrics["label_accuracy"] = 100.0 * sum(p == t for p, t in known) / len(known)
    return DerivedRows(indices=keep, labels=labels, columns={"score": [float(score[i]) for i in keep]},
                       metrics=metrics)


# The weakly supervised segmentation steps (cams, rw-labels, irn-cams, video-masks) register
# themselves on import.
from reprolab.pipeline import irnet_steps, web_video_steps, wsss_steps  # noqa: E402,F401
