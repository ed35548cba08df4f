"""Stage 4 of web-video WSSS (Hong et al., arXiv 1701.00352): `wsss-video-decoder`.

Trains the class-agnostic decoder (reprolab.models.segmentation.attention_decoder) on the video
masks of a `video-masks` stage (frames of the user's videos, each with its query class and its
graph-cut mask), on top of the frozen encoder of the chain's `wsss-cam` stage (`init_from`).
Evaluates still-image semantic segmentation on VOC: the encoder's classifier picks the classes
(sigmoid >= `model.class_threshold`, else the top class), the decoder turns each picked class's
attention map into a foreground probability, and a pixel takes the most probable class, or
background where none reaches `eval.background`. Beside it, the same run measures the
baseline the claim compares with: the encoder's multi-scale + flip CAMs of the same picked
classes with a constant background (`eval.cam_background`, psa's 0.2): metric `cam_miou`.

With `eval.export_pngs`, every evaluated image's prediction is written as the PNG the VOC
evaluation server takes (reprolab.data.voc_export) under the stage's folder, `voc-export/`:
VOC 2012 test has no public masks, so that is its only score.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn
from torch.utils.data import Dataset

from reprolab.data.datasets.masks import VocImages, crop_box, decode_array, normalize, paste_crop
from reprolab.errors import ConfigError
from reprolab.metrics.segmentation import VOC_LABELS, chance_confusion, segmentation_metrics
from reprolab.tasks.base import TASKS, EvalConfig, Split, SplitDescription
from reprolab.tasks.segmentation import WsssDataConfig, WsssModelConfig, WsssTask

CELLS = len(VOC_LABELS) ** 2


class DecoderModelConfig(WsssModelConfig):
    decoder_width: int = Field(default=256, gt=0, description="channels of the decoder's conv layers (ours)")
    class_threshold: float = Field(default=0.5, gt=0, lt=1, description="a class is segmented where "
                                   "the encoder's sigmoid probability reaches this (ours)")
    freeze_bn: bool = False   # the whole encoder is frozen anyway


class DecoderDataConfig(WsssDataConfig):
    video_dataset: str = Field(default="web-videos-voc", description="the dataset the training split is derived from")
    crop: int = 256
    resize_long: tuple[int, int] | None = None
    jitter: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)


class DecoderEvalConfig(EvalConfig):
    background: float = Field(default=0.5, gt=0, lt=1, description="a pixel is background where no "
                              "picked class's decoder probability reaches this")
    cam_background: float = Field(default=0.2, ge=0, le=1, description="the CAM baseline's constant background (psa)")
    scales: tuple[float, ...] = (1.0, 0.5, 1.5, 2.0)
    flip: bool = Field(default=True, description="average with the mirrored image (decoder and CAMs)")
    export_pngs: bool = Field(default=False, description="write VOC server PNGs under the stage folder")


class VideoMaskFrames(Dataset):
    """(frame, graph-cut mask, query class) of every kept frame of a `video-masks` derived split;
    training augmentation: horizontal flip and a random `crop` (image zero padded, mask 255)."""

    def __init__(self, split, *, crop: int, input_config: dict | None = None):
        self.split, self.crop, self.input_config = split, crop, input_config
        self.frames: list[tuple[int, int]] = []
        for index in range(len(split)):
            keep = self._masks(index)["keep"]
            self.frames.extend((index, int(t)) for t in np.nonzero(keep)[0])
        if not self.frames:
            raise ValueError(f"{split.prepared_dir}/{split.split}: no kept frame to train the decoder on")

    def _masks(self, index: int) -> dict[str, np.ndarray]:
        sample = self.split[index]
        if "video_masks" not in sample.extra:
            raise KeyError(f"{self.split.prepared_dir}/{self.split.split}: video {sample.id} has no "
                           "`video_masks` (train the decoder on a `video-masks` stage: data.train_from)")
        return decode_array(sample.extra["video_masks"])

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, item):
        from reprolab.data.datasets.video import read_clip

        position, seed = item if isinstance(item, tuple) else (item, 0)
        index, t = self.frames[position]
        generator = torch.Generator().manual_seed(int(seed))
        rgb = read_clip(self.split, index, [t])[0]
        mask = torch.from_numpy(self._masks(index)["masks"][t].astype(np.int64))[None]
        if bool(torch.randint(2, (1,), generator=generator)):
            rgb, mask = rgb.flip(-1), mask.flip(-1)
        box = crop_box(rgb.shape[1], rgb.shape[2], self.crop, generator)
        return {"image": paste_crop(normalize(rgb, self.input_config), box, self.crop),
                "target": paste_crop(mask - 255, box, self.crop)[0] + 255,
                "query": int(self.split.labels[index])}


@TASKS.register(name="wsss-video-decoder")
class WebVideoDecoder(WsssTask):
    Model = DecoderModelConfig
    Data = DecoderDataConfig
    Eval = DecoderEvalConfig
    default_splits = {"train": "all", "eval": "val"}

    def __init__(self, config: dict[str, Any]):
        super().__init__(config)
        self.export_dir = None
        stage = config.get("stage") or {}
        if self.eval_cfg.export_pngs and stage.get("name"):
            from reprolab.pipeline.layout import StageLayout

            layout = StageLayout(config["recipe"], self.profile)
            self.export_dir = layout.stage_dir(stage["name"]) / "voc-export"

    # ---- data: training frames from the video dataset, evaluation on VOC ----------------------
    def _video_split(self):
        name = self.split_names["train"]
        if name not in self._splits:
            from reprolab.data.reader import open_split

            self._splits[name] = open_split(self.data_cfg.video_dataset, name, self.profile)
        return self._splits[name]

    def check_data(self) -> None:
        self._video_split()
        self.open_split(self.split_names["eval"])
        if self.config.get("init_from") is None:
            raise ConfigError(f"recipe {self.config.get('recipe')}: task wsss-video-decoder needs "
                              "`init_from: <the wsss-cam encoder stage>` (its frozen encoder)")

    def build_dataset(self, split: Split):
        if split == "train":
            return VideoMaskFrames(self._video_split(), crop=self.data_cfg.crop, input_config=self.input_config)
        return VocImages(self.open_split(self.split_names["eval"]), "eval", input_config=self.input_config)

    def describe_split(self, dataset, split: Split) -> SplitDescription:
        if split == "train":
            prepared = dataset.split
            return SplitDescription(self.data_cfg.video_dataset, self.split_names["train"], len(dataset),
                                    prepared.fingerprint)
        return super().describe_split(dataset, split)

    # ---- model: the encoder's weights come from its stage ------------------------------------
    def build_model(self, *, pretrained: bool = True) -> nn.Module:
        from reprolab.models.segmentation.attention_decoder import AttentionSegmentationNet
        from reprolab.models.segmentation.cam import CamNet

        # no ImageNet weights: the whole encoder is the chain's trained wsss-cam stage (init_from)
        return AttentionSegmentationNet(CamNet(self.backbone(False)), self.model_cfg.decoder_width)

    def init_weights(self, model: nn.Module, config: dict[str, Any], *, verbose: bool = False):
        from reprolab.engine import checkpoint
        from reprolab.engine.init_from import init_checkpoint

        path = init_checkpoint(config)
        if path is None:
            raise ConfigError(f"recipe {config.get('recipe')}: task wsss-video-decoder needs "
                              "`init_from: <the wsss-cam encoder stage>` (its frozen encoder)")
        model.encoder.load_state_dict(checkpoint.load(path, map_location="cpu")["model"])
        return []

    def param_groups(self, model: nn.Module):
        return [{"name": "decoder", "params": list(model.decoder.parameters()), "lr_mult": 1, "wd_mult": 1}]

    def training_loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = model(batch["image"], batch["query"])[:, 0]
        target = batch["target"]
        valid = target != 255
        return F.binary_cross_entropy_with_logits(logits[valid], target[valid].float())

    # ---- still-image segmentation = encoder + decoder -----------------------------------------
    def picked_classes(self, model: nn.Module, image: torch.Tensor) -> torch.Tensor:
        probs = model.class_probabilities(image[None])[0]
        picked = torch.nonzero(probs >= self.model_cfg.class_threshold).flatten()
        return picked if picked.numel() else probs.argmax().view(1)

    @torch.no_grad()
    def segment(self, model: nn.Module, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(label map [H, W] of the decoder, of the CAM baseline) of one normalized image."""
        from reprolab.models.segmentation.cam import cam_prediction, multiscale_cam

        picked = self.picked_classes(model, image)
        batch = image[None].expand(len(picked), -1, -1, -1)
        fg = torch.sigmoid(model(batch, picked)[:, 0])
        if self.eval_cfg.flip:   # the mirror's probabilities too, as the CAM baseline's flip
            fg = (fg + torch.sigmoid(model(batch.flip(-1), picked)[:, 0]).flip(-1)) / 2
        scores = torch.cat([torch.full_like(fg[:1], self.eval_cfg.background), fg])
        labels = torch.cat([picked.new_zeros(1), picked + 1])[scores.argmax(0)]
        present = torch.zeros(20, device=image.device)
        present[picked] = 1
        cam = multiscale_cam(model.encoder, image, present, self.eval_cfg.scales, self.eval_cfg.flip)
        return labels, cam_prediction(cam, self.eval_cfg.cam_background)

    def predict(self, model: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        labels, baseline = self.segment(model, batch["image"][0])
        if self.export_dir is not None:
            from reprolab.data.voc_export import write_voc_segmentation

            split = self.open_split(self.split_names["eval"])
            image_id = split.ids[int(batch["index"][0])].rsplit("/", 1)[-1]
            write_voc_segmentation([(image_id, labels.cpu().numpy().astype(np.uint8))], self.export_dir,
                                   split=self.split_names["eval"])
        mask = batch["mask"][0]
        return torch.cat([self.confusion(labels, mask), self.confusion(baseline, mask)], 1), batch["index"]

    def compute_metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        decoder, cams = outputs.double().sum(0).view(2, len(VOC_LABELS), -1)
        if decoder.sum() == 0:   # no ground truth (VOC test): the evaluation server scores the PNGs
            return {"images": float(len(outputs))}
        metrics = segmentation_metrics(decoder)
        metrics["cam_miou"] = segmentation_metrics(cams)["miou"]
        return metrics

    def chance_metrics(self, outputs: torch.Tensor, targets: torch.Tensor, *, draws: int = 8) -> dict[str, float]:
        confusion = outputs[:, :CELLS].double().sum(0).view(len(VOC_LABELS), -1)
        if confusion.sum() == 0:
            return {}
        return segmentation_metrics(chance_confusion(confusion))

    def sample_predictions(self, dataset, outputs: torch.Tensor, targets: torch.Tensor):
        from reprolab import predictions

        return predictions.segmentation(dataset.split.ids, outputs[:, :CELLS], VOC_LABELS)
