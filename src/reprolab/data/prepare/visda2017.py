"""VisDA-2017 classification -> manifests: `train` (synthetic) and `validation` (real).

Classes are the sorted class folders (as DSBN's loaders); each split's image_list.txt, when
present, must agree with them (`<class>/<file> <label>`), so a relabelled copy fails loudly.
"""

from __future__ import annotations

from reprolab.data.prepare import PrepareContext, SampleSpec, SplitPlan
from reprolab.data.prepare.image_files import domain_plans, encode_image, read_rows

SPLITS = ("train", "validation")


def check_image_list(plan: SplitPlan, path) -> None:
    if not path.is_file():
        return
    listed = {file: int(label) for file, label in read_rows(path, 2)}
    for spec in plan.samples:
        file = spec.extra["path"]
        if file in listed and listed[file] != spec.label:
            raise ValueError(f"{path}: {file} has label {listed[file]}, but its folder is class "
                             f"{spec.label} ({plan.classes[spec.label]}) in sorted order")


def plan(ctx: PrepareContext) -> list[SplitPlan]:
    roots = {split: ctx.extracted_dir(f"{split}.tar") / split for split in SPLITS}
    plans = domain_plans(roots)
    for p in plans:
        check_image_list(p, roots[p.name] / "image_list.txt")
    return plans


def encode(spec: SampleSpec, options: dict) -> dict:
    return encode_image(spec.source)
