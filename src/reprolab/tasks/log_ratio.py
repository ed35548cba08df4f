"""Metric learning with continuous labels (log-ratio paper): pose, room-layout and caption retrieval.

As the official code (Beyond-Binary-Supervision-CVPR19, main.py / Dense_PairDataset.py /
Naive_PairDataset.py / utils.eval_retrieval; it covers human poses only), see
reproductions/log-ratio/NOTES.md:

- labels are continuous: a label space (reprolab.data.label_spaces, the recipe's
  ``data.label_space``) gives the label distances between the samples of a split;
- one training item is one mined tuple (the engine's batch_size 1 = one tuple per iteration):
  an anchor, then its others from the anchor's list of training images by rising label
  distance, chosen by ``dense_positions`` (``num_nn`` nearest + random others, in label order)
  or ``binary_positions`` (random positives among the nearest, then random negatives);
  an epoch visits every anchor once, in the engine sampler's random order;
- every image gets its own random crop (RandTranslation), one horizontal flip for the tuple;
- loss: log_ratio / dense_triplet on (embeddings, label distances), binary_triplet on embeddings;
- evaluation: the eval split's `query` images retrieve among its `database` images (pose), or,
  when the split has no `role` column, every image retrieves among all the others
  (leave-one-out), by Euclidean distance; mean label distance of the top K (x
  ``label_distance_scale``) and nDCG@K.

The recipe blocks this task reads are the typed configs below
(reproductions/log-ratio/recipes/_base.yaml).
"""

from __future__ import annotations

from functools import partial
from typing import Any, Literal

import torch
from pydantic import Field, field_validator
from torch import nn
from torch.utils.data import Dataset

from reprolab import predictions
from reprolab.config import Options
from reprolab.data.datasets.tuples import ROLE_CODES, EvalImages, MinedTupleDataset
from reprolab.data.label_spaces import LABEL_SPACES, LabelSpace, build_label_space
from reprolab.data.transforms.images import PixelConvention, PoseCrop
from reprolab.errors import ConfigError
from reprolab.metrics.retrieval import mean_label_distance_at_k, ndcg_at_k
from reprolab.models.backbones import backbone_input_config
from reprolab.models.embedding import EmbeddingWithLoss, build_embedding_model
from reprolab.models.losses import TUPLE_LOSSES, build_loss
from reprolab.models.losses.dense_mining import binary_positions, dense_positions
from reprolab.tasks.base import TASKS, DataConfig, EvalConfig, Split, Task
from reprolab.tasks.metric_learning import EmbeddingConfig

MEAN_DISTANCE_KS = (1, 5, 10)  # the benchmark's mean_label_distance@K


class Mining(Options):
    mode: Literal["dense", "binary"] = "dense"
    tuple_size: int = Field(default=150, gt=1, description="anchor + others per tuple (--batch-size)")
    num_nn: int = Field(default=5, ge=1, description="dense: nearest neighbours always in the tuple")
    num_positive_neighbours: int = Field(default=30, ge=1, description="binary: positives drawn among")
    num_positives: int = Field(default=5, ge=1, description="binary: positives per tuple")


class TupleEmbeddingConfig(EmbeddingConfig):
    backbone: str = "resnet34"
    embedding_size: int = Field(default=128, gt=0)
    pooling: Literal["avg+max", "avg", "max"] = "avg"
    normalize: bool = False
    loss: str = "log_ratio"
    mining: Mining = Field(default_factory=Mining)


class TrainGeometry(Options):
    canvas: int = Field(default=288, gt=0)
    crop: int = Field(default=224, gt=0)
    scale_jitter: float = Field(default=0.05, ge=0)
    translate_jitter: float = Field(default=0.03, ge=0)


class EvalGeometry(Options):
    crop: int = Field(default=224, gt=0)


class LabelSpaceSpec(Options):
    model_config = {**Options.model_config, "extra": "allow"}  # options are the label space's own
    name: str

    @field_validator("name")
    @classmethod
    def _known_label_space(cls, name: str) -> str:
        LABEL_SPACES.get(name)  # a typo is a usage error before any data is read or run recorded
        return name


