"""Shared pieces of the image preparers: list-file parsing and the image payload.

`encode_image` is what every image preparer's `encode` does: the file's own bytes (no
re-encoding, so the prepared data is the dataset's data), after checking that they decode.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def read_rows(path: Path, columns: int, *, skip: int = 0, sep: str | None = None) -> list[list[str]]:
    """Non-empty lines of a list file split into exactly `columns` fields (error names file:line)."""
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if number <= skip or not line.strip():
                continue
            fields = line.strip().split(sep, columns - 1) if sep else line.split()
            if len(fields) != columns:
                raise ValueError(f"{path}:{number}: expected {columns} fields, got {line.strip()!r}")
            rows.append([f.strip() for f in fields])
    return rows


def encode_image(path: str | Path, **payload: Any) -> dict[str, Any]:
    """{"image": the file's bytes, **payload}, refusing files that are not a readable image."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    data = path.read_bytes()
    try:
        with Image.open(path) as image:
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"{path}: not a readable image ({error})") from None
    return {"image": data, **payload}


def require(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: {what} is missing from the extracted archive; "
                                "delete the extracted folder and fetch again")
    return path


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def folder_per_class(root: Path) -> tuple[list[str], list[tuple[str, int]]]:
    """(sorted class folder names, [(path relative to root, class index)]) as torchvision's
    ImageFolder orders them (the DSBN loaders are ImageFolder-style)."""
    root = require(root, "the image folder")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not classes:
        raise ValueError(f"{root}: no class folders")
    items = []
    for index, name in enumerate(classes):
        files = sorted(p for p in (root / name).rglob("*")
                       if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ValueError(f"{root / name}: class folder without images")
        items += [(p.relative_to(root).as_posix(), index) for p in files]
    return classes, items


def domain_plans(domains: dict[str, Path]):
    """One split per domain (split name -> class-folder root); every domain must have the same
    classes, so one label means one class in all of them. Sample id = `<split>/<path>`."""
    from reprolab.data.prepare import SampleSpec, SplitPlan

    plans, reference = [], None
    for split, root in domains.items():
        classes, items = folder_per_class(root)
        if reference is not None and classes != reference[1]:
            raise ValueError(f"{root}: classes {classes} differ from those of {reference[0]} "
                             f"({reference[1]})")
        reference = reference or (root, classes)
        samples = [SampleSpec(id=f"{split}/{path}", label=label, source=str(root / path),
                              extra={"path": path}) for path, label in items]
        plans.append(SplitPlan(split, classes, samples))
    return plans
