"""Recognition-friendly image enhancement (URIE): an enhancer trained through a frozen recognizer.

As the official code (taeyoungson/urie@8d806bc train_urie.py, datasets/corruption_dataset.py,
imagenet_dataset/imagenet_loader.py; reproductions/urie/NOTES.md lists what differs):

- the model is ``recognizer(enhancer(x))``: the SK-UNet (reprolab.models.urie) in front of a
  recognizer (torchvision ResNet / VGG with ImageNet weights, the CUB ResNet-50 fine-tuned on
  clean CUB by an earlier stage, or a small CNN for the tiny profile). ``model.train: enhancer``
  freezes the recognizer (eval mode, no gradients to its weights; the optimizer holds the
  enhancer only); ``model.train: recognizer`` fine-tunes the recognizer alone on clean images
  (the CUB classifier stage; no enhancer);
- loss: the recognizer's cross-entropy on the enhanced image (``model.loss: recognition``), or,
  for the MSE-trained variant the paper compares, the MSE between enhanced and clean image
  (``model.loss: mse``); both in the recognizer's normalised input space;
- training images: per sample and epoch one of 16 options, the 15 seen ImageNet-C corruptions
  or clean, severity uniform 1-5 (reprolab.data.corruptions.draw), drawn from the engine's sample
  seed; the distorted image comes from a prepared pool (``data.distorted_pool``, e.g. cub200-c's
  train_distorted, as URIE reads pre-generated distorted CUB) or is made on the fly
  (ImageNet: resize to 256 x 256, corrupt, as the official loader); then one random crop and
  horizontal flip shared by the distorted and the clean image;
- evaluation: every set of ``data.eval_sets`` (clean, seen, unseen), resized to
  ``eval_size`` x ``eval_size``; metrics ``top1_<set>`` with the enhancer and
  ``baseline_top1_<set>`` of the recognizer alone on the same images, from one run.
"""

from __future__ import annotations

import hashlib
import io
import zlib
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from pydantic import Field
from torch import nn
from torch.utils.data import Dataset

from reprolab import predictions
from reprolab.config import Options
from reprolab.data import corruptions
from reprolab.errors import ConfigError
from reprolab.models.backbones import IMAGENET_INPUT
from reprolab.tasks.base import (
    TASKS,
    DataConfig,
    EvalConfig,
    ModelConfig,
    Split,
    SplitDescription,
    Task,
)

RECOGNIZERS = ("resnet18", "resnet50", "resnet101", "vgg16", "small_cnn")


class EnhancementModelConfig(ModelConfig):
    enhancer: Literal["urie_skunet", "none"] = "urie_skunet"
    enhancer_weights: str | None = Field(default=None, description="weights card to start the enhancer from")
    recognizer: Literal[RECOGNIZERS] = "resnet50"  # type: ignore[valid-type]
    recognizer_weights: str | None = Field(default=None, description="weights card (torchvision ImageNet file)")
    num_classes: int | None = Field(default=None, gt=1, description="default: the training split's classes")
    train: Literal["enhancer", "recognizer"] = "enhancer"
    loss: Literal["recognition", "mse"] = "recognition"


class EvalSet(Options):
    dataset: str | None = Field(default=None, description="default: the task's dataset")
    split: str
    severity: int | None = Field(default=None, ge=1, le=5, description="keep only this severity")
    one_per_image: bool = Field(default=False, description="one corruption per source image, fixed by seed")


class EnhancementDataConfig(DataConfig):
    train_dataset: str | None = Field(default=None, description="default: the task's dataset")
    distorted_pool: str | None = Field(default=None, description="split of pre-distorted training images")
    distort: bool = Field(default=True, description="false: clean training images only")
    resize: int = Field(default=256, gt=0, description="training images are resized to resize x resize")
    crop: int = Field(default=224, gt=0, description="random crop of the training images")
    eval_size: int = Field(default=224, gt=0)
    eval_sets: dict[str, EvalSet] = Field(default_factory=dict)
    seed: int = Field(default=2020, description="fixes the one-per-image choice of the eval sets")


