"""PASCAL VOC 2007 detection -> manifests `trainval` (5,011) and `test` (4,952).

Payload `image` (the JPEG bytes). Label -1 (several objects per image); `objects` is a JSON list
of {"name", "bbox": [xmin, ymin, xmax, ymax] (1-based pixels, as the XML), "difficult",
"truncated"}; `image_labels` names the classes present (difficult objects included). Both tars
unpack to VOCdevkit/VOC2007.
"""

from __future__ import annotations

import json
from xml.etree import ElementTree as ET

from reprolab.data.prepare import PrepareContext, SampleSpec, SplitPlan
from reprolab.data.prepare.image_files import encode_image, require
from reprolab.data.prepare.voc2012 import VOC_CLASSES, read_ids

SPLITS = {"trainval": "VOCtrainval_06-Nov-2007.tar", "test": "VOCtest_06-Nov-2007.tar"}
SHARD_SIZE = 256


def read_objects(xml_path) -> list[dict]:
    try:
        root = ET.parse(require(xml_path, "the annotation")).getroot()
    except ET.ParseError as error:
        raise ValueError(f"{xml_path}: not valid XML ({error})") from None
    objects = []
    for obj in root.iter("object"):
        name = (obj.findtext("name") or "").strip()
        box = obj.find("bndbox")
        if name not in VOC_CLASSES or box is None:
            raise ValueError(f"{xml_path}: object {name!r} is not a VOC class or has no bndbox")
        objects.append({"name": name,
                        "bbox": [int(float(box.findtext(k))) for k in ("xmin", "ymin", "xmax", "ymax")],
                        "difficult": int(obj.findtext("difficult") or 0),
                        "truncated": int(obj.findtext("truncated") or 0)})
    return objects


def plan(ctx: PrepareContext) -> list[SplitPlan]:
    plans = []
    for split, archive in SPLITS.items():
        root = ctx.extracted_dir(archive) / "VOCdevkit" / "VOC2007"
        samples = []
        for image_id in read_ids(root / "ImageSets" / "Main" / f"{split}.txt"):
            objects = read_objects(root / "Annotations" / f"{image_id}.xml")
            present = [c for c in VOC_CLASSES if any(o["name"] == c for o in objects)]
            samples.append(SampleSpec(
                id=image_id, label=-1,
                source=str(require(root / "JPEGImages" / f"{image_id}.jpg", f"image {image_id}")),
                extra={"objects": json.dumps(objects), "image_labels": " ".join(present)}))
        plans.append(SplitPlan(split, None, samples))
    return plans


def encode(spec: SampleSpec, options: dict) -> dict:
    return encode_image(spec.source)
