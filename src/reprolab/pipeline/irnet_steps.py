"""Inference steps of the IRNet chain (jiwoon-ahn/irn; see reprolab.tasks.irnet).

- `irn-cams` (from a `wsss-cam` stage): step/make_cam.py: multi-scale + flip CAMs of every image
  at stride 4 (payload `cam`: the maps of its classes, max-normalised, what IRNet's random walk
  propagates) and, with `ir_labels: true`, step/cam_to_ir_label.py: the inter-pixel relation
  label map of the full-size CAMs (payload `ir_label`, a palette PNG: 0 background, classes, 255
  unsure) that IRNet trains on. Metric: the full-size CAMs' mIoU (background `background`,
  irn's cam_eval_thres 0.15) where the split has masks.
- `irn-labels` (from an `irnet` stage): step/make_sem_seg_labels.py on the stage's evaluation
  split (whose `cam` payload it reads): semantic pseudo labels (payload `pseudo_label`) to train a
  segmentation network on. Metric: their mIoU.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from reprolab.data.derived import DerivedRows
from reprolab.pipeline.steps import InferenceRun, inference_step


class IrnCamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    scales: list[float] = Field(default=[1.0, 0.5, 1.5, 2.0], description="run_sample.py --cam_scales")
    flip: bool = True
    ir_labels: bool = Field(default=False, description="also write the relation labels (cam_to_ir_label)")
    conf_fg_thres: float = Field(default=0.30, ge=0, le=1)
    conf_bg_thres: float = Field(default=0.05, ge=0, le=1)
    background: float = Field(default=0.15, ge=0, le=1, description="cam_eval_thres, for the CAM mIoU metric")


class IrnLabelOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _items(run: InferenceRun):
    from torch.utils.data import default_collate

    for index in range(len(run.dataset)):
        yield index, default_collate([run.dataset[index]])


def _metrics(confusion, has_masks: bool) -> dict[str, float]:
    from reprolab.metrics.segmentation import segmentation_metrics

    if not has_masks:
        return {}
    return {k: v for k, v in segmentation_metrics(confusion).items() if k in ("miou", "pixel_accuracy")}


def strided_cams(model, image, labels, scales, flip: bool, stride: int = 4):
    """make_cam.py: (stride-4 CAMs, full-size CAMs), each [20, h, w], max-normalised per class.

    Every scale's raw CAM (and its mirror's, mirrored back) is upsampled bilinearly to the
    stride-4 size ceil(H / 4) and to the image size and summed over scales."""
    import torch
    import torch.nn.functional as F

    from reprolab.models.segmentation.cam import aggregate_cams

    size = tuple(image.shape[-2:])
    strided = ((size[0] - 1) // stride + 1, (size[1] - 1) // stride + 1)
    raw, flips = [], []
    with torch.no_grad():
        for scale in scales:
            target = (round(size[0] * scale), round(size[1] * scale))
            scaled = image[None] if scale == 1 else F.interpolate(image[None], target, mode="bicubic",
                                                                  align_corners=False)
            for mirrored in ((False, True) if flip else (False,)):
                raw.append(model.forward_cam(scaled.flip(-1) if mirrored else scaled))
                flips.append(mirrored)
    return aggregate_cams(raw, strided, labels, flips), aggregate_cams(raw, size, labels, flips)


@inference_step("irn-cams", IrnCamOptions)
def irn_cams(run: InferenceRun, options: IrnCamOptions) -> DerivedRows:
    """Stride-4 CAMs of every image (make_cam.py) and, optionally, IRNet's relation labels."""
    import numpy as np
    import torch

    from reprolab.data.datasets.masks import encode_array, encode_label_png
    from reprolab.metrics.segmentation import confusion_matrix
    from reprolab.models.segmentation.cam import cam_prediction
    from reprolab.models.segmentation.irnet_labels import ir_label

    model, device = run.model.eval(), next(run.model.parameters()).device
    payloads, confusion, masked = [], torch.zeros(21, 21, dtype=torch.int64), False
    for _, batch in _items(run):
        labels = batch["labels"][0]
        small, full = (c.cpu() for c in strided_cams(model, batch["image"][0].to(device), labels.to(device),
                                                     options.scales, options.flip))
        present = torch.nonzero(labels > 1e-5).flatten()
        payload = {"cam": encode_array(classes=present.numpy().astype(np.int16),
                                       scores=small[present].numpy().astype(np.float32))}
        if options.ir_labels:
            label = ir_label(batch["rgb"][0].numpy(), full[present].double().numpy(), present.numpy() + 1,
                             options.conf_fg_thres, options.conf_bg_thres)
            payload["ir_label"] = encode_label_png(label)
        payloads.append(payload)
        mask = batch["mask"][0]
        if bool((mask != 255).any()):
            masked = True
            confusion += confusion_matrix(cam_prediction(full, options.background), mask)
    return DerivedRows(indices=list(range(len(run.dataset))), labels=[-1] * len(run.dataset), payloads=payloads,
                       classes=run.split.classes or None, metrics=_metrics(confusion, masked))
