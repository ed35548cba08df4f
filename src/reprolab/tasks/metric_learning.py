"""Deep metric learning with class labels (Proxy Anchor and its baselines) on the shared engine.

Recipe keys read here (see reproductions/proxy-anchor/recipes/_base.yaml):

    model:  backbone                 bn_inception | resnet18/34/50/101
            weights                  a weights card id (weights-bninception-imagenet) or null
            embedding_size, pooling (avg+max | avg | max), normalize, freeze_bn
            frozen_backbone_epochs   warm-up: epochs that train only the embedding and the loss
            loss, loss_options       reprolab.models.losses.build_loss name and keywords
            loss_lr_mult             learning-rate multiplier of the loss parameters (proxies)
    data:   crop, resize             training RandomResizedCrop(crop); eval Resize + CenterCrop
            train_split, eval_split  (default: the benchmark's)
    eval:   ks                       Recall@K values; batch_size
            query_gallery            In-Shop: the eval split is query + gallery (eval_split is
                                     ignored; splits `query` and `gallery`)

Every epoch's test metrics are logged (the official code evaluates the test split every epoch
and reports the best epoch; see reproductions/proxy-anchor/NOTES.md). The continuous-label
losses of the log-ratio paper (log_ratio, dense_triplet, binary_triplet) need mined tuples and
the mpii-pose pose distances: they run under `task: log-ratio` (reprolab.tasks.log_ratio); this
task rejects them with a message saying so.
"""

from __future__ import annotations

import hashlib
import io
from functools import cached_property
from typing import Any

import torch
from PIL import Image
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset

from reprolab.metrics.retrieval import inshop_recall_at_k, map_at_r, recall_at_k
from reprolab.models.embedding import (
    EmbeddingModel,
    backbone_input_config,
    build_embedding_model,
    input_transform,
)
from reprolab.models.losses import CLASS_LABEL_LOSSES, TUPLE_LOSSES, build_loss
from reprolab.tasks.base import Split, SplitDescription, Task


class MetricLearningModel(nn.Module):
    """The embedding network and the loss's parameters (proxies) in one module, so that the
    engine's optimizer, gradient clipping and checkpoints cover both, as the official code does."""

    def __init__(self, net: EmbeddingModel, criterion: nn.Module, loss_lr_mult: float):
        super().__init__()
        self.net = net
        self.criterion = criterion
        self.loss_lr_mult = loss_lr_mult
        # Counts optimisation steps so the warm-up survives a resume (saved with the weights).
        self.register_buffer("steps_done", torch.zeros((), dtype=torch.long))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)


class ImageRetrievalDataset(Dataset):
    """Decoded, transformed images of a prepared split with their labels (and a query flag)."""

    def __init__(self, parts: list[tuple[Any, bool]], transform, label_map: dict[int, int] | None = None):
        self.parts = parts  # [(PreparedSplit, is_query), ...] concatenated in order
        self.transform = transform
        self.label_map = label_map
        self.offsets = [0]
        for split, _ in parts:
            self.offsets.append(self.offsets[-1] + len(split))

    def __len__(self) -> int:
        return self.offsets[-1]

    def __getitem__(self, item: int | tuple[int, int]) -> dict[str, Any]:
        index, seed = item if isinstance(item, tuple) else (item, 0)
        part = max(i for i, start in enumerate(self.offsets[:-1]) if index >= start)
        split, is_query = self.parts[part]
        sample = split[index - self.offsets[part]]
        image = Image.open(io.BytesIO(sample.frames[0])).convert("RGB")
        with torch.random.fork_rng(devices=[]):  # augmentation drawn from the sample seed only
            torch.manual_seed(seed)
            pixels = self.transform(image)
        label = self.label_map[sample.label] if self.label_map is not None else sample.label
        return {"image": pixels, "label": label, "is_query": int(is_query)}


