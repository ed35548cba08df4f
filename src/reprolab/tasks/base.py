"""What a task gives the shared training engine: a model, datasets, a loss and metrics.

The engine owns the loop (devices, DDP, AMP, clipping, schedules, checkpoints, logs); a task owns
everything that is specific to a kind of problem. A new paper plugs in by writing a Task, not by
copying the loop.

Batches are dicts of tensors; the engine moves every tensor to the device and hands the batch to
the task. Datasets receive `(index, seed)` pairs from the engine's sampler; training datasets
draw their augmentation from `seed` only (see reprolab.engine.sampling).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn
from torch.utils.data import Dataset

Split = Literal["train", "eval"]


@dataclass(frozen=True)
class SplitDescription:
    """The identity of the data a run read: recorded in every RunResult."""

    dataset: str
    name: str
    samples: int
    fingerprint: str


class Task(ABC):
    """One kind of problem (video classification, retrieval, ...) for the shared engine."""

    def __init__(self, config: dict[str, Any]):
        self.config = config

    # ---- what the run needs --------------------------------------------------------------
    def check_data(self) -> None:
        """Raise reprolab.cli.MissingDataError now if the data or weights are not in place."""
        return None

    @abstractmethod
    def build_model(self, *, pretrained: bool = True) -> nn.Module:
        """The model; `pretrained=False` skips loading initial weights (a checkpoint follows)."""

    def param_groups(self, model: nn.Module) -> Iterable[dict[str, Any]] | nn.Module:
        """Groups with `lr_mult` / `wd_mult`; the default is one group of every parameter."""
        return model

    @abstractmethod
    def build_dataset(self, split: Split) -> Dataset: ...

    @abstractmethod
    def describe_split(self, dataset: Dataset, split: Split) -> SplitDescription: ...

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

    # ---- what the run is evaluated on ----------------------------------------------------
    def eval_batch_size(self) -> int:
        return int(self.config.get("eval", {}).get("batch_size", self.config["optim"]["batch_size"]))