def _normalise(pixels: np.ndarray) -> torch.Tensor:
    """uint8 H x W x 3 -> the recognizers' ImageNet-normalised float tensor (as the official loaders)."""
    x = torch.from_numpy(np.array(pixels, dtype=np.float32)).permute(2, 0, 1) / 255.0
    mean = torch.tensor(IMAGENET_INPUT["mean"]).view(3, 1, 1)
    std = torch.tensor(IMAGENET_INPUT["std"]).view(3, 1, 1)
    return (x - mean) / std


def _decode(sample, size: int) -> np.ndarray:
    image = Image.open(io.BytesIO(sample.frames[0])).convert("RGB")
    if image.size != (size, size):
        image = image.resize((size, size), Image.BILINEAR)
    return np.asarray(image)


class DistortedTrainSet(Dataset):
    """Clean training images, each drawn distorted (or clean) per sample seed, cropped and flipped."""

    def __init__(self, clean, pool, *, distort: bool, resize: int, crop: int):
        self.split, self.pool, self.distort = clean, pool, distort
        self.resize, self.crop = resize, crop
        self.pool_index = {sample_id: i for i, sample_id in enumerate(pool.ids)} if pool is not None else {}

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, item) -> dict[str, Any]:
        index, seed = item if isinstance(item, tuple) else (item, 0)
        rng = np.random.RandomState([int(seed) % 2**32, index])
        sample = self.split[index]
        clean = _decode(sample, self.resize)
        distorted = clean
        if self.distort:
            name, severity = corruptions.draw(rng, corruptions.SEEN, clean=True)
            if name is not None and self.pool is not None:
                key = f"{sample.id}@{name}-{severity}"
                if key not in self.pool_index:
                    raise ConfigError(f"data.distorted_pool {self.pool.split!r}: no sample {key!r}; "
                                      "prepare the pool with every seen corruption and severity")
                distorted = _decode(self.pool[self.pool_index[key]], self.resize)
            elif name is not None:
                distorted = corruptions.corrupt(clean, name, severity, rng=rng)
        top, left = rng.randint(0, self.resize - self.crop + 1, size=2)
        window = (slice(top, top + self.crop), slice(left, left + self.crop))
        clean, distorted = clean[window], distorted[window]
        if rng.rand() < 0.5:
            clean, distorted = clean[:, ::-1], distorted[:, ::-1]
        return {"image": _normalise(distorted), "clean": _normalise(clean), "label": sample.label}


class EvalSets(Dataset):
    """The evaluation sets one after the other: image, label and the set's index."""

    def __init__(self, parts: list[tuple[str, Any, list[int]]], size: int):
        self.parts, self.size = parts, size  # [(set name, PreparedSplit, rows kept), ...]
        self.index = [(p, row) for p, (_, _, rows) in enumerate(parts) for row in rows]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, item) -> dict[str, Any]:
        index = item[0] if isinstance(item, tuple) else item
        part, row = self.index[index]
        sample = self.parts[part][1][row]
        return {"image": _normalise(_decode(sample, self.size)), "label": sample.label, "set": part}

    @property
    def ids(self) -> list[str]:
        return [f"{self.parts[p][0]}/{self.parts[p][1].ids[row]}" for p, row in self.index]


def _kept_rows(split, spec: EvalSet, seed: int) -> list[int]:
    """Rows of an eval set: all, or those of one severity, and one corruption per source image
    (ImageNet-C holds every corruption of every image; URIE's CSVs keep one, at severity 3)."""
    rows = list(range(len(split)))
    if spec.severity is not None:
        severities = split.column("severity")
        rows = [r for r in rows if int(severities[r]) == spec.severity]
    if spec.one_per_image:
        ids = split.ids
        by_image: dict[str, list[int]] = {}
        for r in rows:
            by_image.setdefault(ids[r].rsplit("/", 1)[-1].split("@")[0], []).append(r)
        rows = sorted(options[np.random.RandomState([seed, zlib.crc32(stem.encode())]).randint(len(options))]
                      for stem, options in by_image.items())
    return rows


