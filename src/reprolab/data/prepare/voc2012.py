"""PASCAL VOC 2012 (+ SBD) -> manifests `train_aug`, `train`, `val` (images with masks), `test`.

- train_aug follows the DeepLab / psa / irn lists: (SBD train + SBD val + VOC segmentation
  train) minus VOC segmentation val, sorted by id (10,582 images). Its masks are VOC's
  SegmentationClass PNG where one exists (`mask_source = voc`), else SBD's cls .mat
  (`mask_source = sbd`); rows with `in_seg_train` are the VOC segmentation train images.
- train = ImageSets/Segmentation/train.txt (1,464), on which psa and irn score pseudo labels.
  It is a subset of train_aug and prepared splits never share ids, so its ids are
  `train/<image id>` (the images are stored twice; 1,464 of them).
- val = ImageSets/Segmentation/val.txt (1,449). test = VOC2012test.tar's 1,456 images, no masks
  (the VOC server scores them).

Payload: `image` (the JPEG bytes) and, except in test, `mask` (palette PNG: 0 background, 1-20
the classes of `VOC_CLASSES`, 255 void) and `objects` (palette PNG of instance ids: 0 background,
1.. the objects, 255 void; VOC's SegmentationObject, or SBD's inst/*.mat GTinst.Segmentation for
SBD-only images: IRNet's instance ground truth, with `metrics.instance_segmentation.instances_from_voc`). Label -1 (multi-label); `image_id` is the VOC id;
`image_labels` names the image's classes from every <object> of its Annotations XML, difficult
ones included (as psa/irn's make_cls_labels.py).
"""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np

from reprolab.data.prepare import PrepareContext, SampleSpec, SplitPlan
from reprolab.data.prepare.image_files import encode_image, require

VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
               "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep",
               "sofa", "train", "tvmonitor")
VOC_ARCHIVE = "VOCtrainval_11-May-2012.tar"
VOC_TEST_ARCHIVE = "VOC2012test.tar"
SBD_ARCHIVE = "benchmark.tgz"
SHARD_SIZE = 256
VERSION = 2  # 2: the `objects` (instance) payload


def read_ids(path: Path) -> list[str]:
    ids = [line.strip() for line in require(path, path.name).read_text().splitlines() if line.strip()]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: repeated image ids")
    return ids


def image_labels(xml_path: Path) -> list[str]:
    """Class names of every object in a VOC annotation, in VOC order, without repeats."""
    try:
        root = ET.parse(require(xml_path, "the annotation")).getroot()
    except ET.ParseError as error:
        raise ValueError(f"{xml_path}: not valid XML ({error})") from None
    names = {(obj.findtext("name") or "").strip() for obj in root.iter("object")}
    unknown = names - set(VOC_CLASSES)
    if unknown:
        raise ValueError(f"{xml_path}: unknown object names {sorted(unknown)}")
    return [c for c in VOC_CLASSES if c in names]


def sbd_mask(mat_path: Path) -> np.ndarray:
    from scipy.io import loadmat

    mat = loadmat(require(mat_path, "the SBD mask"), squeeze_me=True, struct_as_record=False)
    if "GTcls" not in mat:
        raise ValueError(f"{mat_path}: no GTcls struct (is this an SBD cls/*.mat file?)")
    return np.asarray(mat["GTcls"].Segmentation, np.uint8)


def sbd_instances(mat_path: Path) -> np.ndarray:
    from scipy.io import loadmat

    mat = loadmat(require(mat_path, "the SBD instance mask"), squeeze_me=True, struct_as_record=False)
    if "GTinst" not in mat:
        raise ValueError(f"{mat_path}: no GTinst struct (is this an SBD inst/*.mat file?)")
    return np.asarray(mat["GTinst"].Segmentation, np.uint8)


def voc_palette() -> list[int]:
    """The standard VOC colour map (bit-interleaved), 256 RGB entries, flat."""
    palette = []
    for index in range(256):
        r = g = b = 0
        c = index
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette += [r, g, b]
    return palette


