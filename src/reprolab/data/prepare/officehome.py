"""Office-Home -> manifests: one split per domain, classes = sorted folders.

Split names are lower-case with underscores (art, clipart, product, real_world); the folder
"Real World" keeps its space on disk (DSBN renames it RealWorld; the data is the same).
"""

from __future__ import annotations

from reprolab.data.prepare import PrepareContext, SampleSpec, SplitPlan
from reprolab.data.prepare.image_files import domain_plans, encode_image

ARCHIVE = "OfficeHomeDataset_10072016.zip"
DOMAINS = {"art": "Art", "clipart": "Clipart", "product": "Product", "real_world": "Real World"}


def plan(ctx: PrepareContext) -> list[SplitPlan]:
    root = ctx.extracted_dir(ARCHIVE) / "OfficeHomeDataset_10072016"
    return domain_plans({split: root / folder for split, folder in DOMAINS.items()})


def encode(spec: SampleSpec, options: dict) -> dict:
    return encode_image(spec.source)
