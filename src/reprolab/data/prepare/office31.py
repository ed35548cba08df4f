"""Office-31 -> manifests: one split per domain (amazon, dslr, webcam), classes = sorted folders."""

from __future__ import annotations

from reprolab.data.prepare import PrepareContext, SampleSpec, SplitPlan
from reprolab.data.prepare.image_files import domain_plans, encode_image

ARCHIVE = "domain_adaptation_images.tar.gz"
DOMAINS = ("amazon", "dslr", "webcam")


def plan(ctx: PrepareContext) -> list[SplitPlan]:
    root = ctx.extracted_dir(ARCHIVE) / "domain_adaptation_images"
    return domain_plans({d: root / d / "images" for d in DOMAINS})


def encode(spec: SampleSpec, options: dict) -> dict:
    return encode_image(spec.source)
