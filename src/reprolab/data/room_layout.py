"""Semantic room-layout segmentation of an LSUN room-layout annotation, on any grid.

An annotation is a room type (0-10) and its layout corners ``point`` ([x, y] rows, in the order
the type defines), drawn on an image of ``width`` x ``height`` pixels. As the LSUN challenge
toolkit's getSegmentation.m does, the type's lines between corners are drawn (corners clamped to
the image) and the 4-connected components of the remaining pixels are the surfaces. The toolkit
numbers those components arbitrarily; here every component gets the semantic surface (floor,
front wall, right wall, left wall, ceiling: the toolkit's ``region{1..5}``) whose corner polygon
overlaps it best (IoU), so the same surface carries the same label in every image. A line pixel
takes the surface whose polygon holds its centre, else the nearest surface's (the toolkit
closes the lines with a disk of radius 2 instead).

A region's corners, as the toolkit lists them, go clockwise on screen (y down) around the
surface. Two consecutive corners are joined by their line when the type draws one, otherwise
by the image border, walked clockwise; a two-corner region (one side of a single line) is its
line and the border back. Checked on every type in tests/data/test_room_layout.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.draw import line as draw_line
from skimage.draw import polygon2mask

SURFACES = ("floor", "front", "right", "left", "ceiling")  # mask label k = toolkit region{k + 1}


@dataclass(frozen=True)
class RoomType:
    corners: int                                   # rows of `point`
    lines: frozenset[frozenset[int]]               # corner pairs joined by a layout edge (0-based)
    regions: dict[int, tuple[int, ...]]            # surface label -> its corners, clockwise (0-based)


def _room_type(corners: int, lines: str, **regions: str) -> RoomType:
    """Corners numbered from 1 as in the toolkit: lines "1-2 3-4", regions floor="4 3 5 6"."""
    pairs = frozenset(frozenset(int(c) - 1 for c in pair.split("-")) for pair in lines.split())
    cycles = {SURFACES.index(name): tuple(int(c) - 1 for c in cycle.split())
              for name, cycle in regions.items()}
    return RoomType(corners, pairs, cycles)


# The 11 LSUN layout types, from the challenge toolkit's RoomLayoutTypes.m (type(t + 1) there is
# type t here; its `lines` and `region{1..5}`, regions that a type lacks left out). In a full box
# view (type 0) corners 1, 3, 5, 7 are the back wall's top-left, bottom-left, bottom-right and
# top-right corners and 2, 4, 6, 8 the image-border ends of the edges leaving them (the toolkit
# does not say which screen side corner 1 is on; a third-party re-labelling of the real data,
# leVirve/lsun-room, puts corners 1-4 on the left, which makes every region list clockwise).
ROOM_TYPES: dict[int, RoomType] = {
    0: _room_type(8, "1-2 3-4 5-6 7-8 1-3 3-5 5-7 7-1", floor="4 3 5 6", front="3 1 7 5",
                  right="6 5 7 8", left="2 1 3 4", ceiling="8 7 1 2"),
    1: _room_type(6, "1-2 1-3 1-4 4-5 4-6", floor="3 1 4 6", front="5 4 1 2", right="6 4 5",
                  left="2 1 3"),                                  # no ceiling
    2: _room_type(6, "1-2 1-3 1-4 4-5 4-6", front="3 1 4 6", right="6 4 5", left="2 1 3",
                  ceiling="5 4 1 2"),                             # no floor
    3: _room_type(4, "1-2 1-3 1-4", front="2 1 3", right="3 1 4", ceiling="4 1 2"),
    4: _room_type(4, "1-2 1-3 1-4", floor="2 1 4", front="3 1 2", right="4 1 3"),
    5: _room_type(6, "1-2 1-3 1-4 4-5 4-6", floor="5 4 6", front="2 1 4 5", right="6 4 1 3",
                  ceiling="3 1 2"),                               # no left wall
    6: _room_type(4, "1-2 3-4", floor="3 4", front="3 1 2 4", ceiling="2 1"),
    7: _room_type(4, "1-2 3-4", front="2 1 3 4", right="4 3", left="1 2"),
    8: _room_type(2, "1-2", front="1 2", ceiling="2 1"),
    9: _room_type(2, "1-2", floor="1 2", front="2 1"),
    10: _room_type(2, "1-2", front="1 2", right="2 1"),
}


def _perimeter_position(point: np.ndarray, width: float, height: float) -> float:
    """Where a point (projected onto the nearest image side) lies along the border, clockwise
    from the top-left corner."""
    x, y = point
    side = int(np.argmin([y, width - x, height - y, x]))  # top, right, bottom, left
    return (x, width + y, 2 * width + height - x, 2 * (width + height) - y)[side]


def _border_walk(start: np.ndarray, end: np.ndarray, width: float, height: float) -> list[np.ndarray]:
    """The image corners met walking the border clockwise from `start` to `end`."""
    perimeter = 2 * (width + height)
    corners = [(0.0, (0.0, 0.0)), (width, (width, 0.0)), (width + height, (width, height)),
               (2 * width + height, (0.0, height))]
    t0 = _perimeter_position(start, width, height)
    span = (_perimeter_position(end, width, height) - t0) % perimeter
    ahead = sorted(((t - t0) % perimeter, xy) for t, xy in corners)
    return [np.asarray(xy) for offset, xy in ahead if 0 < offset < span]


def surface_polygon(points: np.ndarray, room: RoomType, surface: int, width: float,
                    height: float) -> np.ndarray:
    """(V, 2) [x, y] vertices of a surface: its corners, joined by lines or the border."""
    cycle = room.regions[surface]
    vertices = []
    for i, a in enumerate(cycle):
        b = cycle[(i + 1) % len(cycle)]
        vertices.append(points[a])
        by_line = frozenset((a, b)) in room.lines and not (len(cycle) == 2 and i == 1)
        if not by_line:
            vertices.extend(_border_walk(points[a], points[b], width, height))
    return np.asarray(vertices, dtype=np.float64)


def layout_segmentation(room_type: int, points: Sequence[Sequence[float]], width: float,
                        height: float, grid: int | tuple[int, int] = 64) -> np.ndarray:
    """(rows, cols) uint8 mask of surface labels (indices into SURFACES) on a grid over the image.

    ``points`` are the annotation's [x, y] corners in image pixels; ``grid`` is the mask size
    (an int for a square grid, or (rows, cols)); the image is scaled onto it.
    """
    if room_type not in ROOM_TYPES:
        raise ValueError(f"room type {room_type!r}: LSUN layouts have types 0-10")
    room = ROOM_TYPES[room_type]
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2) if len(points) else np.zeros((0, 2))
    if len(points) != room.corners:
        raise ValueError(f"room type {room_type} has {room.corners} layout corners, the annotation "
                         f"lists {len(points)}")
    if not (width > 0 and height > 0):
        raise ValueError(f"image size {width} x {height}: width and height must be positive")
    rows, cols = (grid, grid) if isinstance(grid, int) else grid
    # grid coordinates: the image spans [0, cols] x [0, rows], pixel (r, c) centred at (c + .5, r + .5)
    scaled = np.clip(points * (cols / width, rows / height), 0.0, (cols, rows))
    cells = np.minimum(scaled.astype(int), (cols - 1, rows - 1))

    drawn = np.zeros((rows, cols), bool)
    for a, b in (tuple(pair) for pair in room.lines):
        rr, cc = draw_line(cells[a, 1], cells[a, 0], cells[b, 1], cells[b, 0])
        drawn[rr, cc] = True
    components, count = ndimage.label(~drawn)  # 4-connected (scipy's default structure)

    surfaces = sorted(room.regions)
    # polygon2mask takes (row, col) vertices in pixel-centre units
    polygons = np.stack([
        polygon2mask((rows, cols), surface_polygon(scaled, room, s, cols, rows)[:, ::-1] - 0.5)
        for s in surfaces]).reshape(len(surfaces), -1).astype(np.float32)
    members = (components.reshape(1, -1) == np.arange(1, count + 1)[:, None]).astype(np.float32)
    overlap = members @ polygons.T
    iou = overlap / (members.sum(1, keepdims=True) + polygons.sum(1) - overlap)
    best = iou.argmax(1)
    matched = iou[np.arange(count), best] > 0
    label_of_component = np.full(count + 1, -1, np.int16)
    label_of_component[1:][matched] = np.asarray(surfaces)[best[matched]]
    mask = label_of_component[components].reshape(-1)
    if (mask < 0).all():
        raise ValueError(f"room type {room_type} layout {points.tolist()} on a {width} x {height} "
                         "image encloses no surface (degenerate corners)")
    # line pixels: the surface whose polygon holds the pixel centre, else the nearest surface
    on_line = np.flatnonzero(mask < 0)
    held = polygons[:, on_line]
    inside = held.any(0)
    mask[on_line[inside]] = np.asarray(surfaces)[held[:, inside].argmax(0)]
    mask = mask.reshape(rows, cols)
    _, (near_r, near_c) = ndimage.distance_transform_edt(mask < 0, return_indices=True)
    return mask[near_r, near_c].astype(np.uint8)
