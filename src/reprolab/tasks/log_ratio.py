"""Metric learning with continuous labels (log-ratio paper): pose, room-layout and caption retrieval.

As the official code (Beyond-Binary-Supervision-CVPR19, main.py / Dense_PairDataset.py /
Naive_PairDataset.py / utils.eval_retrieval; it covers human poses only), see
reproductions/log-ratio/NOTES.md:

- labels are continuous: a label space (reprolab.tasks.label_spaces, the recipe's
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

Recipe keys read here (reproductions/log-ratio/recipes/_base.yaml):

    model:  backbone, weights, embedding_size, pooling, normalize, freeze_bn
            loss, loss_options            reprolab.models.losses.build_loss name and keywords
            mining                        {mode: dense|binary, tuple_size, num_nn,
                                           num_positive_neighbours, num_positives}
    data:   label_space                   {name: pose|layout|caption, <options>}
            channel_order, mean, std, scale   pixel convention (BGR, 0-255, Caffe mean)
            train_geometry                {canvas, crop, scale_jitter, translate_jitter}
            eval_geometry                 {crop}
            tuple_flip                    one horizontal flip (p 0.5) for the whole tuple
    eval:   queries (checked against the split's roles), max_k, ndcg_ks, label_distance_scale
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import Dataset

from reprolab.metrics.retrieval import mean_label_distance_at_k, ndcg_at_k
from reprolab.models.embedding import build_embedding_model
from reprolab.models.losses import TUPLE_LOSSES, build_loss
from reprolab.models.losses.dense_mining import binary_positions, dense_positions
from reprolab.tasks.base import Split, SplitDescription, Task
from reprolab.tasks.label_spaces import LabelSpace, build_label_space, check_list_order

MEAN_DISTANCE_KS = (1, 5, 10)  # the benchmark's mean_label_distance@K
ROLE_CODES = {"database": 0, "query": 1, None: 2}  # None: no role column, leave-one-out


class PoseCrop:
    """The official RandTranslation(canvas, crop) (train) and CenterTranslation (eval).

    A crop-sized window at the fixed offset ``(canvas - crop) // 2 + 1`` (33 for 288/224, the
    official hard-coded value), grown or shrunk by up to ceil(scale_jitter x crop) pixels per side
    and shifted by up to ceil(translate_jitter x crop), then resized to crop x crop (Scale(224)).
    An image that is not canvas-sized is first resized to the canvas (the authors' crops are).
    """

    def __init__(self, canvas: int, crop: int, scale_jitter: float = 0.0, translate_jitter: float = 0.0):
        if not 0 < crop < canvas:
            raise ValueError(f"data geometry: crop {crop} must be smaller than canvas {canvas}")
        self.canvas, self.crop = canvas, crop
        self.offset = (canvas - crop) // 2 + 1
        self.scale_max = math.ceil(scale_jitter * crop)
        self.shift_max = math.ceil(translate_jitter * crop)

    def __call__(self, image: Image.Image, rng: np.random.Generator | None = None) -> Image.Image:
        if image.size != (self.canvas, self.canvas):
            image = image.resize((self.canvas, self.canvas), Image.BILINEAR)
        lo, hi = self.offset, self.offset + self.crop
        box = [lo, lo, hi, hi]
        if rng is not None:
            grow = math.ceil(rng.uniform(-self.scale_max, self.scale_max))
            box = [lo - grow, lo - grow, hi + grow, hi + grow]
            for axis in (0, 1):
                low = max(1 - box[axis], -self.shift_max)
                high = min(self.canvas - box[axis + 2], self.shift_max)
                shift = math.ceil(rng.uniform(low, high))
                box[axis] += shift
                box[axis + 2] += shift
        window = image.crop(tuple(box))
        if window.size != (self.crop, self.crop):
            window = window.resize((self.crop, self.crop), Image.BILINEAR)
        return window


class PixelConvention:
    """PIL RGB -> float tensor in the recipe's convention: (scale * x[channel_order] - mean) / std."""

    def __init__(self, data_cfg: dict[str, Any]):
        self.bgr = str(data_cfg.get("channel_order", "RGB")).upper() == "BGR"
        self.scale = float(data_cfg.get("scale", 255.0))
        self.mean = torch.tensor([float(m) for m in data_cfg.get("mean", (0.0, 0.0, 0.0))]).view(3, 1, 1)
        self.std = torch.tensor([float(s) for s in data_cfg.get("std", (1.0, 1.0, 1.0))]).view(3, 1, 1)

    def __call__(self, image: Image.Image) -> torch.Tensor:
        pixels = torch.from_numpy(np.asarray(image, dtype=np.float32).copy()).permute(2, 0, 1) / 255.0
        if self.bgr:
            pixels = pixels.flip(0)
        return (pixels * self.scale - self.mean) / self.std


def _decode(sample) -> Image.Image:
    return Image.open(io.BytesIO(sample.frames[0])).convert("RGB")


class MinedTupleDataset(Dataset):
    """Item ``(anchor, seed)``: the anchor's mined tuple, images (T, 3, H, W) and label distances."""

    def __init__(self, split, labels: LabelSpace, mining: dict[str, Any], crop: PoseCrop,
                 pixels: PixelConvention, tuple_flip: bool):
        self.split, self.labels, self.crop, self.pixels = split, labels, crop, pixels
        self.tuple_flip = tuple_flip
        self.mode = str(mining.get("mode", "dense"))
        if self.mode not in ("dense", "binary"):
            raise ValueError(f"model.mining.mode: unknown mode {self.mode!r}; expected dense or binary")
        self.tuple_size = int(mining.get("tuple_size", 150))
        self.num_nn = int(mining.get("num_nn", 5))
        self.num_positive_neighbours = int(mining.get("num_positive_neighbours", 30))
        self.num_positives = int(mining.get("num_positives", 5))
        try:  # fail now, not mid-epoch, on a tuple the split cannot fill
            self.positions(np.random.default_rng(0))
        except ValueError as error:
            raise ValueError(f"model.mining on {split!r}: {error}") from None

    def __len__(self) -> int:
        return len(self.split)

    def positions(self, rng: np.random.Generator) -> np.ndarray:
        others = len(self.split) - 1
        if self.mode == "dense":
            return dense_positions(others, self.num_nn, self.tuple_size, rng)
        return binary_positions(others, self.num_positive_neighbours, self.num_positives,
                                self.tuple_size, rng)

    def image(self, index: int, rng: np.random.Generator) -> torch.Tensor:
        sample = self.split[index]
        check_list_order(sample, index, self.split)
        return self.pixels(self.crop(_decode(sample), rng))

    def __getitem__(self, item: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        anchor, seed = item if isinstance(item, tuple) else (item, 0)
        rng = np.random.default_rng([seed, anchor])  # mining and augmentation from the seed only
        anchor_image = self.image(anchor, rng)
        neighbours, distances = self.labels.sorted_neighbours(anchor)
        chosen = self.positions(rng)
        images = [anchor_image] + [self.image(int(i), rng) for i in neighbours[chosen]]
        stacked = torch.stack(images)
        if self.tuple_flip and rng.random() > 0.5:
            stacked = stacked.flip(-1)
        return {"images": stacked, "label_distances": torch.from_numpy(distances[chosen].astype(np.float32))}


class EvalImages(Dataset):
    """Eval images (fixed crop) with their index and role code (ROLE_CODES: database, query, or
    neither when the split has no `role` column and every image queries the others)."""

    def __init__(self, split, crop: PoseCrop, pixels: PixelConvention):
        self.split, self.crop, self.pixels = split, crop, pixels

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, item: int | tuple[int, int]) -> dict[str, Any]:
        index = item[0] if isinstance(item, tuple) else item
        sample = self.split[index]
        check_list_order(sample, index, self.split)
        role = sample.extra.get("role")
        if role not in ROLE_CODES:
            raise ValueError(f"{self.split!r}: sample {sample.id} has role {role!r}; expected query "
                             "or database (prepare the dataset again)")
        return {"image": self.pixels(self.crop(_decode(sample))), "index": index,
                "role": ROLE_CODES[role]}


class PoseRetrievalModel(nn.Module):
    """The embedding network with its loss (the loss has no parameters; kept for one `forward`)."""

    def __init__(self, net: nn.Module, criterion: nn.Module):
        super().__init__()
        self.net = net
        self.criterion = criterion

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)


