"""Inference steps of weakly supervised segmentation chains (PSA; see reprolab.tasks.segmentation).

- `cams` (from a `wsss-cam` stage): infer_cls.py: multi-scale + flip CAMs of every image (the
  maps of its labelled classes, payload `cam`) and, with `crf_alphas: [low, high]`, the dense CRF
  of [(1 - max CAM)^alpha, CAMs] at both alphas (payloads `crf_low`, `crf_high`: AffinityNet's
  training labels). With `pseudo_labels: true` it also writes the CAMs' own labels (argmax over
  [background, CAMs], payload `cam_label`), so that a segmentation stage can train on CAM labels
  (`data.label_key: cam_label`) instead of random-walk labels (the claims' baseline; ours, the official code has no such step).
  Metric: the CAMs' mIoU (background 0.2) where the split has masks.
- `rw-labels` (from a `psa-affinity` stage): infer_aff.py on the stage's training split (whose
  `cam` payload it reads): random-walk labels (payload `pseudo_label`, a palette PNG) to train a
  segmentation network on; `crf: true` refines them with the dense CRF first (psa issue #10:
  the authors did before training their segmentation networks). Metric: their mIoU.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from reprolab.data.derived import DerivedRows
from reprolab.pipeline.steps import InferenceRun, inference_step


class CamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    scales: list[float] = Field(default=[1.0, 0.5, 1.5, 2.0], description="infer_cls.py scales")
    flip: bool = True
    crf_alphas: list[float] = Field(default_factory=list, description="[low, high] (psa: 4, 32); empty: no dCRF")
    background: float = Field(default=0.2, ge=0, le=1, description="for the CAM mIoU metric and pseudo_labels")
    pseudo_labels: bool = Field(default=False, description="also write the CAM labels (payload cam_label)")


class RwLabelOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    crf: bool = Field(default=False, description="dense CRF on the random-walk scores before the argmax")


def _items(run: InferenceRun):
    from torch.utils.data import default_collate

    for index in range(len(run.dataset)):
        yield index, default_collate([run.dataset[index]])


def _metrics(confusion, has_masks: bool) -> dict[str, float]:
    from reprolab.metrics.segmentation import segmentation_metrics

    if not has_masks:
        return {}
    return {k: v for k, v in segmentation_metrics(confusion).items() if k in ("miou", "pixel_accuracy")}


@inference_step("cams", CamOptions)
def cams(run: InferenceRun, options: CamOptions) -> DerivedRows:
    """Multi-scale + flip CAMs (and low/high-alpha dCRF scores) of every image, as infer_cls.py."""
    import numpy as np
    import torch

    from reprolab.data.datasets.masks import encode_array, encode_label_png
    from reprolab.metrics.segmentation import confusion_matrix
    from reprolab.models.segmentation.cam import (
        background_from_alpha,
        cam_prediction,
        multiscale_cam,
    )
    from reprolab.models.segmentation.crf import dense_crf

    if options.crf_alphas and len(options.crf_alphas) != 2:
        raise ValueError(f"cams: crf_alphas {options.crf_alphas}: give [low, high] or nothing")
    model, device = run.model.eval(), next(run.model.parameters()).device
    payloads, confusion, masked = [], torch.zeros(21, 21, dtype=torch.int64), False
    for _, batch in _items(run):
        labels = batch["labels"][0]
        cam = multiscale_cam(model, batch["image"][0].to(device), labels.to(device), options.scales, options.flip).cpu()
        present = torch.nonzero(labels > 1e-5).flatten()
        payload = {"cam": encode_array(classes=present.numpy().astype(np.int16), scores=cam[present].numpy().astype(np.float32))}
        for key, alpha in zip(("crf_low", "crf_high"), options.crf_alphas, strict=False):
            scores = torch.cat([background_from_alpha(cam[present], alpha) if present.numel()
                                else torch.ones(1, *cam.shape[1:]), cam[present]])
            crf = dense_crf(batch["rgb"][0].numpy(), scores.double().numpy())
            payload[key] = encode_array(scores=crf)
        label = cam_prediction(cam, options.background)
        if options.pseudo_labels:
            payload["cam_label"] = encode_label_png(label.numpy())
        payloads.append(payload)
        mask = batch["mask"][0]
        if bool((mask != 255).any()):
            masked = True
            confusion += confusion_matrix(label, mask)
    return DerivedRows(indices=list(range(len(run.dataset))), labels=[-1] * len(run.dataset), payloads=payloads,
                       classes=run.split.classes or None, metrics=_metrics(confusion, masked))


@inference_step("rw-labels", RwLabelOptions)
def rw_labels(run: InferenceRun, options: RwLabelOptions) -> DerivedRows:
    """Random-walk pseudo labels of the affinity stage's training images (infer_aff.py)."""
    import torch

    from reprolab.data.datasets.masks import encode_label_png
    from reprolab.metrics.segmentation import confusion_matrix

    task, model = run.task, run.model.eval()
    device = next(model.parameters()).device
    payloads, confusion, masked = [], torch.zeros(21, 21, dtype=torch.int64), False
    with torch.no_grad():
        for _, batch in _items(run):
            batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
            scores = task.random_walk_scores(model, batch).cpu()
            if options.crf:
                from reprolab.models.segmentation.crf import dense_crf

                probs = scores.double().clamp(min=0)
                probs = probs / probs.sum(0, keepdim=True).clamp(min=1e-12)
                scores = torch.from_numpy(dense_crf(batch["rgb"][0].cpu().numpy(), probs.numpy()))
            label = scores.argmax(0)
            payloads.append({"pseudo_label": encode_label_png(label.numpy())})
            mask = batch["mask"][0].cpu()
            if bool((mask != 255).any()):
                masked = True
                confusion += confusion_matrix(label, mask)
    return DerivedRows(indices=list(range(len(run.dataset))), labels=[-1] * len(run.dataset), payloads=payloads,
                       classes=run.split.classes or None, metrics=_metrics(confusion, masked))
