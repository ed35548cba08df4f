"""Class-agnostic box regression (UBBR, reprolab.models.ubbr) on the shared engine.

Training: rough boxes around the ground truth of a COCO-format split (`data.train_dataset`,
default coco2017 train) with the classes of a class list removed (`data.held_out_classes`, a
derived split: reprolab.data.class_subsets), IoU loss. Evaluation, on VOC-format splits of the
benchmark's dataset (`eval.mode`):

    rough-boxes  rough boxes drawn around every object (fixed seed): mean IoU with their object
                 before and after refinement, over all objects and over the classes unseen in
                 training (`eval.unseen_classes`, default: the class list's VOC names)
    detections   a weakly supervised detector's scored boxes, read per image from a folder
                 (DETECTIONS_FORMAT), refined or not (`eval.refine_steps: 0`): VOC 2007 mAP and
                 CorLoc. The detector (OICR) itself is not part of this project: its output is
                 the input. `eval.detections: fixture` writes a synthetic "part detector" of the
                 tiny fixture instead (boxes on a part of each object, plus a false positive)
    proposals    densely sampled boxes refined, ranked by how many refined boxes agree with them
                 (IoU >= `support_iou`), NMS, top `top_n`: recall at IoU 0.5 / 0.7 and AR
    discovery    object discovery (CorLoc): not built (NotBuiltError; see NOTES.md)

The chance level of every metric (`RunResult.chance`) is the same metric without UBBR: the input
boxes unrefined (for proposals: the dense boxes through the same ranking and NMS). The evaluated
`samples` of a split description are its ground-truth objects: every metric averages over objects
(or image-class pairs), not over images.
"""

from __future__ import annotations

import hashlib
import json
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field
from torch import nn

from reprolab.config import Options
from reprolab.errors import ConfigError, NotBuiltError
from reprolab.tasks.base import (
    TASKS,
    DataConfig,
    EvalConfig,
    ModelConfig,
    Split,
    SplitDescription,
    Task,
)

DETECTIONS_FORMAT = """\
One JSON file per image, `<folder>/<image id>.json` (VOC ids, e.g. 000005.json), holding
    {"boxes": [[x1, y1, x2, y2], ...], "scores": [s, ...], "classes": ["dog", ...]}
boxes in the original image's pixels as 0-based edges (a VOC box xmin..xmax, 1-based inclusive,
is xmin - 1 .. xmax), one score and one VOC class name per box. Every evaluated image needs a
file (an image without detections has empty lists)."""

# columns of one output row per box: refined box, input box, score, class (or object index in
# rough-boxes mode), refined box valid, input box valid
_REFINED, _INPUT, _SCORE, _CLASS, _VALID_REFINED, _VALID_INPUT = slice(0, 4), slice(4, 8), 8, 9, 10, 11


class UBBRModelConfig(ModelConfig):
    backbone: Literal["resnet101", "resnet50", "tiny_convnet"] = "resnet101"
    weights: str | None = Field(default="weights-resnet101-imagenet", description="a weights card id")
    roi_size: int = Field(default=14, gt=0, description="RoIAlign output (C4 head: layer4 halves it)")
    hidden: int = Field(default=256, gt=0, description="tiny_convnet head width")
    loss_eps: float = Field(default=1e-4, gt=0, description="the constant in -log(IoU + eps)")


class BoxDataConfig(DataConfig):
    train_dataset: str = "coco2017"
    held_out_classes: str | None = Field(
        default="reproductions/ubbr/class_lists/coco-voc20.yaml",
        description="class list removed from training (checkout-relative); null: keep all")
    image_size: int = Field(default=640, gt=0, description="longer side after resize (letterbox)")
    boxes_per_image: int = Field(default=64, gt=0, description="rough boxes drawn per training image")
    min_iou: float = Field(default=0.3, ge=0, lt=1, description="rough boxes keep IoU >= this")
    max_shift: float = Field(default=0.5, gt=0, description="centre shift, fraction of width/height")
    max_scale: float = Field(default=2.0, gt=1, description="side scale within [1/s, s]")
    hflip: bool = True
    eval_splits: list[str] | None = Field(default=None, description="evaluate several splits together")


class ProposalConfig(Options):
    scales: list[float] = Field(default=[0.08, 0.16, 0.32, 0.64], description="box side / image's longer side")
    ratios: list[float] = Field(default=[0.5, 1.0, 2.0], description="height / width")
    step: float = Field(default=0.5, gt=0, description="grid step as a fraction of the box side")
    support_iou: float = Field(default=0.7, gt=0, le=1)
    nms_iou: float = Field(default=0.7, gt=0, le=1)
    top_n: int = Field(default=100, gt=0)