class LogRatio(Task):
    def __init__(self, config: dict[str, Any]):
        super().__init__(config)
        self.model_cfg = config.get("model", {})
        self.data_cfg = config.get("data", {})
        self.eval_cfg = config.get("eval", {})
        self.loss_name = self.model_cfg.get("loss", "log_ratio")
        if self.loss_name not in TUPLE_LOSSES:
            raise ValueError(f"recipe {config.get('recipe')!r}: model.loss {self.loss_name!r} is not a "
                             f"mined-tuple loss; expected one of {', '.join(TUPLE_LOSSES)} "
                             "(class-label losses run under task: metric-learning)")
        self.mining = dict(self.model_cfg.get("mining") or {})
        binary = self.loss_name == "binary_triplet"
        if (self.mining.get("mode", "dense") == "binary") != binary:
            raise ValueError(f"recipe {config.get('recipe')!r}: loss {self.loss_name!r} needs "
                             f"model.mining.mode={'binary' if binary else 'dense'}")
        bench = config.get("benchmark_spec") or {}
        self.dataset_id = self.data_cfg.get("dataset", bench.get("dataset"))
        if not self.dataset_id:
            raise KeyError(f"recipe {config.get('recipe')!r}: no dataset (benchmark_spec.dataset or data.dataset)")
        self.split_names = {"train": self.data_cfg.get("train_split", bench.get("train_split", "train")),
                            "eval": self.data_cfg.get("eval_split", bench.get("eval_split", "test"))}
        self.profile = config.get("profile", "full")
        self.max_k = int(self.eval_cfg.get("max_k", 10))
        self.ndcg_ks = tuple(int(k) for k in self.eval_cfg.get("ndcg_ks", (10, 50, 100)))
        self.distance_scale = float(self.eval_cfg.get("label_distance_scale", 1.0))
        if not self.data_cfg.get("label_space"):
            raise KeyError(f"recipe {config.get('recipe')!r}: no data.label_space (the label distances: "
                           "{name: pose|layout|caption, ...})")
        self._splits: dict[str, Any] = {}
        self._label_spaces: dict[str, LabelSpace] = {}

    # ---- data ----------------------------------------------------------------------------
    def open_split(self, name: str):
        if name not in self._splits:
            from reprolab.data.reader import open_split

            self._splits[name] = open_split(self.dataset_id, name, self.profile)
        return self._splits[name]

    def label_space(self, name: str) -> LabelSpace:
        if name not in self._label_spaces:
            self._label_spaces[name] = build_label_space(self.data_cfg["label_space"], self.open_split(name))
        return self._label_spaces[name]

    def check_data(self) -> None:
        from reprolab.tasks.video_classification import pretrained_weights_path

        self.open_split(self.split_names["train"])
        self.open_split(self.split_names["eval"])
        pretrained_weights_path(self.model_cfg.get("weights"))

    def build_dataset(self, split: Split) -> Dataset:
        pixels = PixelConvention(self.data_cfg)
        train_geometry = dict(self.data_cfg.get("train_geometry") or {"canvas": 288, "crop": 224})
        canvas = int(train_geometry.get("canvas", 288))
        if split == "train":
            crop = PoseCrop(canvas, int(train_geometry.get("crop", 224)),
                            float(train_geometry.get("scale_jitter", 0.05)),
                            float(train_geometry.get("translate_jitter", 0.03)))
            train = self.split_names["train"]
            return MinedTupleDataset(self.open_split(train), self.label_space(train), self.mining, crop,
                                     pixels, bool(self.data_cfg.get("tuple_flip", True)))
        eval_crop = int((self.data_cfg.get("eval_geometry") or {}).get("crop", 224))
        return EvalImages(self.open_split(self.split_names["eval"]), PoseCrop(canvas, eval_crop), pixels)

    def describe_split(self, dataset: Dataset, split: Split) -> SplitDescription:
        prepared = dataset.split  # type: ignore[attr-defined]
        return SplitDescription(self.dataset_id, prepared.split, len(prepared), prepared.fingerprint)

    # ---- model ---------------------------------------------------------------------------
    def build_model(self, *, pretrained: bool = True) -> PoseRetrievalModel:
        from reprolab.tasks.video_classification import pretrained_weights_path

        cfg = self.model_cfg
        net = build_embedding_model(
            backbone=cfg.get("backbone", "resnet34"),
            embedding_size=int(cfg.get("embedding_size", 128)),
            pooling=cfg.get("pooling", "avg"),
            normalize=bool(cfg.get("normalize", False)),
            freeze_bn=bool(cfg.get("freeze_bn", False)),
            weights=pretrained_weights_path(cfg.get("weights")) if pretrained else None,
        )
        return PoseRetrievalModel(net, build_loss(self.loss_name, **dict(cfg.get("loss_options") or {})))

    # ---- steps ---------------------------------------------------------------------------
    def training_loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        images = batch["images"]  # (tuples, T, 3, H, W): the whole tuple in one forward, as official
        tuples, size = images.shape[:2]
        embeddings = model(images.flatten(0, 1)).view(tuples, size, -1)
        criterion = model.module.criterion if hasattr(model, "module") else model.criterion
        if self.loss_name == "binary_triplet":
            return torch.stack([criterion(e) for e in embeddings]).mean()
        return criterion(embeddings, batch["label_distances"])

    def predict(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return model(batch["image"]), torch.stack([batch["index"], batch["role"]], dim=1)

    def compute_metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        split = self.open_split(self.split_names["eval"])
        labels = self.label_space(self.split_names["eval"])
        index, role = targets[:, 0].long(), targets[:, 1].long()
        leave_one_out = bool((role == ROLE_CODES[None]).all())
        if not leave_one_out and (role == ROLE_CODES[None]).any():
            raise ValueError(f"{split!r}: some samples have a role (query/database) and some none; "
                             "prepare the dataset again")
        is_query = role != ROLE_CODES["database"]
        queries, database = index[is_query], (index if leave_one_out else index[~is_query])
        expected = self.eval_cfg.get("queries")
        if expected is not None and self.profile == "full" and len(queries) != int(expected):
            raise ValueError(f"{split!r}: {len(queries)} query images, the benchmark protocol has "
                             f"{expected} (eval.queries)")
        searchable = len(database) - int(leave_one_out)
        if not len(queries) or searchable < max(self.max_k, *self.ndcg_ks):
            raise ValueError(f"{split!r}: {len(queries)} queries searching {searchable} images each "
                             f"are too few for K up to {max(self.max_k, *self.ndcg_ks)}; lower "
                             "eval.max_k / eval.ndcg_ks")
        # (query, database) label distances, columns in the order of the outputs
        label_distances = labels.distance_rows(queries.tolist())[:, database.numpy()]
        query_embeddings = outputs[is_query]
        database_embeddings = None if leave_one_out else outputs[~is_query]
        mean_distance = mean_label_distance_at_k(query_embeddings, database_embeddings, label_distances,
                                                 max_k=self.max_k, scale=self.distance_scale)
        metrics = {f"mean_label_distance@{k}": float(mean_distance[k - 1])
                   for k in MEAN_DISTANCE_KS if k <= self.max_k}
        metrics.update(ndcg_at_k(query_embeddings, database_embeddings, label_distances, ks=self.ndcg_ks))
        return metrics