class TupleDataConfig(DataConfig):
    label_space: LabelSpaceSpec = Field(description="{name: pose|layout|caption, <options>}")
    # The pixel convention; unset: the backbone weights' own input_config (the pose code's
    # Caffe-style BGR 0-255 input differs from torchvision's, so its recipes set it).
    channel_order: Literal["RGB", "BGR"] | None = None
    scale: float | None = Field(default=None, gt=0)
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    train_geometry: TrainGeometry = Field(default_factory=TrainGeometry)
    eval_geometry: EvalGeometry = Field(default_factory=EvalGeometry)
    tuple_flip: bool = Field(default=True, description="one horizontal flip (p 0.5) for the whole tuple")


class TupleEvalConfig(EvalConfig):
    queries: int | None = Field(default=None, gt=0, description="checked against the split's roles (full)")
    max_k: int = Field(default=10, gt=0)
    ndcg_ks: tuple[int, ...] = (10, 50, 100)
    label_distance_scale: float = Field(default=1.0, gt=0)


@TASKS.register(name="log-ratio")
class LogRatio(Task):
    Model = TupleEmbeddingConfig
    Data = TupleDataConfig
    Eval = TupleEvalConfig

    def __init__(self, config: dict[str, Any]):
        super().__init__(config)
        loss = self.model_cfg.loss
        if loss not in TUPLE_LOSSES:
            from reprolab.names import hint

            raise ConfigError(f"recipe {config.get('recipe')!r}: model.loss {loss!r} is not a "
                              f"mined-tuple loss; {hint(loss, TUPLE_LOSSES)} "
                              "(class-label losses run under task: metric-learning)")
        binary = loss == "binary_triplet"
        if (self.model_cfg.mining.mode == "binary") != binary:
            raise ValueError(f"recipe {config.get('recipe')!r}: loss {loss!r} needs "
                             f"model.mining.mode={'binary' if binary else 'dense'}")
        self._label_spaces: dict[str, LabelSpace] = {}

    # ---- data ----------------------------------------------------------------------------
    def label_space(self, name: str) -> LabelSpace:
        if name not in self._label_spaces:
            spec = self.data_cfg.label_space.model_dump()
            self._label_spaces[name] = build_label_space(spec, self.open_split(name))
        return self._label_spaces[name]

    def check_data(self) -> None:
        from reprolab.models.weights import pretrained_weights_path

        super().check_data()
        pretrained_weights_path(self.model_cfg.weights)

    def mining_positions(self) -> partial:
        """The official mining rule as ``positions(num_others, rng=rng)``."""
        m = self.model_cfg.mining
        if m.mode == "dense":
            return partial(dense_positions, num_nn=m.num_nn, tuple_size=m.tuple_size)
        return partial(binary_positions, num_positive_neighbours=m.num_positive_neighbours,
                       num_positives=m.num_positives, tuple_size=m.tuple_size)

    def build_dataset(self, split: Split) -> Dataset:
        data = self.data_cfg
        weights = backbone_input_config(self.model_cfg.backbone)
        pixels = PixelConvention(*(weights[key] if getattr(data, key) is None else getattr(data, key)
                                   for key in ("channel_order", "scale", "mean", "std")))
        geometry = data.train_geometry
        if split == "train":
            crop = PoseCrop(geometry.canvas, geometry.crop, geometry.scale_jitter, geometry.translate_jitter)
            train = self.split_names["train"]
            return MinedTupleDataset(self.open_split(train), self.label_space(train), crop, pixels,
                                     positions=self.mining_positions(), tuple_flip=data.tuple_flip)
        return EvalImages(self.open_split(self.split_names["eval"]),
                          PoseCrop(geometry.canvas, data.eval_geometry.crop), pixels)

    # ---- model ---------------------------------------------------------------------------
    def build_model(self, *, pretrained: bool = True) -> EmbeddingWithLoss:
        from reprolab.models.weights import pretrained_weights_path

        cfg = self.model_cfg
        net = build_embedding_model(
            backbone=cfg.backbone, embedding_size=cfg.embedding_size, pooling=cfg.pooling,
            normalize=cfg.normalize, freeze_bn=cfg.freeze_bn,
            weights=pretrained_weights_path(cfg.weights) if pretrained else None,
        )
        return EmbeddingWithLoss(net, build_loss(cfg.loss, **cfg.loss_options))

    # ---- steps ---------------------------------------------------------------------------
    def training_loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        images = batch["images"]  # (tuples, T, 3, H, W): the whole tuple in one forward, as official
        tuples, size = images.shape[:2]
        embeddings = model(images.flatten(0, 1)).view(tuples, size, -1)
        criterion = model.module.criterion if hasattr(model, "module") else model.criterion
        if self.model_cfg.loss == "binary_triplet":
            return torch.stack([criterion(e) for e in embeddings]).mean()
        return criterion(embeddings, batch["label_distances"])

    def predict(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return model(batch["image"]), torch.stack([batch["index"], batch["role"]], dim=1)

    def _roles(self, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, bool]:
        """(is_query mask, query indices, database indices, leave_one_out) of the eval outputs."""
        index, role = targets[:, 0].long(), targets[:, 1].long()
        leave_one_out = bool((role == ROLE_CODES[None]).all())
        if not leave_one_out and (role == ROLE_CODES[None]).any():
            raise ValueError(f"{self.open_split(self.split_names['eval'])!r}: some samples have a role "
                             "(query/database) and some none; prepare the dataset again")
        is_query = role != ROLE_CODES["database"]
        return is_query, index[is_query], (index if leave_one_out else index[~is_query]), leave_one_out

    def sample_predictions(self, dataset: Dataset, outputs: torch.Tensor, targets: torch.Tensor):
        """Each query's nearest database images by Euclidean distance, with their label distances."""
        split = self.open_split(self.split_names["eval"])
        is_query, queries, database, leave_one_out = self._roles(targets)
        label_distances = self.label_space(self.split_names["eval"]).distance_rows(queries.tolist())
        label_distances = label_distances[:, database.numpy()] * self.eval_cfg.label_distance_scale
        query_ids = [split.ids[i] for i in queries.tolist()]
        if leave_one_out:
            return predictions.retrieval(query_ids, outputs, metric="euclidean", label_distances=label_distances)
        return predictions.retrieval(query_ids, outputs[is_query], [split.ids[i] for i in database.tolist()],
                                     outputs[~is_query], metric="euclidean", label_distances=label_distances)

    def compute_metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        split = self.open_split(self.split_names["eval"])
        labels = self.label_space(self.split_names["eval"])
        is_query, queries, database, leave_one_out = self._roles(targets)
        expected = self.eval_cfg.queries
        if expected is not None and self.profile == "full" and len(queries) != int(expected):
            raise ValueError(f"{split!r}: {len(queries)} query images, the benchmark protocol has "
                             f"{expected} (eval.queries)")
        searchable = len(database) - int(leave_one_out)
        if not len(queries) or searchable < max(self.eval_cfg.max_k, *self.eval_cfg.ndcg_ks):
            raise ValueError(f"{split!r}: {len(queries)} queries searching {searchable} images each "
                             f"are too few for K up to {max(self.eval_cfg.max_k, *self.eval_cfg.ndcg_ks)}; lower "
                             "eval.max_k / eval.ndcg_ks")
        # (query, database) label distances, columns in the order of the outputs
        label_distances = labels.distance_rows(queries.tolist())[:, database.numpy()]
        query_embeddings = outputs[is_query]
        database_embeddings = None if leave_one_out else outputs[~is_query]
        mean_distance = mean_label_distance_at_k(query_embeddings, database_embeddings, label_distances,
                                                 max_k=self.eval_cfg.max_k, scale=self.eval_cfg.label_distance_scale)
        metrics = {f"mean_label_distance@{k}": float(mean_distance[k - 1])
                   for k in MEAN_DISTANCE_KS if k <= self.eval_cfg.max_k}
        metrics.update(ndcg_at_k(query_embeddings, database_embeddings, label_distances, ks=self.eval_cfg.ndcg_ks))
        return metrics
