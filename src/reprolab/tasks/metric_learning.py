"""Deep metric learning with class labels (Proxy Anchor and its baselines) on the shared engine.

The recipe blocks this task reads are the typed configs below (see
reproductions/proxy-anchor/recipes/_base.yaml). Every epoch's test metrics are logged (the
official code evaluates the test split every epoch and reports the best epoch; see
reproductions/proxy-anchor/NOTES.md). The continuous-label losses of the log-ratio paper
(log_ratio, dense_triplet, binary_triplet) need mined tuples and label distances: they run
under `task: log-ratio` (reprolab.tasks.log_ratio); this task rejects them with a message
saying so.
"""

from __future__ import annotations

import hashlib
from functools import cached_property
from typing import Any, Literal

import torch
from pydantic import Field, field_validator
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from reprolab import predictions
from reprolab.data.datasets.images import ImageRetrievalDataset
from reprolab.data.transforms.images import input_transform
from reprolab.metrics.retrieval import inshop_recall_at_k, map_at_r, recall_at_k
from reprolab.models.backbones import backbone_input_config
from reprolab.models.embedding import EmbeddingWithLoss, build_embedding_model
from reprolab.models.losses import CLASS_LABEL_LOSSES, TUPLE_LOSSES, build_loss
from reprolab.tasks.base import (
    TASKS,
    DataConfig,
    EvalConfig,
    ModelConfig,
    Split,
    SplitDescription,
    Task,
)


class EmbeddingConfig(ModelConfig):
    """The embedding network (shared with the log-ratio task) and its loss."""

    backbone: str = "bn_inception"
    weights: str | None = Field(default=None, description="a weights card id, e.g. weights-bninception-imagenet")
    embedding_size: int = Field(default=512, gt=0)
    pooling: Literal["avg+max", "avg", "max"] = "avg+max"
    normalize: bool = True
    freeze_bn: bool = False
    frozen_backbone_epochs: int = Field(default=0, ge=0, description="warm-up: only embedding + loss train")
    loss: str = "proxy_anchor"
    loss_options: dict[str, Any] = Field(default_factory=dict)
    loss_lr_mult: float | None = Field(default=None, gt=0, description="default: the loss's own")

    @field_validator("backbone")
    @classmethod
    def _known_backbone(cls, backbone: str) -> str:
        from reprolab.models.backbones import BACKBONES

        BACKBONES.get(backbone)  # a typo is a usage error before any data is read or run recorded
        return backbone


class RetrievalDataConfig(DataConfig):
    crop: int = Field(default=224, gt=0, description="training RandomResizedCrop; eval CenterCrop")
    resize: int = Field(default=256, gt=0, description="eval Resize")
    train_crop: Literal["random-resized"] = "random-resized"  # the official (only) training crop
    sampler: Literal["random"] = "random"  # no class-balanced sampler (--IPC unset)


class RetrievalEvalConfig(EvalConfig):
    ks: tuple[int, ...] = (1, 2, 4, 8)
    query_gallery: bool = Field(default=False, description="In-Shop: splits `query` and `gallery`")


