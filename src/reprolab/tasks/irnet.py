"""IRNet (Ahn, Cho, Kwak, CVPR 2019; jiwoon-ahn/irn) as a task of a WSSS chain.

Trains the class-boundary and displacement heads (reprolab.models.segmentation.irnet) on the
relation labels of an `irn-cams` stage (`data.train_from`; payload `ir_label`), on the frozen,
detached ResNet-50 (step/train_irn.py: radius 10 pairs at stride 4, the four-term loss, the
boundary head at lr x1 and the displacement head at x10, weight decay 1e-4, PolyOptimizer).
Its evaluation reads the stride-4 CAMs of an evaluation-split `irn-cams` stage
(`data.eval_from`) and, by `eval.output`:

- `semantic` (step/make_sem_seg_labels.py): the random walk of the CAMs with the boundary
  affinities (beta 10, t = 2^8, radius 5), background 0.25, argmax: mIoU against the masks;
- `instance` (step/make_ins_seg_labels.py): displacement -> centroids -> instance seeds, the
  walk per seed, background 0.25, connected components: VOC instance mAP at IoU 0.5 and 0.75
  (step/eval_ins_seg.py) against the split's `objects` masks. Beside it, the baseline the paper
  improves on, "each connected CAM blob (CAM > 0.25) is an instance" (`blob_map50`/`blob_map75`).

Before the instance evaluation the displacement's mean over the evaluated images is stored as the
MeanShift bias (train_irn.py does it over infer_list after training). `random_walk_scores` serves
the `rw-labels` step: pseudo labels for a segmentation network (DeepLab).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from reprolab.data.datasets.masks import VocImages, decode_png, normalize
from reprolab.tasks.base import TASKS, EvalConfig, Split
from reprolab.tasks.segmentation import WsssDataConfig, WsssModelConfig, WsssTask


class IrnetModelConfig(WsssModelConfig):
    backbone: str = "resnet50_irn"
    weights: str | None = "weights-resnet50-imagenet"
    freeze_bn: bool = False                    # FixedBatchNorm: running statistics, never updated
    radius: int = Field(default=10, gt=1, description="training pairs within this radius at stride 4")


class IrnetDataConfig(WsssDataConfig):
    crop: int = 512
    resize_long: tuple[int, int] | None = None
    jitter: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    rescale: tuple[float, float] = Field(default=(0.5, 1.5), description="random scale (VOC12AffinityDataset)")


class IrnetEvalConfig(EvalConfig):
    output: Literal["semantic", "instance"] = "semantic"
    beta: float = Field(default=10, gt=0)
    exp_times: int = Field(default=8, ge=0, description="t = 2^exp_times walk steps")
    radius: int = Field(default=5, gt=1)
    sem_seg_bg_thres: float = Field(default=0.25, ge=0, le=1)
    ins_seg_bg_thres: float = Field(default=0.25, ge=0, le=1)
    pad_to: int | None = Field(default=512, description="EdgeDisplacement pads every image to the crop size")
    centroid_iterations: int = Field(default=300, ge=1)
    cluster_threshold: float = Field(default=2.5, gt=0, description="|D| below this: a centroid region")
    min_fragment: float = Field(default=0.01, ge=0, le=1, description="segments below this image fraction score 0")


class IrnAffinityImages(torch.utils.data.Dataset):
    """voc12/dataloader.py VOC12AffinityDataset: random scale (bicubic image, nearest labels), flip,
    normalise, random crop (image 0, labels 255 padded), labels at stride 4 (PIL nearest: every
    4th pixel from the 2nd), relation masks of every pair within `radius`."""

    def __init__(self, split, *, crop: int, rescale: tuple[float, float], radius: int, input_config: dict):
        from reprolab.models.segmentation.path_index import PathIndex

        if crop % 4:
            raise ValueError(f"irnet: data.crop {crop} must be a multiple of 4 (labels at stride 4)")
        self.split, self.crop, self.rescale, self.input_config = split, crop, rescale, input_config
        self.index = PathIndex(radius)
        self.index.source_shape(crop // 4, crop // 4)  # fails early if the crop is too small

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, item):
        from reprolab.data.datasets.masks import crop_box, paste_crop
        from reprolab.models.segmentation.path_index import affinity_labels

        index, seed = item if isinstance(item, tuple) else (item, 0)
        sample = self.split[index]
        images = VocImages(self.split, "eval")
        rgb = images[index]["rgb"].permute(2, 0, 1)
        if "ir_label" not in sample.extra:
            raise KeyError(f"{self.split.dataset}/{self.split.split}: sample {sample.id} has no 'ir_label' "
                           "(train IRNet on an `irn-cams` stage with options.ir_labels: true)")
        label = torch.from_numpy(decode_png(sample.extra["ir_label"]).astype(np.int64))[None]
        generator = torch.Generator().manual_seed(int(seed))
        low, high = self.rescale
        scale = float(torch.empty(1).uniform_(low, high, generator=generator))
        size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[2] * scale)))
        rgb = F.interpolate(rgb[None].float(), size, mode="bicubic", align_corners=False)[0].clamp(0, 255).round()
        label = F.interpolate(label[None].float(), size, mode="nearest")[0].long()
        if bool(torch.randint(2, (1,), generator=generator)):
            rgb, label = rgb.flip(-1), label.flip(-1)
        box = crop_box(size[0], size[1], self.crop, generator)
        image = paste_crop(normalize(rgb.to(torch.uint8), self.input_config), box, self.crop)
        label = paste_crop(label - 255, box, self.crop)[0] + 255
        bg_pos, fg_pos, neg = affinity_labels(label[2::4, 2::4], self.index)
        return {"index": index, "image": image, "bg_pos": bg_pos, "fg_pos": fg_pos, "neg": neg}


@TASKS.register(name="irnet")
class IRNetTask(WsssTask):
    Model = IrnetModelConfig
    Data = IrnetDataConfig
    Eval = IrnetEvalConfig

    def __init__(self, config: dict[str, Any]):
        super().__init__(config)
        self._instances: dict[int, tuple] = {}

    def build_model(self, *, pretrained: bool = True) -> nn.Module:
        from reprolab.models.segmentation.irnet import IRNet

        backbone = self.backbone(pretrained)
        if not hasattr(backbone, "stage_channels"):
            raise ValueError(f"irnet: backbone {self.model_cfg.backbone} has no five stages; "
                             "use resnet50_irn (or tiny_irn in the tiny profile)")
        backbone.stages = True
        return IRNet(backbone, backbone.stage_channels)

    def param_groups(self, model: nn.Module):
        """train_irn.py: boundary head lr x1, displacement head x10, both weight decay; the
        PolyOptimizer's momentum slot gets the weight decay (as psa's, NOTES.md)."""
        edge, dp = model.head_parameters()
        extra = {}
        if self.model_cfg.official_optimizer and self.options.name == "sgd":
            extra["momentum"] = self.options.weight_decay
        return [{"name": "edge", "params": edge, "lr_mult": 1, "wd_mult": 1, **extra},
                {"name": "displacement", "params": dp, "lr_mult": 10, "wd_mult": 1, **extra}]

    def build_dataset(self, split: Split):
        if split == "train":
            data = self.data_cfg
            return IrnAffinityImages(self.open_split(self.split_names["train"]), crop=data.crop,
                                     rescale=tuple(data.rescale), radius=self.model_cfg.radius,
                                     input_config=self.input_config)
        return VocImages(self.open_split(self.split_names["eval"]), "eval", payloads=("cam",),
                         input_config=self.input_config)

    def training_loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        from reprolab.models.segmentation.irnet import irnet_loss
        from reprolab.models.segmentation.path_index import PathIndex

        edge, dp = model(batch["image"])
        return irnet_loss(edge, dp, batch["bg_pos"], batch["fg_pos"], batch["neg"],
                          PathIndex(self.model_cfg.radius))["total"]

    # ---- inference ---------------------------------------------------------------------
    def _maps(self, model: nn.Module, batch: dict[str, Any]):
        from reprolab.models.segmentation.irnet import inference_maps

        edge, dp = inference_maps(model, batch["image"][0], self.eval_cfg.pad_to)
        cams = batch["cam"][0].to(edge)
        if cams.shape[-2:] != edge.shape[-2:]:
            raise ValueError(f"irnet: the stored CAMs are {tuple(cams.shape[-2:])}, the boundary map "
                             f"{tuple(edge.shape[-2:])}; data.eval_from must be an `irn-cams` stage (stride 4)")
        return edge, dp, cams, batch["cam_classes"][0].cpu().numpy() + 1

    def _walk(self) -> dict[str, Any]:
        rw = self.eval_cfg
        return {"radius": rw.radius, "beta": rw.beta, "exp_times": rw.exp_times}

    @torch.no_grad()
    def random_walk_scores(self, model: nn.Module, batch: dict[str, Any]) -> torch.Tensor:
        """[21, H, W] make_sem_seg_labels.py scores (background 0.25, absent classes -1): their
        argmax is the semantic pseudo label."""
        from reprolab.models.segmentation.irnet_inference import _upsampled_walk, random_walk

        edge, _, cams, classes = self._maps(model.eval(), batch)
        size = tuple(batch["image"].shape[-2:])
        out = torch.full((21, *size), -1.0)
        out[0] = self.eval_cfg.sem_seg_bg_thres
        if len(classes):
            scores = _upsampled_walk(random_walk(cams, edge, **self._walk()), size, self.eval_cfg.sem_seg_bg_thres)
            out[torch.from_numpy(classes)] = scores[1:].float().cpu()
        return out

    @torch.no_grad()
    def store_mean_shift(self, model: nn.Module, dataset) -> None:
        """The displacement's mean over `dataset` (MeanShift reset to 0 first), as train_irn.py."""
        from torch.utils.data import default_collate

        from reprolab.models.segmentation.irnet import inference_maps

        model.eval().mean_shift.running_mean.zero_()
        means = [inference_maps(model, default_collate([dataset[i]])["image"][0].to(
            model.mean_shift.running_mean.device), self.eval_cfg.pad_to)[1].mean((1, 2)) for i in range(len(dataset))]
        model.mean_shift.running_mean.copy_(torch.stack(means).mean(0))

    @torch.no_grad()
    def predict(self, model: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        if self.eval_cfg.output == "semantic":
            return self.confusion(self.random_walk_scores(model, batch).argmax(0), batch["mask"][0],
                                  batch["index"][0]), batch["index"]
        return self._predict_instances(model, batch)

    def _predict_instances(self, model: nn.Module, batch: dict[str, Any]):
        from reprolab.metrics.instance_segmentation import Instances, instances_from_voc
        from reprolab.models.segmentation.irnet_inference import cam_blob_instances, instance_labels

        index = int(batch["index"][0])
        if not self._instances:  # the first image of an evaluation: the displacement's mean first
            self.store_mean_shift(model, self.build_dataset("eval"))
        split = self.open_split(self.split_names["eval"])
        sample = split[index]
        if "objects" not in sample.extra or "mask" not in sample.extra:
            raise KeyError(f"{split.dataset}/{split.split}: sample {sample.id} has no instance masks "
                           "('objects'); evaluate instances on a split with SegmentationObject masks")
        truth = instances_from_voc(decode_png(sample.extra["objects"]), decode_png(sample.extra["mask"]),
                                   where=f"{split.dataset}/{split.split} {sample.id}")
        edge, dp, cams, classes = self._maps(model.eval(), batch)
        size = tuple(batch["image"].shape[-2:])
        rw = self.eval_cfg
        found = instance_labels(cams, classes, edge, dp.double().cpu().numpy(), size, background=rw.ins_seg_bg_thres,
                                iterations=rw.centroid_iterations, cluster_threshold=rw.cluster_threshold,
                                min_fragment=rw.min_fragment, **self._walk())
        predicted = Instances(found["mask"], found["class"], found["score"])
        self._instances[index] = (predicted, cam_blob_instances(cams.cpu(), classes, size, rw.ins_seg_bg_thres), truth)
        return torch.tensor([[float(index)]]), batch["index"]

    def compute_metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        if self.eval_cfg.output == "semantic":
            return super().compute_metrics(outputs, targets)
        from reprolab.metrics.instance_segmentation import instance_map

        stored = [self._instances.pop(int(i)) for i in outputs[:, 0].tolist()]
        self._counts = [(len(s[0].labels), len(s[2].labels)) for s in stored]
        self._truths = [s[2] for s in stored]
        metrics = instance_map([s[0] for s in stored], [s[2] for s in stored])
        blobs = instance_map([s[1] for s in stored], [s[2] for s in stored])
        return {"map@0.5": metrics["map50"], "map@0.75": metrics["map75"],
                "blob_map@0.5": blobs["map50"], "blob_map@0.75": blobs["map75"]}

    def chance_metrics(self, outputs: torch.Tensor, targets: torch.Tensor, *, draws: int = 8) -> dict[str, float]:
        if self.eval_cfg.output == "semantic":
            return super().chance_metrics(outputs, targets, draws=draws)
        return random_instance_map(self._truths, draws=draws)

    def sample_predictions(self, dataset, outputs: torch.Tensor, targets: torch.Tensor):
        if self.eval_cfg.output == "semantic":
            return super().sample_predictions(dataset, outputs, targets)
        import pandas as pd

        from reprolab.predictions import Predictions

        ids = [str(dataset.split.ids[int(i)]) for i in outputs[:, 0].tolist()]
        table = pd.DataFrame(self._counts, columns=["instances", "ground_truth_instances"])
        table.insert(0, "id", ids)
        return Predictions("instances", table)  # instance counts per image (IRNet instance masks)


def random_instance_map(truths, *, draws: int = 8) -> dict[str, float]:
    """Chance: per image, one mask of random pixels (each kept with probability 1/2) for every
    class it holds, randomly scored; VOC mAP averaged over `draws` draws of a fixed generator."""
    from reprolab.metrics.instance_segmentation import Instances, instance_map

    rng = np.random.default_rng(0)
    totals = {"map@0.5": 0.0, "map@0.75": 0.0}
    for _ in range(draws):
        guesses = []
        for truth in truths:
            classes = np.unique(truth.labels)
            shape = truth.masks.shape[1:]
            guesses.append(Instances(rng.random((len(classes), *shape)) < 0.5, classes, rng.random(len(classes))))
        found = instance_map(guesses, truths)
        totals["map@0.5"] += found["map50"] / draws
        totals["map@0.75"] += found["map75"] / draws
    return totals