class SmallCNN(nn.Module):
    """The tiny profile's recognizer: four conv-BN-ReLU blocks, global pooling, a linear head."""

    def __init__(self, num_classes: int, width: int = 32):
        super().__init__()
        layers, channels = [], 3
        for out in (width, width, 2 * width, 2 * width):
            layers += [nn.Conv2d(channels, out, 3, padding=1, bias=False), nn.BatchNorm2d(out),
                       nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            channels = out
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))


def build_recognizer(name: str, num_classes: int, weights_path=None) -> nn.Module:
    """A torchvision classifier (ImageNet weights from a fetched card file) with its head for
    `num_classes` (replaced, as the official CUB classifiers, when it is not 1000), or SmallCNN."""
    if name == "small_cnn":
        return SmallCNN(num_classes)
    import torchvision

    model = getattr(torchvision.models, name)(weights=None)
    if weights_path is not None:
        model.load_state_dict(torch.load(weights_path, map_location="cpu", weights_only=True))
    if num_classes != 1000:
        if name.startswith("resnet"):
            model.fc = nn.Linear(model.fc.in_features, num_classes)
        else:  # vgg16
            model.classifier[6] = nn.Linear(model.classifier[6].in_features, num_classes)
    return model


class EnhancedRecognizer(nn.Module):
    """``recognizer(enhancer(x))``; a frozen recognizer stays in eval mode and gets no gradients."""

    def __init__(self, enhancer: nn.Module | None, recognizer: nn.Module, freeze_recognizer: bool):
        super().__init__()
        self.enhancer, self.recognizer, self.freeze_recognizer = enhancer, recognizer, freeze_recognizer
        if freeze_recognizer:
            recognizer.requires_grad_(False)
            self.init_from_scope = "recognizer."  # an earlier stage's weights fill the recognizer only

    def enhance(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.enhancer is None else self.enhancer(x)[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.recognizer(self.enhance(x))

    def train(self, mode: bool = True) -> EnhancedRecognizer:
        super().train(mode)
        if self.freeze_recognizer:
            self.recognizer.eval()  # BN statistics of the recognizer never move (classifier.eval())
        return self


@TASKS.register(name="enhancement")
class Enhancement(Task):
    Model = EnhancementModelConfig
    Data = EnhancementDataConfig
    Eval = EvalConfig
    default_splits = {"train": "train", "eval": "test_seen"}

    def __init__(self, config: dict[str, Any]):
        super().__init__(config)
        cfg = self.model_cfg
        if cfg.train == "enhancer" and cfg.enhancer == "none":
            raise ConfigError(f"recipe {config.get('recipe')!r}: model.train: enhancer needs an enhancer "
                              "(model.enhancer: urie_skunet)")
        if cfg.train == "recognizer" and (cfg.enhancer != "none" or cfg.loss != "recognition"):
            raise ConfigError(f"recipe {config.get('recipe')!r}: model.train: recognizer fine-tunes the "
                              "recognizer alone: set model.enhancer: none and model.loss: recognition")
        if not self.data_cfg.eval_sets:
            raise ConfigError(f"recipe {config.get('recipe')!r}: data.eval_sets is empty; name the "
                              "clean / seen / unseen evaluation splits")
        if self.data_cfg.crop > self.data_cfg.resize:
            raise ConfigError(f"recipe {config.get('recipe')!r}: data.crop {self.data_cfg.crop} is larger "
                              f"than data.resize {self.data_cfg.resize}")

    # ---- data ----------------------------------------------------------------------------
    def _split(self, dataset: str | None, name: str):
        from reprolab.data.reader import open_split

        key = (dataset or self.dataset_id, name)
        if key not in self._splits:
            self._splits[key] = open_split(key[0], name, self.profile)
        return self._splits[key]

    def check_data(self) -> None:
        from reprolab.models.weights import pretrained_weights_path

        self.build_dataset("train")
        self.build_dataset("eval")
        pretrained_weights_path(self.model_cfg.recognizer_weights)
        pretrained_weights_path(self.model_cfg.enhancer_weights)

    def build_dataset(self, split: Split) -> Dataset:
        cfg = self.data_cfg
        if split == "train":
            clean = self._split(cfg.train_dataset, self.split_names["train"])
            pool = self._split(cfg.train_dataset, cfg.distorted_pool) if cfg.distorted_pool and cfg.distort else None
            return DistortedTrainSet(clean, pool, distort=cfg.distort, resize=cfg.resize, crop=cfg.crop)
        parts = []
        for name, spec in cfg.eval_sets.items():
            prepared = self._split(spec.dataset, spec.split)
            parts.append((name, prepared, _kept_rows(prepared, spec, cfg.seed)))
        return EvalSets(parts, cfg.eval_size)

    def describe_split(self, dataset: Dataset, split: Split) -> SplitDescription:
        if split == "train":
            return SplitDescription(dataset.split.dataset, dataset.split.split, len(dataset),
                                    dataset.split.fingerprint)
        digest = hashlib.sha256()
        for name, prepared, rows in dataset.parts:
            digest.update(f"{name}:{prepared.fingerprint}:{len(rows)}:{zlib.crc32(str(rows).encode())};".encode())
        name = "+".join(f"{name}={prepared.dataset}/{prepared.split}" for name, prepared, _ in dataset.parts)
        return SplitDescription(self.dataset_id, name, len(dataset), "sha256:" + digest.hexdigest())

    @property
    def num_classes(self) -> int:
        if self.model_cfg.num_classes is not None:
            return self.model_cfg.num_classes
        return len(self._split(self.data_cfg.train_dataset, self.split_names["train"]).classes)

    # ---- model ---------------------------------------------------------------------------
    def build_model(self, *, pretrained: bool = True) -> EnhancedRecognizer:
        from reprolab.models.urie import SKUNet, load_released_urie
        from reprolab.models.weights import pretrained_weights_path

        cfg = self.model_cfg
        recognizer = build_recognizer(cfg.recognizer, self.num_classes,
                                      pretrained_weights_path(cfg.recognizer_weights) if pretrained else None)
        enhancer = None
        if cfg.enhancer == "urie_skunet":
            released = pretrained_weights_path(cfg.enhancer_weights) if pretrained else None
            enhancer = load_released_urie(released) if released is not None else SKUNet()
        return EnhancedRecognizer(enhancer, recognizer, freeze_recognizer=cfg.train == "enhancer")

    def param_groups(self, model: EnhancedRecognizer):
        trained = model.enhancer if self.model_cfg.train == "enhancer" else model.recognizer
        return [{"params": list(trained.parameters()), "name": self.model_cfg.train}]

    # ---- steps ---------------------------------------------------------------------------
    def training_loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        inner = model.module if hasattr(model, "module") else model
        if self.model_cfg.train == "recognizer":
            return F.cross_entropy(model(batch["clean"]), batch["label"])
        if self.model_cfg.loss == "mse":
            return F.mse_loss(inner.enhance(batch["image"]), batch["clean"])
        return F.cross_entropy(model(batch["image"]), batch["label"])

    def predict(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        enhanced = model(batch["image"])
        alone = model.recognizer(batch["image"]) if model.enhancer is not None else enhanced
        return torch.cat([enhanced, alone], dim=1), torch.stack([batch["label"], batch["set"]], dim=1)

    def compute_metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        classes = outputs.shape[1] // 2
        labels, sets = targets[:, 0], targets[:, 1]
        metrics = {}
        for index, name in enumerate(self.data_cfg.eval_sets):
            keep = sets == index
            if not keep.any():
                continue
            for prefix, logits in (("", outputs[keep, :classes]), ("baseline_", outputs[keep, classes:])):
                metrics[f"{prefix}top1_{name}"] = 100.0 * (logits.argmax(1) == labels[keep]).float().mean().item()
        return metrics

    def sample_predictions(self, dataset: EvalSets, outputs: torch.Tensor, targets: torch.Tensor):
        classes = outputs.shape[1] // 2
        return predictions.classification(dataset.ids, outputs[:, :classes], targets[:, 0],
                                          dataset.parts[0][1].classes)


__all__ = ["Enhancement", "EnhancedRecognizer", "SmallCNN", "build_recognizer"]
