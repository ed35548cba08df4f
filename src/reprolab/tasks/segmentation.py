"""Weakly supervised semantic segmentation on VOC-style splits: the shared task family.

Three trainers (PSA's chain, jiwoon-ahn/psa; see reproductions/psa/recipes/):

- `wsss-cam`: the multi-label classifier of train_cls.py (image labels, multilabel soft margin
  loss); its evaluation is the label quality of its CAMs on the evaluation split (infer_cls.py
  multi-scale + flip CAMs, constant background 0.2, mIoU against the ground truth masks);
- `psa-affinity` (reprolab.tasks.psa): AffinityNet, trained on the affinity labels of an earlier
  `cams` stage, evaluated by the random walk of the CAMs of an evaluation-split `cams` stage;
- `semantic-segmentation`: a segmentation network trained on pseudo labels (`rw-labels` stage),
  evaluated on the ground truth.

Every evaluation is a confusion matrix per image (the task's predict outputs [1, 21 * 21]),
summed over the split: mIoU with per-class IoU (reprolab.metrics.segmentation); the chance level
is a uniformly random label per pixel. Images differ in size: evaluation runs one image a batch.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator
from torch import nn

from reprolab import predictions
from reprolab.data.datasets.masks import VocImages
from reprolab.metrics.segmentation import (
    VOC_LABELS,
    chance_confusion,
    confusion_matrix,
    segmentation_metrics,
)
from reprolab.tasks.base import TASKS, DataConfig, EvalConfig, ModelConfig, Split, Task


class WsssModelConfig(ModelConfig):
    backbone: str = Field(default="resnet38", description="a dense backbone (models/segmentation/dense_backbones.py)")
    weights: str | None = Field(default=None, description="a weights card id (ImageNet initialisation)")
    freeze_bn: bool = Field(default=True, description="BatchNorm in eval mode, affine frozen (psa resnet38d)")
    official_optimizer: bool = Field(
        default=True, description="psa's PolyOptimizer passes weight_decay where SGD takes momentum: "
        "momentum = optim.weight_decay (the official behaviour); false: optim.momentum")

    @field_validator("backbone")
    @classmethod
    def _known_backbone(cls, name: str) -> str:
        from reprolab.models.segmentation.dense_backbones import DENSE_BACKBONES

        DENSE_BACKBONES.get(name)
        return name


class WsssDataConfig(DataConfig):
    crop: int = Field(default=448, gt=0, description="training random crop (zero padded)")
    resize_long: tuple[int, int] | None = Field(default=(256, 512), description="random long side (train_cls)")
    jitter: tuple[float, float, float, float] = (0.3, 0.3, 0.3, 0.1)


class CamEvalConfig(EvalConfig):
    scales: tuple[float, ...] = (1.0, 0.5, 1.5, 2.0)
    flip: bool = True
    background: float = Field(default=0.2, ge=0, le=1, description="constant background score (--out_cam_pred)")


class WsssTask(Task):
    """What the WSSS trainers share: backbone, psa's parameter groups, confusion-matrix metrics."""

    Model = WsssModelConfig
    Data = WsssDataConfig
    default_splits = {"train": "train_aug", "eval": "train"}

    def backbone(self, pretrained: bool) -> nn.Module:
        from reprolab.models.segmentation.dense_backbones import dense_backbone
        from reprolab.models.weights import pretrained_weights_path

        weights = pretrained_weights_path(self.model_cfg.weights) if pretrained and self.model_cfg.weights else None
        return dense_backbone(self.model_cfg.backbone, weights)

    @property
    def input_config(self) -> dict:
        from reprolab.models.segmentation.dense_backbones import dense_input_config

        return dense_input_config(self.model_cfg.backbone)

    def check_data(self) -> None:
        from reprolab.models.weights import pretrained_weights_path

        super().check_data()
        if self.model_cfg.weights:
            pretrained_weights_path(self.model_cfg.weights)

    def param_groups(self, model: nn.Module):
        """psa get_parameter_groups: pretrained weights (lr x1), their biases (x2, no decay),
        new layers (x10) and their biases (x20, no decay). Normalization parameters, which psa
        freezes, join the first group when they train (the tiny backbone's BatchNorm)."""
        scratch = {id(p) for module in model.from_scratch for p in module.parameters()}
        groups: dict[str, list] = {"pretrained": [], "pretrained_bias": [], "scratch": [], "scratch_bias": []}
        for name, param in model.named_parameters():
            new = id(param) in scratch
            bias = name.endswith(".bias") and not _is_norm(model, name)
            groups[("scratch" if new else "pretrained") + ("_bias" if bias else "")].append(param)
        mults = {"pretrained": (1, 1), "pretrained_bias": (2, 0), "scratch": (10, 1), "scratch_bias": (20, 0)}
        extra = {}
        if self.model_cfg.official_optimizer and self.options.name == "sgd":
            extra["momentum"] = self.options.weight_decay  # tool/torchutils.PolyOptimizer (NOTES.md)
        return [{"name": name, "params": params, "lr_mult": mults[name][0], "wd_mult": mults[name][1], **extra}
                for name, params in groups.items() if params]

    def eval_batch_size(self) -> int:
        return 1

    def confusion(self, prediction: torch.Tensor, mask: torch.Tensor, index: Any = None) -> torch.Tensor:
        """The image's flattened confusion matrix; given its dataset `index`, the predicted label map
        is also kept (as a ~1 kB PNG) for predictions.parquet, which `reprolab browse` shows."""
        if index is not None:
            self.__dict__.setdefault("_predicted_masks", {})[int(index)] = predictions.label_png(prediction.cpu())
        return confusion_matrix(prediction.cpu(), mask.cpu(), len(VOC_LABELS)).view(1, -1).float()

    def compute_metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        return segmentation_metrics(outputs.double().sum(0).view(len(VOC_LABELS), -1))

    def chance_metrics(self, outputs: torch.Tensor, targets: torch.Tensor, *, draws: int = 8) -> dict[str, float]:
        confusion = outputs.double().sum(0).view(len(VOC_LABELS), -1)
        return segmentation_metrics(chance_confusion(confusion))

    def sample_predictions(self, dataset, outputs: torch.Tensor, targets: torch.Tensor):
        # Under several evaluating processes each holds its own images' masks: the column is left out.
        stored = self.__dict__.pop("_predicted_masks", {})
        masks = [stored.get(i) for i in range(len(dataset))]
        return predictions.segmentation(dataset.split.ids, outputs, VOC_LABELS,
                                        masks=None if None in masks else masks)


