"""A detection split with some classes removed, as a derived split: UBBR's COCO without VOC.

The classes to remove are data: a YAML class list (e.g. reproductions/ubbr/class_lists/
coco-voc20.yaml) of `held_out: [{coco: <category name>, voc: <VOC class>}, ...]`. An image is
kept when it has at least one non-crowd object with a box and none of a held-out class, so that a held-out
object never appears in training, even unlabelled in the background (the paper removes the
classes; whether it also removed their images is not stated: ours, see reproductions/ubbr/NOTES.md).

The result is written once as a derived split (reprolab.data.derived) beside the source's
prepared data, `<prepared>/derived/<list name>/<split>`, referencing the source shards (no image
is copied). It is reused while the source fingerprint and the list's content are the same, and
written again otherwise; its fingerprint enters the run's data hashes like any split's.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from reprolab.data.derived import DerivedRows, write_derived_split
from reprolab.data.reader import PreparedSplit
from reprolab.errors import ConfigError

STEP = "remove-classes"


@dataclass(frozen=True)
class ClassList:
    name: str
    coco: tuple[str, ...]        # category names as the COCO annotation files spell them
    voc: tuple[str, ...]         # the same classes by their VOC names
    sha256: str                  # of the file's bytes: a changed list is a different split


def read_class_list(path: str | Path) -> ClassList:
    """The class list at `path`; ConfigError naming the file and key if it is malformed."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"class list {path} not found (data.held_out_classes names a file "
                          "relative to the checkout, e.g. reproductions/ubbr/class_lists/coco-voc20.yaml)")
    raw = path.read_bytes()
    try:
        data = yaml.safe_load(raw)
        entries = data["held_out"]
        coco = tuple(str(e["coco"]) for e in entries)
        voc = tuple(str(e["voc"]) for e in entries)
        name = str(data["name"])
    except (yaml.YAMLError, KeyError, TypeError) as error:
        raise ConfigError(f"{path}: expected `name:` and `held_out: [{{coco: ..., voc: ...}}, ...]` "
                          f"({type(error).__name__}: {error})") from None
    if not coco or len(set(coco)) != len(coco):
        raise ConfigError(f"{path}: `held_out` must list distinct classes (got {list(coco)})")
    return ClassList(name, coco, voc, hashlib.sha256(raw).hexdigest())


def objects_of(sample_objects: str) -> list[dict]:
    return json.loads(sample_objects) if sample_objects else []


def rows_without_classes(source: PreparedSplit, held_out: ClassList) -> DerivedRows:
    """The rows of `source` (a prepared COCO split) to keep, per the module docstring."""
    removed = set(held_out.coco)
    seen: set[str] = set()
    keep, dropped_images = [], 0
    for index, objects in enumerate(source.column("objects")):
        objects = objects_of(objects)
        names = {o["category"] for o in objects}
        seen |= names
        if names & removed:
            dropped_images += 1
        elif any(not o.get("iscrowd", 0) and o["bbox"][2] > 0 and o["bbox"][3] > 0 for o in objects):
            keep.append(index)
    never = sorted(removed - seen)
    if never and len(never) == len(removed):
        raise ConfigError(f"class list {held_out.name}: none of its classes ({never[:5]}...) is a category "
                          f"of {source.dataset} {source.split}; is it the right list for this dataset?")
    return DerivedRows(indices=keep, labels=[-1] * len(keep),
                       metrics={"images_kept": float(len(keep)), "images_with_held_out": float(dropped_images)})


def split_without_classes(source: PreparedSplit, held_out: ClassList, folder: Path) -> PreparedSplit:
    """`source` without the held-out classes' images, as a derived split in `folder` (written
    if absent or stale), opened."""
    folder = Path(folder)
    info_path = folder / f"{source.split}.json"
    if info_path.is_file():
        info = json.loads(info_path.read_text(encoding="utf-8"))
        derived = info.get("derived", {})
        if (derived.get("class_list_sha256") == held_out.sha256
                and derived.get("source", {}).get("fingerprint") == source.fingerprint):
            return PreparedSplit(folder, source.split, dataset=source.dataset, profile=source.profile)
    rows = rows_without_classes(source, held_out)
    write_derived_split(folder, source.split, source, rows, derived={
        "step": STEP, "class_list": held_out.name, "class_list_sha256": held_out.sha256,
        "held_out": list(held_out.coco), **rows.metrics})
    return PreparedSplit(folder, source.split, dataset=source.dataset, profile=source.profile)


__all__ = ["ClassList", "read_class_list", "rows_without_classes", "split_without_classes"]
