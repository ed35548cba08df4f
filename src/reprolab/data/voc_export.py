"""Semantic segmentation predictions in the layout the PASCAL VOC evaluation server takes.

The server (and the devkit's VOCevalseg) reads one indexed PNG per image,
``results/VOC2012/Segmentation/<comp>_<split>_cls/<image id>.png``: pixel = class index (0
background, 1-20 in VOC order), the standard VOC colour map as the palette. ``comp5`` is for
methods trained on VOC data only, ``comp6`` for those using outside data (ImageNet-pretrained
backbones such as PSA's and IRNet's: comp6). ``write_voc_segmentation`` writes the PNGs (and
checks that the predicted ids are exactly the expected ones when given); ``pack_submission``
tars the ``results`` folder (deterministic bytes) for upload.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from reprolab.data.prepare.voc2012 import voc_palette

COMPETITIONS = ("comp5", "comp6")
NUM_CLASSES = 21


def results_dir(out_dir: str | Path, competition: str = "comp6", split: str = "test", year: str = "VOC2012") -> Path:
    if competition not in COMPETITIONS:
        raise ValueError(f"VOC competition {competition!r}: use comp5 (VOC data only) or comp6 (outside data)")
    return Path(out_dir) / "results" / year / "Segmentation" / f"{competition}_{split}_cls"


def encode_label_png(labels: np.ndarray, where: str = "prediction") -> bytes:
    from PIL import Image

    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"{where}: a label map is H x W, got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{where}: labels must be integers (class indices), got {labels.dtype}")
    bad = np.unique(labels[(labels < 0) | (labels >= NUM_CLASSES)])
    if bad.size:
        raise ValueError(f"{where}: labels {bad[:5].tolist()} outside 0-20 (the server takes class "
                         "indices only; map ignore/void pixels to a class before exporting)")
    image = Image.fromarray(labels.astype(np.uint8), mode="P")
    image.putpalette(voc_palette())
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def write_voc_segmentation(predictions: Iterable[tuple[str, np.ndarray]], out_dir: str | Path, *,
                           competition: str = "comp6", split: str = "test",
                           expected_ids: Sequence[str] | None = None) -> Path:
    """Write ``(image id, H x W label map)`` pairs as palette PNGs; return the results folder."""
    folder = results_dir(out_dir, competition, split)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for image_id, labels in predictions:
        if not image_id or "/" in image_id or image_id.startswith("."):
            raise ValueError(f"VOC export: {image_id!r} is not a VOC image id (like 2008_000001)")
        if image_id in written:
            raise ValueError(f"VOC export: image {image_id} predicted twice")
        (folder / f"{image_id}.png").write_bytes(encode_label_png(labels, f"image {image_id}"))
        written.append(image_id)
    if expected_ids is not None:
        missing, extra = sorted(set(expected_ids) - set(written)), sorted(set(written) - set(expected_ids))
        if missing or extra:
            raise ValueError(f"VOC export to {folder}: {len(missing)} expected images missing {missing[:3]}, "
                             f"{len(extra)} not in the {split} list {extra[:3]}; the server needs exactly the list")
    return folder


def pack_submission(out_dir: str | Path, archive: str | Path | None = None) -> Path:
    """``results.tar.gz`` of ``<out_dir>/results`` (sorted members, fixed mtimes) for upload."""
    out_dir = Path(out_dir)
    root = out_dir / "results"
    if not root.is_dir():
        raise FileNotFoundError(f"{root} not found: run write_voc_segmentation first")
    archive = Path(archive) if archive is not None else out_dir / "results.tar.gz"
    import gzip

    with open(archive, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w") as tar:
        for path in sorted(root.rglob("*")):
            info = tar.gettarinfo(str(path), arcname=str(path.relative_to(out_dir)))
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            if path.is_file():
                with open(path, "rb") as handle:
                    tar.addfile(info, handle)
            else:
                tar.addfile(info)
    return archive