def _is_norm(model: nn.Module, name: str) -> bool:
    module = model.get_submodule(name.rsplit(".", 1)[0])
    return isinstance(module, (nn.BatchNorm2d, nn.GroupNorm))


def freeze_batchnorm(model: nn.Module) -> None:
    """psa resnet38d: every BatchNorm in eval mode with its affine parameters fixed."""
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.eval()
            for param in module.parameters():
                param.requires_grad_(False)


@TASKS.register(name="wsss-cam")
class CamClassification(WsssTask):
    Eval = CamEvalConfig

    def build_model(self, *, pretrained: bool = True) -> nn.Module:
        from reprolab.models.segmentation.cam import CamNet

        return _maybe_frozen(CamNet(self.backbone(pretrained)), self.model_cfg.freeze_bn)

    def build_dataset(self, split: Split) -> VocImages:
        data = self.data_cfg
        if split == "train":
            return VocImages(self.open_split(self.split_names["train"]), "classify", crop=data.crop, input_config=self.input_config,
                             resize_long=data.resize_long, jitter=data.jitter)
        return VocImages(self.open_split(self.split_names["eval"]), "eval", input_config=self.input_config)

    def training_loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return F.multilabel_soft_margin_loss(model(batch["image"]), batch["labels"])

    def cams(self, model: nn.Module, batch: dict[str, Any]) -> torch.Tensor:
        """[20, H, W] multi-scale + flip CAMs of the batch's one image."""
        from reprolab.models.segmentation.cam import multiscale_cam

        return multiscale_cam(model, batch["image"][0], batch["labels"][0], self.eval_cfg.scales, self.eval_cfg.flip)

    def predict(self, model: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        from reprolab.models.segmentation.cam import cam_prediction

        prediction = cam_prediction(self.cams(model, batch), self.eval_cfg.background)
        return self.confusion(prediction, batch["mask"][0], batch["index"][0]), batch["index"]


def _maybe_frozen(model: nn.Module, freeze: bool) -> nn.Module:
    if freeze:
        freeze_batchnorm(model)
        original = model.train

        def train(mode: bool = True):
            original(mode)
            freeze_batchnorm(model)
            return model
        model.train = train  # type: ignore[method-assign]
    return model


class SegmentationModelConfig(WsssModelConfig):
    dropout: float = Field(default=0.5, ge=0, lt=1, description="before the 1x1 classifier (DeepLab's drop7)")


class SegmentationDataConfig(WsssDataConfig):
    crop: int = 321
    resize_long: tuple[int, int] | None = None
    jitter: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    label_key: str = Field(default="pseudo_label", description="the payload trained on (cam_label: the CAMs' own labels)")


class SegmentationEvalConfig(EvalConfig):
    crf: bool = Field(default=False, description="dense CRF on the network's probabilities (DeepLab-CRF)")


class SegmentationNet(nn.Module):
    """Dense backbone + dropout + a 1x1 classifier to the 21 labels (DeepLab-LargeFOV's fc8 on its
    fc7; on ResNet-38, conv6), upsampled bilinearly to the input size."""

    def __init__(self, backbone: nn.Module, num_labels: int = 21, dropout: float = 0.5):
        super().__init__()
        self.backbone = backbone
        self.dropout = nn.Dropout2d(dropout)
        self.fc8 = nn.Conv2d(backbone.level_channels[-1], num_labels, 1)
        nn.init.normal_(self.fc8.weight, std=0.01)
        nn.init.zeros_(self.fc8.bias)
        self.from_scratch = [self.fc8]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.fc8(self.dropout(self.backbone(x)[-1]))
        return F.interpolate(logits, x.shape[-2:], mode="bilinear", align_corners=False)


@TASKS.register(name="semantic-segmentation")
class SemanticSegmentation(WsssTask):
    """A segmentation network trained on pseudo labels (a derived split's `pseudo_label`), cross
    entropy with 255 ignored; evaluated on the ground truth. Neither PSA network was released:
    this follows DeepLab-LargeFOV (the paper's "Ours-DeepLab"), see reproductions/psa/NOTES.md."""

    Model = SegmentationModelConfig
    Data = SegmentationDataConfig
    Eval = SegmentationEvalConfig
    default_splits = {"train": "train_aug", "eval": "val"}

    def build_model(self, *, pretrained: bool = True) -> nn.Module:
        net = SegmentationNet(self.backbone(pretrained), dropout=self.model_cfg.dropout)
        return _maybe_frozen(net, self.model_cfg.freeze_bn)

    def build_dataset(self, split: Split) -> VocImages:
        data = self.data_cfg
        if split == "train":
            return VocImages(self.open_split(self.split_names["train"]), "segment", crop=data.crop, input_config=self.input_config,
                             resize_long=data.resize_long, jitter=data.jitter, label_key=data.label_key)
        return VocImages(self.open_split(self.split_names["eval"]), "eval", input_config=self.input_config)

    def training_loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return F.cross_entropy(model(batch["image"]), batch["target"], ignore_index=255)

    def predict(self, model: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        probs = model(batch["image"]).softmax(1)[0]
        if self.eval_cfg.crf:
            from reprolab.models.segmentation.crf import dense_crf

            probs = torch.from_numpy(dense_crf(batch["rgb"][0].cpu().numpy(), probs.double().cpu().numpy()))
        return self.confusion(probs.argmax(0), batch["mask"][0], batch["index"][0]), batch["index"]
