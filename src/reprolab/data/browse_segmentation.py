"""Segmentation fields for `reprolab browse` (reprolab.data.browse): masks, CAMs and pseudo labels.

Masks are written once as 8-bit grayscale PNGs (the class index per pixel, what FiftyOne reads
with `mask_path`; not VOC's palette PNG, whose colours FiftyOne would read instead of the
indices) under the browse media folder, and FiftyOne keeps only their paths. The dataset's mask
targets are VOC's 21 labels (0 background, 1-20 the classes) and 255 "ignore": VOC's void border
stays the value 255 in every mask, named, so the App colours it apart and it is never taken for a
class. A CAM becomes a Heatmap (uint8 PNG of the CAM x 255, range [0, 255]: the CAMs are
max-normalised to [0, 1], so the PNG loses at most 1/510 of a score).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from reprolab import atomic
from reprolab.metrics.segmentation import IGNORE_INDEX, VOC_LABELS

IGNORE_NAME = "ignore"
MASK_TARGETS = {**dict(enumerate(VOC_LABELS)), IGNORE_INDEX: IGNORE_NAME}
MASK_FIELDS = ("ground_truth", "prediction", "pseudo_label")


def mask_array(png: bytes) -> np.ndarray:
    """A stored label PNG (VOC palette or grayscale) as its [H, W] uint8 class indices."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        if image.mode not in ("P", "L"):
            raise ValueError(f"a label mask must be a palette or grayscale PNG, got mode {image.mode}")
        return np.array(image, dtype=np.uint8)


def _write_png(array: np.ndarray, target: Path, *, again: bool = False) -> Path:
    """Written once per path (the folders are per preparation), or `again` (a run's predictions)."""
    from PIL import Image

    if again or not target.is_file():
        with atomic.atomic_path(target) as tmp:
            Image.fromarray(array.astype(np.uint8), mode="L").save(tmp, format="PNG")
    return target.resolve()


def segmentation(fo, png: bytes, target: Path, *, again: bool = False):
    """An fo.Segmentation of a stored label PNG, its mask written to `target`."""
    return fo.Segmentation(mask_path=str(_write_png(mask_array(png), target, again=again)))


def top_cam(stored: dict[str, np.ndarray]) -> tuple[int, np.ndarray] | None:
    """(class index into VOC_LABELS, [H, W] map) of the class whose CAM is strongest on average,
    from a `cam` payload (the maps of the image's classes: `classes` 0-19, `scores` [K, H, W]);
    None when the image has no class."""
    classes, scores = stored["classes"], stored["scores"]
    if len(classes) == 0:
        return None
    best = int(scores.reshape(len(classes), -1).mean(1).argmax())
    return int(classes[best]) + 1, scores[best]  # +1: CAM classes have no background


def heatmap(fo, cam: np.ndarray, target: Path):
    scaled = np.clip(np.round(np.asarray(cam, np.float64) * 255), 0, 255).astype(np.uint8)
    return fo.Heatmap(map_path=str(_write_png(scaled, target)), range=[0, 255])


def sample_fields(fo, item, media_dir: Path) -> dict[str, Any]:
    """{field: value} of one prepared or derived sample: `ground_truth` from its `mask`, `cam`
    (and `cam_class`) from a `cam` payload, `pseudo_label` from a `pseudo_label` payload."""
    from reprolab.data.datasets.masks import decode_array

    fields: dict[str, Any] = {}
    stem = item.id.replace("/", "__")  # VOC train ids are `train/<id>`
    extra = item.extra
    if extra.get("mask") is not None:
        fields["ground_truth"] = segmentation(fo, extra["mask"], media_dir / "masks" / f"{stem}.png")
    if extra.get("pseudo_label") is not None:
        fields["pseudo_label"] = segmentation(fo, extra["pseudo_label"], media_dir / "pseudo" / f"{stem}.png")
    if extra.get("cam") is not None:
        top = top_cam(decode_array(extra["cam"]))
        if top is not None:
            fields["cam"] = heatmap(fo, top[1], media_dir / "cams" / f"{stem}.png")
            fields["cam_class"] = VOC_LABELS[top[0]]
    return fields


def prediction_fields(fo, row, run_dir: Path) -> dict[str, Any]:
    """A `segmentation` predictions row: `prediction` (when the run stored its mask, written to
    `run_dir`, the run's own folder: evaluating again rewrites it), `miou`, `pixel_accuracy`
    and `pixels`."""
    fields = {"miou": float(row.miou), "pixel_accuracy": float(row.pixel_accuracy), "pixels": int(row.pixels)}
    mask = getattr(row, "mask", None)
    if mask is not None:
        stem = str(row.id).replace("/", "__")
        fields["prediction"] = segmentation(fo, mask, run_dir / f"{stem}.png", again=True)
    return fields


def has_masks(prepared) -> bool:
    """Whether the split's samples carry a segmentation payload (ground truth, CAM or pseudo label)."""
    if not len(prepared):
        return False
    extra = prepared[0].extra
    return any(extra.get(key) is not None for key in ("mask", "cam", "pseudo_label"))
