"""Continuous labels for the log-ratio task: how far apart two samples of a split are in label space.

The log-ratio loss and its dense triplet mining only need label distances: the anchor's other
samples by rising label distance (mining) and query-to-database label distances (evaluation).
Each task of the log-ratio paper defines them differently:

    pose     human poses (MPII): the authors' precomputed pose distances     (label_spaces.pose)
    layout   room layouts (LSUN): 1 - mIoU of the layout segmentations     (label_spaces.layout)
    caption  caption-aware retrieval (COCO): distance between the captions  (label_spaces.caption)

A recipe picks one with ``data: {label_space: {name: <name>, <options>}}``; each name is a class
registered in ``LABEL_SPACES`` by its module (imported at the end of this file).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from reprolab.catalog import Catalog

LABEL_SPACES: Catalog = Catalog("label space")


class LabelSpace:
    """Continuous labels of one prepared split, seen through the label distances between its samples.

    ``split`` is a prepared split (``reprolab.data.reader.open_split``): ``len(split)`` and
    ``split[i]`` with ``.id``, ``.label`` and ``.extra``. ``options`` are the recipe's
    ``data.label_space`` keys other than ``name``.
    """

    def __init__(self, split, options: dict[str, Any]):
        self.split, self.options = split, dict(options)

    def __len__(self) -> int:
        return len(self.split)

    def distance_rows(self, indices: Sequence[int]) -> np.ndarray:
        """(len(indices), len(split)) float32: label distance from each given sample to every
        sample of the split (0 to itself)."""
        raise NotImplementedError(f"{type(self).__name__} does not define distance_rows")

    def sorted_neighbours(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Every other sample of the split by rising label distance (ties by index) and the distances."""
        row = self.distance_rows([index])[0]
        order = np.argsort(row, kind="stable")
        order = order[order != index]
        return order, row[order].astype(np.float32)


def annotation_columns(split, names: Sequence[str], *, dataset: str) -> dict[str, list]:
    """The split's annotation columns (``id``, ``label`` or manifest columns), each a list over samples.

    A prepared split answers from its manifest (no image shards read: cheap at 100k images); any
    other sequence of samples (tests) through ``split[i]``. A missing column names ``dataset``.
    """
    if hasattr(split, "column"):
        try:
            return {name: split.column(name) for name in names}
        except KeyError as error:
            raise KeyError(f"{error.args[0]}; this label space needs a prepared {dataset} split "
                           f"(reprolab data prepare {dataset})") from None
    columns: dict[str, list] = {name: [] for name in names}
    for i in range(len(split)):
        sample = split[i]
        for name in names:
            if name in ("id", "label"):
                columns[name].append(getattr(sample, name))
            elif name in sample.extra:
                columns[name].append(sample.extra[name])
            else:
                raise KeyError(f"sample {getattr(sample, 'id', i)} has no {name!r} column; this label space "
                               f"needs a prepared {dataset} split (reprolab data prepare {dataset})")
    return columns


def check_list_order(sample, index: int, split) -> None:
    """Precomputed label files (pose) index images by position: the split must keep that order."""
    if int(sample.extra.get("list_index", index)) != index:
        raise ValueError(f"{split!r}: sample {index} has list_index {sample.extra['list_index']}; "
                         "the prepared split is not in the authors' order, run prepare again")


def build_label_space(spec: dict[str, Any] | str | None, split) -> LabelSpace:
    """The label space a recipe's ``data.label_space`` names (``{name: ..., <options>}``)."""
    options = dict(spec) if isinstance(spec, dict) else {"name": spec}
    name = options.pop("name", None)
    if name not in LABEL_SPACES:
        raise ValueError(f"data.label_space.name: {name!r} is not a label space; expected one of "
                         f"{', '.join(LABEL_SPACES.names())}")
    return LABEL_SPACES.get(name)(split, options)


def list_label_spaces() -> list[str]:
    return LABEL_SPACES.names()


# The label spaces register themselves (they import LabelSpace from this module, defined above).
from reprolab.data.label_spaces import caption, layout, pose  # noqa: E402, F401