class BoxEvalConfig(EvalConfig):
    mode: Literal["rough-boxes", "detections", "proposals", "discovery"] = "rough-boxes"
    refine_steps: int = Field(default=2, ge=0, description="iterative refinement rounds (0: none)")
    rough_per_object: int = Field(default=8, gt=0)
    rough_seed: int = 0
    rough_min_iou: float = Field(default=0.3, ge=0, lt=1)
    detections: str | None = Field(default=None, description="folder of DETECTIONS_FORMAT files, or `fixture`")
    unseen_classes: list[str] | None = Field(default=None, description="default: the held-out list's VOC names")
    max_objects: int = Field(default=64, gt=0)
    max_boxes: int = Field(default=300, gt=0, description="input boxes per image kept (by score)")
    proposals: ProposalConfig = Field(default_factory=ProposalConfig)


@TASKS.register(name="box-regression")
class BoxRegression(Task):
    Model = UBBRModelConfig
    Data = BoxDataConfig
    Eval = BoxEvalConfig
    default_splits = {"train": "train", "eval": "test"}

    def __init__(self, config: dict[str, Any]):
        super().__init__(config)
        if self.eval_cfg.mode == "detections" and not self.eval_cfg.detections:
            raise ConfigError(f"recipe {config.get('recipe')}: eval.mode detections needs eval.detections "
                              "(a folder of per-image detection files, or `fixture`)")

    # ---- data ----------------------------------------------------------------------------
    @cached_property
    def class_list(self):
        from reprolab import paths
        from reprolab.data.class_subsets import read_class_list

        name = self.data_cfg.held_out_classes
        return None if name is None else read_class_list(paths.project_root() / name)

    def train_split(self):
        from reprolab.data.class_subsets import split_without_classes
        from reprolab.data.layout import DatasetLayout
        from reprolab.data.reader import open_split

        key = f"train:{self.data_cfg.train_dataset}"
        if key not in self._splits:
            source = open_split(self.data_cfg.train_dataset, self.split_names["train"], self.profile)
            if self.class_list is not None:
                folder = DatasetLayout(source.dataset, self.profile).prepared / "derived" / self.class_list.name
                source = split_without_classes(source, self.class_list, folder)
            self._splits[key] = source
        return self._splits[key]

    def eval_parts(self) -> list:
        names = self.data_cfg.eval_splits or [self.split_names["eval"]]
        return [self.open_split(name) for name in names]

    def check_data(self) -> None:
        from reprolab.models.weights import pretrained_weights_path

        if self.eval_cfg.mode == "discovery":
            raise NotBuiltError(
                "UBBR object discovery is not built: the paper's procedure for picking one box per "
                "image from UBBR's refined boxes across the images of a class could not be read (no "
                "paper text reachable, no code); see reproductions/ubbr/NOTES.md. The CorLoc metric "
                "exists (reprolab.metrics.detection.corloc)")
        self.train_split()
        self.eval_parts()
        pretrained_weights_path(self.model_cfg.weights)

    @cached_property
    def unseen(self) -> set[str]:
        if self.eval_cfg.unseen_classes is not None:
            return set(self.eval_cfg.unseen_classes)
        return set(self.class_list.voc) if self.class_list is not None else set()

    def build_dataset(self, split: Split):
        from reprolab.data.datasets.boxes import BoxEvalDataset, RoughBoxTrainDataset

        d = self.data_cfg
        if split == "train":
            return RoughBoxTrainDataset(self.train_split(), size=d.image_size, per_image=d.boxes_per_image,
                                        min_iou=d.min_iou, max_shift=d.max_shift, max_scale=d.max_scale,
                                        hflip=d.hflip)
        parts = self.eval_parts()
        classes = _voc_classes(parts[0])
        mode = self.eval_cfg.mode
        max_boxes = (self.eval_cfg.max_objects * self.eval_cfg.rough_per_object if mode == "rough-boxes"
                     else self.eval_cfg.max_boxes)
        if mode == "detections":
            inputs = self._detection_inputs(parts, classes)
        else:
            inputs = self._rough_inputs if mode == "rough-boxes" else self._dense_inputs
        if mode == "proposals":
            max_boxes = max(max_boxes, self._dense_count())
        return BoxEvalDataset(parts, classes, inputs, size=d.image_size,
                              max_objects=self.eval_cfg.max_objects, max_boxes=max_boxes)

    def describe_split(self, dataset, split: Split) -> SplitDescription:
        if split == "train":
            prepared = dataset.split
            return SplitDescription(self.data_cfg.train_dataset, prepared.split, len(prepared), prepared.fingerprint)
        parts = dataset.parts
        fingerprint = parts[0].fingerprint if len(parts) == 1 else "sha256:" + hashlib.sha256(
            "".join(p.fingerprint for p in parts).encode()).hexdigest()
        return SplitDescription(self.dataset_id, "+".join(p.split for p in parts), dataset.count_objects(),
                                fingerprint)

    # ---- the boxes each mode refines -------------------------------------------------------
    def _rough_inputs(self, index, sample, gt, scale, hw):
        from reprolab.models.ubbr import rough_boxes

        generator = torch.Generator().manual_seed(self.eval_cfg.rough_seed * 1_000_003 + index)
        per = self.eval_cfg.rough_per_object
        boxes = rough_boxes(gt, per, min_iou=self.eval_cfg.rough_min_iou, generator=generator,
                            max_shift=self.data_cfg.max_shift, max_scale=self.data_cfg.max_scale, image_size=hw)
        owner = torch.arange(len(gt)).repeat_interleave(per)  # the object each box was drawn around
        return boxes, owner, torch.ones(len(boxes))

    def _dense_boxes(self, hw) -> torch.Tensor:
        height, width = hw
        p, side = self.eval_cfg.proposals, float(max(hw))
        boxes = []
        for scale in p.scales:
            for ratio in p.ratios:
                w, h = side * scale / ratio ** 0.5, side * scale * ratio ** 0.5
                xs = torch.arange(w / 2, max(width - w / 2, w / 2) + 1e-6, max(1.0, p.step * w))
                ys = torch.arange(h / 2, max(height - h / 2, h / 2) + 1e-6, max(1.0, p.step * h))
                cy, cx = torch.meshgrid(ys, xs, indexing="ij")
                boxes.append(torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1).view(-1, 4))
        boxes = torch.cat(boxes)
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
        return boxes

    def _dense_count(self) -> int:
        size = self.data_cfg.image_size
        return len(self._dense_boxes((size, size)))

    def _dense_inputs(self, index, sample, gt, scale, hw):
        boxes = self._dense_boxes(hw)
        return boxes, torch.full((len(boxes),), -1), torch.ones(len(boxes))

    def _detection_inputs(self, parts, classes):
        folder = self._detections_folder(parts, classes)

        def inputs(index, sample, gt, scale, hw):
            path = folder / f"{sample.id}.json"
            if not path.is_file():
                raise ConfigError(f"eval.detections: no {path} for image {sample.id}\n{DETECTIONS_FORMAT}")
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                boxes = torch.tensor(data["boxes"], dtype=torch.float32).view(-1, 4) * scale
                scores = torch.tensor(data["scores"], dtype=torch.float32).view(-1)
                labels = torch.tensor([classes.index(c) for c in data["classes"]], dtype=torch.long)
            except (ValueError, KeyError, TypeError) as error:
                raise ConfigError(f"{path}: not a detections file ({type(error).__name__}: {error})\n"
                                  f"{DETECTIONS_FORMAT}") from None
            if not len(boxes) == len(scores) == len(labels):
                raise ConfigError(f"{path}: {len(boxes)} boxes, {len(scores)} scores, {len(labels)} classes")
            return boxes, labels, scores
        return inputs

    def _detections_folder(self, parts, classes) -> Path:
        from reprolab import paths

        name = self.eval_cfg.detections
        if name != "fixture":
            folder = paths.project_root() / name
            if not folder.is_dir():
                raise ConfigError(f"eval.detections: {folder} is not a folder\n{DETECTIONS_FORMAT}")
            return folder
        if self.profile != "tiny":
            raise ConfigError("eval.detections: fixture is the tiny profile's synthetic detector; the full "
                              f"profile needs a real detector's output\n{DETECTIONS_FORMAT}")
        folder = parts[0].prepared_dir / "derived" / "detections-fixture"
        write_fixture_detections(folder, parts, classes, seed=self.eval_cfg.rough_seed)
        return folder

    # ---- model and steps -----------------------------------------------------------------
    def build_model(self, *, pretrained: bool = True) -> nn.Module:
        from reprolab.models.ubbr import build_ubbr
        from reprolab.models.weights import pretrained_weights_path

        cfg = self.model_cfg
        weights = pretrained_weights_path(cfg.weights) if pretrained and cfg.weights else None
        return build_ubbr(cfg.backbone, weights, roi_size=cfg.roi_size, hidden=cfg.hidden)

    def training_loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        from reprolab.models.ubbr import apply_offsets, iou_loss

        rough, gt = batch["rough"], batch["gt"]
        index = torch.arange(len(rough), device=rough.device).repeat_interleave(rough.shape[1])
        rough, gt = rough.reshape(-1, 4), gt.reshape(-1, 4)
        offsets = model(batch["image"], torch.cat([index[:, None].to(rough.dtype), rough], 1))
        return iou_loss(apply_offsets(rough, offsets.float()), gt, eps=self.model_cfg.loss_eps)

    def predict(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        boxes, valid, hw = batch["boxes"], batch["box_valid"], batch["hw"]
        index = torch.arange(len(boxes), device=boxes.device)[:, None].expand_as(valid)
        refined = boxes.clone()
        if self.eval_cfg.refine_steps and valid.any():
            rois = torch.cat([index[valid][:, None].to(boxes.dtype), boxes[valid]], 1)
            inner = model.module if hasattr(model, "module") else model
            out = inner.refine(batch["image"], rois, self.eval_cfg.refine_steps)
            limit = hw[index[valid]]
            out[:, 0::2] = torch.minimum(out[:, 0::2].clamp(min=0), limit[:, 1:2])
            out[:, 1::2] = torch.minimum(out[:, 1::2].clamp(min=0), limit[:, 0:1])
            refined[valid] = out.to(refined.dtype)
        score, cls = batch["box_score"].float(), batch["box_class"].float()
        if self.eval_cfg.mode == "proposals":
            rows = [torch.cat([self._rank(refined[b][valid[b]]), self._rank(boxes[b][valid[b]])], 1)
                    for b in range(len(boxes))]
            outputs = torch.stack(rows)
        else:
            v = valid.float()[..., None]
            outputs = torch.cat([refined, boxes, score[..., None], cls[..., None], v, v], -1)
        targets = torch.cat([batch["gt"], batch["gt_class"].float()[..., None],
                             batch["gt_difficult"].float()[..., None]], -1)
        return outputs, targets

    def _rank(self, boxes: torch.Tensor) -> torch.Tensor:
        """Top `top_n` of `boxes` by support (refined boxes agreeing with IoU >= support_iou) after
        NMS: (top_n, 6) = box, support, valid (padded rows invalid)."""
        from torchvision.ops import box_iou, nms

        p = self.eval_cfg.proposals
        out = torch.zeros(p.top_n, 6, device=boxes.device)
        if len(boxes) == 0:
            return out
        support = (box_iou(boxes, boxes) >= p.support_iou).float().sum(1)
        # ties (a regular grid has many) broken by a fixed draw, so the ranking is reproducible
        tie_break = 1e-3 * torch.rand(len(boxes), generator=torch.Generator().manual_seed(0))
        keep = nms(boxes.float(), support + tie_break.to(boxes.device), p.nms_iou)[: p.top_n]
        out[: len(keep), :4], out[: len(keep), 4], out[: len(keep), 5] = boxes[keep], support[keep], 1.0
        return out

    # ---- metrics -------------------------------------------------------------------------
    def compute_metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        return self._metrics(outputs, targets, refined=True)

    def chance_metrics(self, outputs: torch.Tensor, targets: torch.Tensor, *, draws: int = 8) -> dict[str, float]:
        """The metrics without UBBR: the input boxes as they came (see the module docstring)."""
        return self._metrics(outputs, targets, refined=False)

    def _truths(self, targets: torch.Tensor):
        from reprolab.metrics.detection import GroundTruth

        truths = []
        for row in targets:
            keep = row[:, 4] >= 0
            truths.append(GroundTruth(row[keep, :4], row[keep, 4].long(), row[keep, 5].long()))
        return truths

    def _metrics(self, outputs: torch.Tensor, targets: torch.Tensor, *, refined: bool) -> dict[str, float]:
        from reprolab.metrics.detection import (
            Detections,
            corloc,
            mean_paired_iou,
            proposal_recall,
            voc07_map,
        )

        truths = self._truths(targets)
        mode = self.eval_cfg.mode
        if mode == "proposals":
            cols, valid = (slice(0, 4), 5) if refined else (slice(6, 10), 11)
            return proposal_recall([row[row[:, valid] > 0, cols] for row in outputs], truths)
        cols = _REFINED if refined else _INPUT
        valid = outputs[..., _VALID_REFINED if refined else _VALID_INPUT] > 0
        if mode == "detections":
            dets = [Detections(row[v, cols], row[v, _CLASS].long(), row[v, _SCORE]) for row, v in zip(outputs, valid, strict=True)]
            return {**voc07_map(dets, truths, len(self.voc_classes)), **corloc(dets, truths, len(self.voc_classes))}
        # rough boxes: each box against the object it was drawn around
        unseen_ids = {self.voc_classes.index(c) for c in self.unseen if c in self.voc_classes}
        boxes, targets_, is_unseen = [], [], []
        for row, v, gt in zip(outputs, valid, truths, strict=True):
            owner = row[v, _CLASS].long()
            boxes.append(row[v, cols]), targets_.append(gt.boxes[owner])
            is_unseen.append(torch.tensor([int(gt.classes[o]) in unseen_ids for o in owner.tolist()], dtype=torch.bool))
        boxes, targets_, is_unseen = torch.cat(boxes), torch.cat(targets_), torch.cat(is_unseen)
        after = mean_paired_iou(boxes, targets_)
        before = mean_paired_iou(torch.cat([row[v, _INPUT] for row, v in zip(outputs, valid, strict=True)]), targets_)
        out = {"miou_after": after, "miou_before": before, "miou_gain": after - before}
        if is_unseen.any():
            after_u = mean_paired_iou(boxes[is_unseen], targets_[is_unseen])
            before_u = mean_paired_iou(torch.cat([row[v, _INPUT] for row, v in zip(outputs, valid, strict=True)])[is_unseen],
                                       targets_[is_unseen])
            out.update(miou_after_unseen=after_u, miou_before_unseen=before_u, miou_gain_unseen=after_u - before_u)
        if (~is_unseen).any():
            out["miou_after_seen"] = mean_paired_iou(boxes[~is_unseen], targets_[~is_unseen])
        return out

    @cached_property
    def voc_classes(self) -> list[str]:
        return _voc_classes(self.eval_parts()[0])

    def sample_predictions(self, dataset, outputs: torch.Tensor, targets: torch.Tensor):
        from reprolab import predictions

        if self.eval_cfg.mode == "proposals":
            refined, valid, inputs, scores, classes = outputs[..., 0:4], outputs[..., 5] > 0, outputs[..., 6:10], outputs[..., 4], None
        else:
            refined, valid, inputs = outputs[..., _REFINED], outputs[..., _VALID_REFINED] > 0, outputs[..., _INPUT]
            scores, classes = outputs[..., _SCORE], outputs[..., _CLASS].long()
        return predictions.boxes(dataset.ids, refined, inputs, scores, valid, classes,
                                 classes_are=("objects" if self.eval_cfg.mode == "rough-boxes" else "classes"),
                                 class_names=self.voc_classes)


def _voc_classes(split) -> list[str]:
    from reprolab.data.prepare.voc2012 import VOC_CLASSES

    return list(split.classes or VOC_CLASSES)


def write_fixture_detections(folder: Path, parts, classes, *, seed: int = 0) -> None:
    """A synthetic weak detector for the tiny fixture, in DETECTIONS_FORMAT: per object a box on a
    random part of it (45-75% of each side, where weakly supervised detectors fail: on the most
    discriminative part), scored 0.5-1, and one false positive per image of a random class, scored
    0-0.5. Deterministic in `seed`; rewritten every time (a few dozen small files)."""
    from reprolab.data.datasets.boxes import voc_objects

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for split in parts:
        for index, (image_id, objects) in enumerate(zip(split.ids, split.column("objects"), strict=True)):
            g = torch.Generator().manual_seed(seed * 7919 + index + 100_000 * parts.index(split))
            gt, cls, _ = voc_objects(objects, classes)
            w, h = gt[:, 2] - gt[:, 0], gt[:, 3] - gt[:, 1]
            fw, fh = 0.45 + 0.3 * torch.rand(len(gt), generator=g), 0.45 + 0.3 * torch.rand(len(gt), generator=g)
            ox, oy = torch.rand(len(gt), generator=g) * (1 - fw) * w, torch.rand(len(gt), generator=g) * (1 - fh) * h
            parts_ = torch.stack([gt[:, 0] + ox, gt[:, 1] + oy, gt[:, 0] + ox + fw * w, gt[:, 1] + oy + fh * h], 1)
            scores = (0.5 + 0.5 * torch.rand(len(gt), generator=g)).tolist()
            names = [classes[c] for c in cls.tolist()]
            far = torch.rand(4, generator=g).sort().values * float(max(gt.max(), 1.0) if len(gt) else 32.0)
            boxes = parts_.tolist() + [[float(far[0]), float(far[1]), float(far[2]) + 4, float(far[3]) + 4]]
            scores.append(float(0.5 * torch.rand((), generator=g)))
            names.append(classes[int(torch.randint(len(classes), (), generator=g))])
            (folder / f"{image_id}.json").write_text(json.dumps({"boxes": boxes, "scores": scores, "classes": names}))


__all__ = ["DETECTIONS_FORMAT", "BoxRegression", "write_fixture_detections"]