@TASKS.register(name="metric-learning")
class MetricLearning(Task):
    Model = EmbeddingConfig
    Data = RetrievalDataConfig
    Eval = RetrievalEvalConfig

    def __init__(self, config: dict[str, Any]):
        loss = (config.get("model") or {}).get("loss", EmbeddingConfig.model_fields["loss"].default)
        if loss in TUPLE_LOSSES:  # before the blocks are parsed: say which task, not which key
            raise NotImplementedError(
                f"recipe {config.get('recipe')!r}: loss {loss!r} trains on mined tuples with label "
                "distances (log-ratio paper); this class-label task does not mine them. Set "
                "`task: log-ratio` (reprolab.tasks.log_ratio), which trains on the mpii-pose "
                "pose distances."
            )
        if loss not in CLASS_LABEL_LOSSES:
            from reprolab.names import unknown_name

            raise unknown_name("loss", loss, CLASS_LABEL_LOSSES, where=f"recipe {config.get('recipe')}: model.loss: ")
        super().__init__(config)
        self._iters_per_epoch: int | None = None

    # ---- data ----------------------------------------------------------------------------
    def eval_parts(self) -> list[tuple[Any, bool]]:
        if self.eval_cfg.query_gallery:
            return [(self.open_split("query"), True), (self.open_split("gallery"), False)]
        return [(self.open_split(self.split_names["eval"]), True)]

    def check_data(self) -> None:
        from reprolab.models.weights import pretrained_weights_path

        self.open_split(self.split_names["train"])
        self.eval_parts()
        pretrained_weights_path(self.model_cfg.weights)

    @cached_property
    def train_label_map(self) -> dict[int, int]:
        """Training labels -> 0..C-1 (one proxy per training class)."""
        labels = sorted(set(self.open_split(self.split_names["train"]).labels))
        return {label: i for i, label in enumerate(labels)}

    def transform(self, train: bool):
        return input_transform(backbone_input_config(self.model_cfg.backbone), train=train,
                               crop=self.data_cfg.crop, resize=self.data_cfg.resize)

    def build_dataset(self, split: Split) -> ImageRetrievalDataset:
        if split == "train":
            train = self.open_split(self.split_names["train"])
            dataset = ImageRetrievalDataset([(train, False)], self.transform(True), self.train_label_map)
            self._iters_per_epoch = max(1, len(dataset) // self.options.batch_size)
            return dataset
        return ImageRetrievalDataset(self.eval_parts(), self.transform(False))

    def describe_split(self, dataset: ImageRetrievalDataset, split: Split) -> SplitDescription:
        parts = dataset.parts
        name = "+".join(p.split for p, _ in parts)
        fingerprint = parts[0][0].fingerprint if len(parts) == 1 else "sha256:" + hashlib.sha256(
            "".join(p.fingerprint for p, _ in parts).encode()).hexdigest()
        return SplitDescription(self.dataset_id, name, len(dataset), fingerprint)

    # ---- model ---------------------------------------------------------------------------
    def build_model(self, *, pretrained: bool = True) -> EmbeddingWithLoss:
        from reprolab.models.weights import pretrained_weights_path

        cfg = self.model_cfg
        net = build_embedding_model(
            backbone=cfg.backbone, embedding_size=cfg.embedding_size, pooling=cfg.pooling,
            normalize=cfg.normalize, freeze_bn=cfg.freeze_bn,
            weights=pretrained_weights_path(cfg.weights) if pretrained else None,
        )
        criterion = build_loss(cfg.loss, num_classes=len(self.train_label_map),
                               embedding_size=cfg.embedding_size, **cfg.loss_options)
        return EmbeddingWithLoss(net, criterion, cfg.loss_lr_mult)

    def param_groups(self, model: EmbeddingWithLoss):
        head = {id(p) for p in model.net.head_parameters()}
        return [
            {"params": [p for p in model.net.parameters() if id(p) not in head], "name": "backbone"},
            {"params": model.net.head_parameters(), "name": "embedding"},
            {"params": list(model.criterion.parameters()), "lr_mult": model.loss_lr_mult, "name": "loss"},
        ]

    # ---- steps ---------------------------------------------------------------------------
    def _warm_up(self, model: nn.Module) -> EmbeddingWithLoss:
        """Freeze the backbone for the first `frozen_backbone_epochs` epochs (official --warm)."""
        warm_epochs = self.model_cfg.frozen_backbone_epochs
        if isinstance(model, DistributedDataParallel):
            if warm_epochs:
                raise NotImplementedError(
                    "model.frozen_backbone_epochs > 0 changes which parameters train mid-run, which "
                    "DistributedDataParallel does not support; run single-process (as the official "
                    "code) or set model.frozen_backbone_epochs=0"
                )
            return model.module
        if warm_epochs:
            epoch = int(model.steps_done) // (self._iters_per_epoch or 1)
            model.net.freeze_backbone(epoch < warm_epochs)
        return model

    def training_loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        inner = self._warm_up(model)
        embeddings = model(batch["image"])
        inner.steps_done += 1
        return inner.criterion(embeddings, batch["label"])

    def predict(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        targets = torch.stack([batch["label"], batch["is_query"]], dim=1)
        return model(batch["image"]), targets

    def sample_predictions(self, dataset: ImageRetrievalDataset, outputs: torch.Tensor, targets: torch.Tensor):
        """Each query's nearest neighbours by cosine similarity, as the metrics search them."""
        labels, is_query = targets[:, 0], targets[:, 1].bool()
        ids = [sample_id for split, _ in dataset.parts for sample_id in split.ids]
        classes = dataset.parts[0][0].classes
        if not self.eval_cfg.query_gallery:
            return predictions.retrieval(ids, outputs, query_labels=labels, classes=classes)
        query_ids = [i for i, q in zip(ids, is_query.tolist(), strict=True) if q]
        gallery_ids = [i for i, q in zip(ids, is_query.tolist(), strict=True) if not q]
        return predictions.retrieval(query_ids, outputs[is_query], gallery_ids, outputs[~is_query],
                                     query_labels=labels[is_query], reference_labels=labels[~is_query],
                                     classes=classes)

    def compute_metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        labels, is_query = targets[:, 0], targets[:, 1].bool()
        ks = self.eval_cfg.ks
        if self.eval_cfg.query_gallery:
            return inshop_recall_at_k(outputs[is_query], outputs[~is_query], labels[is_query],
                                      labels[~is_query], ks=ks)
        metrics = recall_at_k(outputs, labels, ks=ks)
        metrics["map@r"] = map_at_r(outputs, labels)
        return metrics
