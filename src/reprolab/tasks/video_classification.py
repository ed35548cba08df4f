"""Video classification (SELFY, MotionSqueeze, TSM/TSN baselines) on the shared engine.

The recipe blocks this task reads are the typed configs below (see
reproductions/selfy/recipes/_base.yaml for a full example). Test-time views (clips x crops) are
scored separately and their logits averaged, as the official Kinetics test does.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, Literal

import torch
from pydantic import Field, field_validator
from torch import nn

from reprolab import predictions
from reprolab.data.datasets.video import VideoClipDataset
from reprolab.data.transforms.video import mirror_sensitive
from reprolab.metrics.classification import classification_metrics
from reprolab.tasks.base import TASKS, DataConfig, EvalConfig, ModelConfig, Split, Task


class VideoModelConfig(ModelConfig):
    name: str = Field(description="a reprolab.models name, e.g. selfy_tsm_resnet50")
    segments: int = Field(gt=0, description="frames per clip (T)")
    pretrained: str | None = Field(default=None, description="a weights card id, or none")
    dropout: float = Field(default=0.5, ge=0, lt=1)
    width_multiplier: float = Field(default=1.0, gt=0)
    options: dict[str, Any] | None = Field(default=None, description="extra model keywords, e.g. window")

    @field_validator("name")
    @classmethod
    def _known_model(cls, name: str) -> str:
        from reprolab.models import MODELS

        MODELS.get(name)  # a typo is a usage error before any data is read or run recorded
        return name


class VideoDataConfig(DataConfig):
    sampling: Literal["segment", "dense"] = "segment"  # TSN --mode 1 | I3D --mode 0
    dense_window: int = Field(default=64, gt=0)
    resize: int | tuple[int, int] = Field(default=(240, 320), description="[h, w], or the short side")
    crop: int = Field(default=224, gt=0)
    scales: tuple[float, ...] = (1.0, 0.875, 0.75, 0.66)
    max_distort: int = Field(default=1, ge=0)
    flip: bool = True
    selective_flip: bool = Field(default=True, description="never flip the left/right classes")


class VideoEvalConfig(EvalConfig):
    clips: int | None = Field(default=None, gt=0, description="default: the benchmark's protocol")
    crops: int | None = Field(default=None, gt=0)
    resize: int | tuple[int, int] | None = None
    crop: int | None = Field(default=None, gt=0)


@TASKS.register(name="video-classification")
class VideoClassification(Task):
    Model = VideoModelConfig
    Data = VideoDataConfig
    Eval = VideoEvalConfig
    default_splits = {"train": "train", "eval": "validation"}

    @cached_property
    def classes(self) -> list[str]:
        classes = self.open_split(self.split_names["train"]).classes
        if not classes:
            raise ValueError(f"{self.dataset_id}/{self.split_names['train']}: the split lists no class names")
        return classes

    def check_data(self) -> None:
        from reprolab.models.weights import pretrained_weights_path

        super().check_data()
        pretrained_weights_path(self.model_cfg.pretrained)

    @property
    def views(self) -> tuple[int, int]:
        clips = self.eval_cfg.clips or int(self.protocol.get("clips", 1))
        crops = self.eval_cfg.crops or int(self.protocol.get("crops", 1))
        return clips, crops

    def build_dataset(self, split: Split) -> VideoClipDataset:
        data = self.data_cfg
        no_flip = mirror_sensitive(self.classes) if data.selective_flip else frozenset()
        common = dict(segments=self.model_cfg.segments, sampling=data.sampling, dense_window=data.dense_window)
        if split == "train":
            return VideoClipDataset(
                self.open_split(self.split_names["train"]), train=True, resize=data.resize, crop=data.crop,
                scales=data.scales, max_distort=data.max_distort, flip=data.flip,
                no_flip_classes=no_flip, **common,
            )
        clips, crops = self.views
        eval_split = self.open_split(self.split_names["eval"])
        if eval_split.classes and eval_split.classes != self.classes:
            raise ValueError(f"{self.dataset_id}: splits {self.split_names['train']!r} and "
                             f"{self.split_names['eval']!r} list different classes; prepare again")
        return VideoClipDataset(
            eval_split, train=False, resize=self.eval_cfg.resize or data.resize,
            crop=self.eval_cfg.crop or data.crop, clips=clips, crops=crops, **common,
        )

    # ---- model ---------------------------------------------------------------------------
    def build_model(self, *, pretrained: bool = True) -> nn.Module:
        from reprolab.models import create_model
        from reprolab.models.weights import pretrained_weights_path

        model = self.model_cfg
        return create_model(
            model.name,
            num_classes=len(self.classes),
            num_segments=model.segments,
            pretrained=pretrained_weights_path(model.pretrained) if pretrained else None,
            dropout=model.dropout,
            width_multiplier=model.width_multiplier,
            **dict(model.options or {}),
        )

    def param_groups(self, model: nn.Module):
        from reprolab.models import param_groups

        return param_groups(model, lr=self.options.lr, weight_decay=self.options.weight_decay)

    def eval_batch_size(self) -> int:
        if self.eval_cfg.batch_size:
            return self.eval_cfg.batch_size
        clips, crops = self.views
        return max(1, self.options.batch_size // (clips * crops))

    # ---- steps ---------------------------------------------------------------------------
    def training_loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return nn.functional.cross_entropy(model(batch["frames"]), batch["label"])

    def predict(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        frames = batch["frames"]  # (B, views, T, C, H, W)
        logits = model(frames.flatten(0, 1))
        return logits.view(frames.shape[0], frames.shape[1], -1).mean(dim=1), batch["label"]

    def sample_predictions(self, dataset: VideoClipDataset, outputs: torch.Tensor, targets: torch.Tensor):
        return predictions.classification(dataset.split.ids, outputs, targets, self.classes)

    def compute_metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        return classification_metrics(outputs, targets, num_classes=len(self.classes),
                                      topk=(1, 5), mean_class=True)
