"""PSA's AffinityNet (jiwoon-ahn/psa train_aff.py, infer_aff.py) as a task of a WSSS chain.

Trains on a `cams` stage's derived split (its `crf_low` / `crf_high` dCRF'd CAM scores give the
affinity labels, radius 5) and is evaluated by the random walk: the CAMs of the evaluation split
(`data.eval_from: <cams stage>`), propagated with the predicted affinities (beta 8, t = 2^8,
background alpha 16), argmax. `eval.crf` adds the dense CRF on the random-walk scores (the
paper's CAM+RW+dCRF column; the official code has no such step: ours, NOTES.md).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from reprolab.data.datasets.masks import VocImages, full_cam
from reprolab.tasks.base import TASKS, EvalConfig, Split
from reprolab.tasks.segmentation import WsssDataConfig, WsssModelConfig, WsssTask, _maybe_frozen


class AffinityModelConfig(WsssModelConfig):
    radius: int = Field(default=5, gt=1, description="pairs within this radius on the stride map")


class AffinityDataConfig(WsssDataConfig):
    resize_long: tuple[int, int] | None = None  # train_aff.py: crop and flip only


class RandomWalkConfig(EvalConfig):
    beta: float = Field(default=8, gt=0)
    logt: int = Field(default=8, ge=0, description="t = 2^logt steps")
    alpha: float = Field(default=16, gt=0, description="CAM background (1 - max CAM)^alpha")
    dense: bool = Field(default=False, description="the official dense transition matrix (O(N^2) memory)")
    crf: bool = Field(default=False, description="dense CRF on the random-walk scores (CAM+RW+dCRF)")


@TASKS.register(name="psa-affinity")
class AffinityTask(WsssTask):
    Model = AffinityModelConfig
    Data = AffinityDataConfig
    Eval = RandomWalkConfig

    def build_model(self, *, pretrained: bool = True) -> nn.Module:
        from reprolab.models.segmentation.affinity import AffinityNet

        return _maybe_frozen(AffinityNet(self.backbone(pretrained), self.model_cfg.radius), self.model_cfg.freeze_bn)

    def build_dataset(self, split: Split) -> VocImages:
        data = self.data_cfg
        stride = self.build_backbone_stride()
        if split == "train":
            return VocImages(self.open_split(self.split_names["train"]), "affinity", crop=data.crop, input_config=self.input_config,
                             jitter=data.jitter, stride=stride)
        return VocImages(self.open_split(self.split_names["eval"]), "eval", payloads=("cam",),
                         input_config=self.input_config)

    def build_backbone_stride(self) -> int:
        from reprolab.models.segmentation.dense_backbones import DENSE_BACKBONES

        factory = DENSE_BACKBONES.get(self.model_cfg.backbone)
        return int(factory(weights=None).output_stride)

    def training_loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        from reprolab.models.segmentation.affinity import affinity_loss, pair_labels

        aff = model(batch["image"])
        labels = [pair_labels(label, self.model_cfg.radius) for label in batch["aff_label"]]
        bg, fg, neg = (torch.stack([pairs[k] for pairs in labels]).to(aff.device) for k in range(3))
        return affinity_loss(aff, bg, fg, neg)

    def random_walk_scores(self, model: nn.Module, batch: dict[str, Any], *, dtype=torch.float32) -> torch.Tensor:
        """[21, H, W] random-walk scores of the batch's one image and its stored CAMs."""
        from reprolab.models.segmentation.affinity import pair_affinities
        from reprolab.models.segmentation.random_walk import propagate

        image = batch["image"]
        stride = model.backbone.output_stride
        height, width = image.shape[-2:]
        padded = F.pad(image, (0, -(-width // stride) * stride - width, 0, -(-height // stride) * stride - height))
        features = model.features(padded)
        if features.shape[-2:] != (padded.shape[-2] // stride, padded.shape[-1] // stride):
            raise ValueError(f"backbone {self.model_cfg.backbone}: a {tuple(padded.shape[-2:])} input gave a "
                             f"{tuple(features.shape[-2:])} map, not 1/{stride} of it")
        aff = pair_affinities(features.to(dtype), self.model_cfg.radius)[0]
        cam = full_cam(batch["cam_classes"][0].cpu(), batch["cam"][0].cpu()).to(aff.device, dtype)
        rw = self.eval_cfg
        return propagate(cam, aff, self.model_cfg.radius, stride, alpha=rw.alpha, beta=rw.beta, logt=rw.logt,
                         dense=rw.dense)

    def labels_from_scores(self, scores: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        if not self.eval_cfg.crf:
            return scores.argmax(0)
        from reprolab.models.segmentation.crf import dense_crf

        probs = scores.double().clamp(min=0)
        probs = probs / probs.sum(0, keepdim=True).clamp(min=1e-12)
        return torch.from_numpy(dense_crf(batch["rgb"][0].cpu().numpy(), probs.cpu().numpy())).argmax(0)

    @torch.no_grad()
    def predict(self, model: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        labels = self.labels_from_scores(self.random_walk_scores(model, batch).cpu(), batch)
        return self.confusion(labels, batch["mask"][0], batch["index"][0]), batch["index"]
