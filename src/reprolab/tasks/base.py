"""What a task gives the shared training engine: a model, datasets, a loss and metrics.

The engine owns the loop (devices, DDP, AMP, clipping, schedules, checkpoints, init_from, logs);
a task owns everything that is specific to a kind of problem. A new paper plugs in by writing a
Task with its typed recipe blocks, not by copying the loop:

    @TASKS.register(name="video-classification")
    class VideoClassification(Task):
        Model = VideoModelConfig      # the recipe's `model:` block, typed (extra keys forbidden)
        Data = VideoDataConfig        # `data:`
        Eval = VideoEvalConfig        # `eval:`; `optim:` is the engine's TrainOptions

Batches are dicts of tensors; the engine moves every tensor to the device and hands the batch to
the task. Datasets receive `(index, seed)` pairs from the engine's sampler; training datasets
draw their augmentation from `seed` only (see reprolab.engine.sampling).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field, model_validator
from torch import nn
from torch.utils.data import Dataset

from reprolab.catalog import Catalog
from reprolab.config import Options, TrainOptions

Split = Literal["train", "eval"]
TASKS: Catalog = Catalog("task")


@dataclass(frozen=True)
class SplitDescription:
    """The identity of the data a run read: recorded in every RunResult."""

    dataset: str
    name: str
    samples: int
    fingerprint: str


class InitFrom(Options):
    """Fine-tune from another run's final weights (tensors whose shapes differ stay fresh)."""

    recipe: str | None = Field(default=None, description="its latest evaluated run of this profile")
    checkpoint: str | None = Field(default=None, description="a checkpoint file")

    @model_validator(mode="after")
    def _one_source(self) -> InitFrom:
        if (self.recipe is None) == (self.checkpoint is None):
            raise ValueError("give exactly one of `recipe` or `checkpoint`")
        return self


class ModelConfig(Options):
    """Keys every task's `model:` block has."""

    init_from: InitFrom | None = None


class DataConfig(Options):
    """Keys every task's `data:` block has; splits default to the benchmark's."""

    dataset: str | None = Field(default=None, description="default: the benchmark's dataset")
    train_split: str | None = None
    eval_split: str | None = None
    extra_datasets: list[str] = Field(default_factory=list, description="fetched with the dataset (weights)")


class EvalConfig(Options):
    batch_size: int | None = Field(default=None, gt=0, description="default: optim.batch_size")