def mask_png(mask: np.ndarray) -> bytes:
    """A class-index mask as a VOC palette PNG."""
    import io

    from PIL import Image

    image = Image.fromarray(mask.astype(np.uint8), mode="P")
    image.putpalette(voc_palette())
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def plan(ctx: PrepareContext) -> list[SplitPlan]:
    voc = ctx.extracted_dir(VOC_ARCHIVE) / "VOCdevkit" / "VOC2012"
    sbd = ctx.extracted_dir(SBD_ARCHIVE) / "benchmark_RELEASE" / "dataset"
    seg_train = read_ids(voc / "ImageSets" / "Segmentation" / "train.txt")
    seg_val = read_ids(voc / "ImageSets" / "Segmentation" / "val.txt")
    sbd_ids = read_ids(sbd / "train.txt") + read_ids(sbd / "val.txt")
    train_aug = sorted((set(sbd_ids) | set(seg_train)) - set(seg_val))
    in_seg_train = set(seg_train)

    def spec(image_id: str, prefix: str = "") -> SampleSpec:
        voc_mask = voc / "SegmentationClass" / f"{image_id}.png"
        if voc_mask.is_file():
            mask, source = voc_mask, "voc"
            objects = require(voc / "SegmentationObject" / f"{image_id}.png", f"instance mask of {image_id}")
        else:
            mask, source = require(sbd / "cls" / f"{image_id}.mat", f"SBD mask of {image_id}"), "sbd"
            objects = require(sbd / "inst" / f"{image_id}.mat", f"SBD instance mask of {image_id}")
        image = require(voc / "JPEGImages" / f"{image_id}.jpg", f"image {image_id}")
        labels = image_labels(voc / "Annotations" / f"{image_id}.xml")
        return SampleSpec(id=prefix + image_id, label=-1,
                          source={"image": str(image), "mask": str(mask), "objects": str(objects)},
                          extra={"image_id": image_id, "image_labels": " ".join(labels),
                                 "mask_source": source, "in_seg_train": image_id in in_seg_train})

    missing_val = [i for i in seg_val if not (voc / "SegmentationClass" / f"{i}.png").is_file()]
    if missing_val:
        raise FileNotFoundError(f"{voc / 'SegmentationClass'}: no mask for val images {missing_val[:5]}")
    test_root = ctx.extracted_dir(VOC_TEST_ARCHIVE) / "VOCdevkit" / "VOC2012"
    test = [SampleSpec(id=i, label=-1,
                       source={"image": str(require(test_root / "JPEGImages" / f"{i}.jpg", f"test image {i}"))},
                       extra={"image_id": i, "image_labels": "", "mask_source": "none",
                              "in_seg_train": False})
            for i in read_ids(test_root / "ImageSets" / "Segmentation" / "test.txt")]
    return [SplitPlan("train_aug", None, [spec(i) for i in train_aug]),
            SplitPlan("train", None, [spec(i, prefix="train/") for i in seg_train]),
            SplitPlan("val", None, [spec(i) for i in seg_val]),
            SplitPlan("test", None, test)]


def encode(spec: SampleSpec, options: dict) -> dict:
    from PIL import Image

    if "mask" not in spec.source:  # test: no labels
        return encode_image(spec.source["image"])
    def palette_png(key: str, from_mat) -> bytes:
        path = Path(spec.source[key])
        if path.suffix == ".mat":
            return mask_png(from_mat(path))
        with Image.open(path) as image:
            if image.mode != "P":
                raise ValueError(f"{path}: expected a palette PNG, got mode {image.mode}")
        return path.read_bytes()

    payload = {"mask": palette_png("mask", sbd_mask)}
    if "objects" in spec.source:
        payload["objects"] = palette_png("objects", sbd_instances)
    return encode_image(spec.source["image"], **payload)
