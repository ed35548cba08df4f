"""Room-layout label distances (log-ratio paper, LSUN room layouts): 1 - mIoU of the layouts.

The paper reportedly measures how far apart two room layouts are by the mIoU of their layout
segmentations (UNVERIFIED: the paper text was not reachable and no code exists for this task;
reproductions/log-ratio/NOTES.md). Every sample's annotation (room type = the prepared ``label``,
corners ``points``, image ``width`` / ``height`` from the lsun-room manifest) is rendered once as
a semantic segmentation on a ``grid`` x ``grid`` mask (reprolab.data.room_layout), and

    distance(a, b) = 1 - mean over the surfaces present in a or b of IoU(a's surface, b's surface)

(a surface only one of them shows counts with IoU 0). All pairwise distances of the split are
computed once, with one matrix product per surface over one-hot masks.

Option (``data.label_space``): ``grid`` (default 64), the mask size.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np

from reprolab.data.label_spaces import LABEL_SPACES, LabelSpace, annotation_columns
from reprolab.data.room_layout import SURFACES, layout_segmentation

OPTIONS = {"grid"}
ROW_BLOCK = 512  # rows of the distance matrix per matrix product (bounds the temporaries)


def layout_distances(masks: np.ndarray) -> np.ndarray:
    """(N, N) float32 1 - mIoU between every pair of (N, ...) surface-label masks."""
    masks = np.asarray(masks).reshape(len(masks), -1)
    n = len(masks)
    iou_sum = np.zeros((n, n), np.float32)
    present = np.zeros((n, n), np.uint8)
    for surface in range(len(SURFACES)):
        hot = (masks == surface).astype(np.float32)  # pixel counts stay exact in float32 (< 2^24)
        area = hot.sum(1)
        if not area.any():
            continue
        for start in range(0, n, ROW_BLOCK):  # the upper triangle only: the matrix is symmetric
            rows, cols = slice(start, start + ROW_BLOCK), slice(start, n)
            inter = hot[rows] @ hot[cols].T
            union = area[rows, None] + area[None, cols] - inter
            shown = union > 0
            iou_sum[rows, cols] += np.divide(inter, union, out=np.zeros_like(inter), where=shown)
            present[rows, cols] += shown
    upper = np.triu(1.0 - iou_sum / np.maximum(present, 1))
    return upper + np.triu(upper, 1).T


@LABEL_SPACES.register(name="layout")
class LayoutLabels(LabelSpace):
    def __init__(self, split, options):
        super().__init__(split, options)
        unknown = set(self.options) - OPTIONS
        if unknown:
            raise ValueError(f"data.label_space (layout): unknown option(s) {sorted(unknown)}; "
                             f"expected {sorted(OPTIONS)}")
        self.grid = self.options.get("grid", 64)
        if not isinstance(self.grid, int) or self.grid < 2:
            raise ValueError(f"data.label_space.grid: {self.grid!r}; expected an integer >= 2 "
                             "(the layout mask size)")
        columns = annotation_columns(split, ("id", "label", "points", "width", "height"), dataset="lsun-room")
        self.masks = np.stack([self._render(*row) for row in zip(*columns.values(), strict=True)])
        self.distances = layout_distances(self.masks)  # (N, N); the masks are (N, grid, grid)

    def _render(self, sample_id: str, room_type: int, points, width, height) -> np.ndarray:
        try:
            points = json.loads(points) if isinstance(points, str) else points
            return layout_segmentation(int(room_type), points, float(width), float(height), self.grid)
        except ValueError as error:
            raise ValueError(f"{self.split!r}: sample {sample_id}: {error}") from None

    def distance_rows(self, indices: Sequence[int]) -> np.ndarray:
        return self.distances[np.asarray(indices, dtype=np.int64)]