class Task(ABC):
    """One kind of problem (video classification, retrieval, ...) for the shared engine."""

    Model: ClassVar[type[ModelConfig]] = ModelConfig
    Data: ClassVar[type[DataConfig]] = DataConfig
    Eval: ClassVar[type[EvalConfig]] = EvalConfig
    default_splits: ClassVar[dict[str, str]] = {"train": "train", "eval": "test"}

    def __init__(self, config: dict[str, Any]):
        self.config = config
        recipe = config.get("recipe")
        self.model_cfg = self.Model.parse(config.get("model"), where="model", recipe=recipe)
        self.data_cfg = self.Data.parse(config.get("data"), where="data", recipe=recipe)
        self.eval_cfg = self.Eval.parse(config.get("eval"), where="eval", recipe=recipe)
        self.options = TrainOptions.parse(config.get("optim"), where="optim", recipe=recipe)
        self.profile = config.get("profile", "full")
        bench = config.get("benchmark_spec") or {}
        self.protocol: dict[str, Any] = bench.get("protocol", {})
        self.dataset_id = self.data_cfg.dataset or bench.get("dataset")
        if not self.dataset_id:
            raise KeyError(f"recipe {recipe!r}: no dataset (benchmark_spec.dataset or data.dataset)")
        self.split_names = {
            "train": self.data_cfg.train_split or bench.get("train_split") or self.default_splits["train"],
            "eval": self.data_cfg.eval_split or _single(bench.get("eval_split")) or self.default_splits["eval"],
        }
        self._splits: dict[str, Any] = {}

    # ---- data ----------------------------------------------------------------------------
    def open_split(self, name: str):
        """A prepared split of the task's dataset by its name (cached)."""
        if name not in self._splits:
            from reprolab.data.reader import open_split

            self._splits[name] = open_split(self.dataset_id, name, self.profile)
        return self._splits[name]

    def splits_read(self) -> dict[str, str]:
        """`<dataset>/<profile>/<split>` -> manifest fingerprint of every split opened so far."""
        return {f"{s.dataset}/{s.profile}/{s.split}": s.fingerprint for s in self._splits.values()}

    def check_data(self) -> None:
        """Raise MissingDataError now if the data or weights are not in place."""
        self.open_split(self.split_names["train"])
        self.open_split(self.split_names["eval"])

    @abstractmethod
    def build_model(self, *, pretrained: bool = True) -> nn.Module:
        """The model; `pretrained=False` skips loading initial weights (a checkpoint follows)."""

    def param_groups(self, model: nn.Module) -> Iterable[dict[str, Any]] | nn.Module:
        """Groups with `lr_mult` / `wd_mult`; the default is one group of every parameter."""
        return model

    @abstractmethod
    def build_dataset(self, split: Split) -> Dataset: ...

    def describe_split(self, dataset: Dataset, split: Split) -> SplitDescription:
        prepared = dataset.split  # type: ignore[attr-defined]
        return SplitDescription(self.dataset_id, self.split_names[split], len(prepared), prepared.fingerprint)

    def collate_fn(self, split: Split) -> Callable | None:
        return None

    # ---- what one step does --------------------------------------------------------------
    @abstractmethod
    def training_loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor: ...

    @abstractmethod
    def predict(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(outputs, targets) of an evaluation batch; outputs of all batches are concatenated."""

    @abstractmethod
    def compute_metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]: ...

    def sample_predictions(self, dataset: Dataset, outputs: torch.Tensor, targets: torch.Tensor):
        """Per-sample predictions (a reprolab.predictions.Predictions) of the evaluation outputs:
        what `reprolab evaluate` writes to predictions.parquet for `reprolab browse`."""
        raise NotImplementedError(
            f"task {type(self).__name__} does not define its per-sample predictions; implement "
            "Task.sample_predictions with reprolab.predictions.classification or .retrieval")

    def chance_metrics(self, outputs: torch.Tensor, targets: torch.Tensor, *, draws: int = 8) -> dict[str, float]:
        """The metrics of a model that knows nothing: `compute_metrics` of random outputs of the
        same shape (random scores for a classifier, random embeddings for retrieval), averaged
        over `draws` draws of a fixed generator. The level a result has to clear to mean anything."""
        generator = torch.Generator().manual_seed(0)
        totals: dict[str, float] = {}
        for _ in range(draws):
            noise = torch.randn(outputs.shape, generator=generator, dtype=torch.float32)
            for name, value in self.compute_metrics(noise, targets).items():
                totals[name] = totals.get(name, 0.0) + float(value) / draws
        return totals

    # ---- how a run starts and which weights it keeps --------------------------------------
    # Keep the weights of the epoch whose evaluation scored highest on this metric (instead of the
    # last epoch's): the official selection of papers that pick their checkpoint during training.
    selection_metric: ClassVar[str | None] = None

    def init_weights(self, model: nn.Module, config: dict[str, Any], *, verbose: bool = False):
        """Apply the config's `init_from` to a freshly built model: by default copy the matching
        tensors of that checkpoint (reprolab.engine.init_from); a task with a teacher overrides it."""
        from reprolab.engine.init_from import load_init_weights

        return load_init_weights(model, config, verbose=verbose)

    def selection_dataset(self) -> Dataset | None:
        """The split `selection_metric` is measured on each epoch; None: the evaluation split."""
        return None

    # ---- what the run is evaluated on ----------------------------------------------------
    def eval_batch_size(self) -> int:
        return self.eval_cfg.batch_size or self.options.batch_size


def _single(split: str | list[str] | None) -> str | None:
    return split if isinstance(split, str) or split is None else split[0]