class MetricLearning(Task):
    def __init__(self, config: dict[str, Any]):
        super().__init__(config)
        self.model_cfg = config.get("model", {})
        self.data_cfg = config.get("data", {})
        self.eval_cfg = config.get("eval", {})
        loss = self.model_cfg.get("loss", "proxy_anchor")
        if loss in TUPLE_LOSSES:
            raise NotImplementedError(
                f"recipe {config.get('recipe')!r}: loss {loss!r} trains on mined tuples with label "
                "distances (log-ratio paper); this class-label task does not mine them. Set "
                "`task: log-ratio` (reprolab.tasks.log_ratio), which trains on the mpii-pose "
                "pose distances."
            )
        if loss not in CLASS_LABEL_LOSSES:
            raise ValueError(f"model.loss: unknown loss {loss!r}; expected one of {', '.join(CLASS_LABEL_LOSSES)}")
        bench = config.get("benchmark_spec") or {}
        self.dataset_id = self.data_cfg.get("dataset", bench.get("dataset"))
        if not self.dataset_id:
            raise KeyError(f"recipe {config.get('recipe')!r}: no dataset (benchmark_spec.dataset or data.dataset)")
        self.query_gallery = bool(self.eval_cfg.get("query_gallery", False))
        self.split_names = {
            "train": self.data_cfg.get("train_split", bench.get("train_split", "train")),
            "eval": self.data_cfg.get("eval_split", bench.get("eval_split", "test")),
        }
        self.profile = config.get("profile", "full")
        self.ks = tuple(int(k) for k in self.eval_cfg.get("ks", (1, 2, 4, 8)))
        self._splits: dict[str, Any] = {}
        self._iters_per_epoch: int | None = None

    # ---- data ----------------------------------------------------------------------------
    def open_split(self, name: str):
        if name not in self._splits:
            from reprolab.data.reader import open_split

            self._splits[name] = open_split(self.dataset_id, name, self.profile)
        return self._splits[name]

    def eval_parts(self) -> list[tuple[Any, bool]]:
        if self.query_gallery:
            return [(self.open_split("query"), True), (self.open_split("gallery"), False)]
        return [(self.open_split(self.split_names["eval"]), True)]

    def check_data(self) -> None:
        from reprolab.tasks.video_classification import pretrained_weights_path

        self.open_split(self.split_names["train"])
        self.eval_parts()
        pretrained_weights_path(self.model_cfg.get("weights"))

    @cached_property
    def train_label_map(self) -> dict[int, int]:
        """Training labels -> 0..C-1 (one proxy per training class)."""
        labels = sorted(set(self.open_split(self.split_names["train"]).labels))
        return {label: i for i, label in enumerate(labels)}

    def transform(self, train: bool):
        backbone_config = backbone_input_config(self.model_cfg.get("backbone", "bn_inception"))
        return input_transform(backbone_config, train=train, crop=int(self.data_cfg.get("crop", 224)),
                               resize=int(self.data_cfg.get("resize", 256)))

    def build_dataset(self, split: Split) -> ImageRetrievalDataset:
        if split == "train":
            train = self.open_split(self.split_names["train"])
            dataset = ImageRetrievalDataset([(train, False)], self.transform(True), self.train_label_map)
            batch = int(self.config["optim"]["batch_size"])
            self._iters_per_epoch = max(1, len(dataset) // batch)
            return dataset
        return ImageRetrievalDataset(self.eval_parts(), self.transform(False))

    def describe_split(self, dataset: ImageRetrievalDataset, split: Split) -> SplitDescription:
        parts = dataset.parts
        name = "+".join(p.split for p, _ in parts)
        fingerprint = parts[0][0].fingerprint if len(parts) == 1 else "sha256:" + hashlib.sha256(
            "".join(p.fingerprint for p, _ in parts).encode()).hexdigest()
        return SplitDescription(self.dataset_id, name, len(dataset), fingerprint)

    # ---- model ---------------------------------------------------------------------------
    def build_model(self, *, pretrained: bool = True) -> MetricLearningModel:
        from reprolab.tasks.video_classification import pretrained_weights_path

        cfg = self.model_cfg
        embedding_size = int(cfg.get("embedding_size", 512))
        net = build_embedding_model(
            backbone=cfg.get("backbone", "bn_inception"),
            embedding_size=embedding_size,
            pooling=cfg.get("pooling", "avg+max"),
            normalize=bool(cfg.get("normalize", True)),
            freeze_bn=bool(cfg.get("freeze_bn", False)),
            weights=pretrained_weights_path(cfg.get("weights")) if pretrained else None,
        )
        criterion = build_loss(cfg.get("loss", "proxy_anchor"), num_classes=len(self.train_label_map),
                               embedding_size=embedding_size, **dict(cfg.get("loss_options") or {}))
        default_mult = getattr(criterion, "lr_multiplier", 1.0)
        return MetricLearningModel(net, criterion, float(cfg.get("loss_lr_mult", default_mult)))

    def param_groups(self, model: MetricLearningModel):
        head = {id(p) for p in model.net.head_parameters()}
        return [
            {"params": [p for p in model.net.parameters() if id(p) not in head], "name": "backbone"},
            {"params": model.net.head_parameters(), "name": "embedding"},
            {"params": list(model.criterion.parameters()), "lr_mult": model.loss_lr_mult, "name": "loss"},
        ]

    def eval_batch_size(self) -> int:
        return int(self.eval_cfg.get("batch_size", self.config["optim"]["batch_size"]))

    # ---- steps ---------------------------------------------------------------------------
    def _warm_up(self, model: nn.Module) -> MetricLearningModel:
        """Freeze the backbone for the first `frozen_backbone_epochs` epochs (official --warm)."""
        warm_epochs = int(self.model_cfg.get("frozen_backbone_epochs", 0))
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

    def compute_metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        labels, is_query = targets[:, 0], targets[:, 1].bool()
        if self.query_gallery:
            return inshop_recall_at_k(outputs[is_query], outputs[~is_query], labels[is_query],
                                      labels[~is_query], ks=self.ks)
        metrics = recall_at_k(outputs, labels, ks=self.ks)
        metrics["map@r"] = map_at_r(outputs, labels)
        return metrics
