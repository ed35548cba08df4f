"""MS-COCO 2017 detection -> manifests `train` (118,287) and `val` (5,000); see coco2014."""

from __future__ import annotations

from reprolab.data.prepare import PrepareContext, SampleSpec, SplitPlan
from reprolab.data.prepare.coco2014 import coco_plans
from reprolab.data.prepare.image_files import encode_image

SHARD_SIZE = 256


def plan(ctx: PrepareContext) -> list[SplitPlan]:
    return coco_plans(ctx, 2017)


def encode(spec: SampleSpec, options: dict) -> dict:
    return encode_image(spec.source)
