"""LSUN room-layout segmentation (reprolab.data.room_layout): every type, semantic labels."""

from __future__ import annotations

import numpy as np
import pytest

from reprolab.data.fixtures.lsun_room import HIDDEN_SIDES, box_room
from reprolab.data.room_layout import ROOM_TYPES, SURFACES, layout_segmentation

FLOOR, FRONT, RIGHT, LEFT, CEILING = range(5)
W, H = 640, 480  # a 4:3 picture; the back wall of a full view spans x 200-440, y 150-330
# room type -> (hand-built `point` rows in the toolkit's order, {probe [x, y]: surface})
ROOMS = {
    0: ([[200, 150], [0, 0], [200, 330], [0, 480], [440, 330], [640, 480], [440, 150], [640, 0]],
        {(320, 240): FRONT, (320, 450): FLOOR, (320, 30): CEILING, (40, 240): LEFT, (600, 240): RIGHT}),
    1: ([[200, 330], [200, 0], [0, 480], [440, 330], [440, 0], [640, 480]],
        {(320, 200): FRONT, (320, 450): FLOOR, (50, 200): LEFT, (600, 200): RIGHT}),
    2: ([[200, 150], [0, 0], [200, 480], [440, 150], [640, 0], [440, 480]],
        {(320, 300): FRONT, (320, 40): CEILING, (50, 300): LEFT, (600, 300): RIGHT}),
    3: ([[440, 150], [0, 150], [440, 480], [640, 0]],
        {(200, 300): FRONT, (600, 300): RIGHT, (200, 50): CEILING}),
    4: ([[440, 330], [0, 330], [440, 0], [640, 480]],
        {(200, 150): FRONT, (600, 150): RIGHT, (200, 450): FLOOR}),
    5: ([[440, 150], [0, 150], [640, 0], [440, 330], [0, 330], [640, 480]],
        {(200, 240): FRONT, (600, 240): RIGHT, (200, 50): CEILING, (200, 450): FLOOR}),
    6: ([[0, 150], [640, 150], [0, 330], [640, 330]],
        {(320, 50): CEILING, (320, 240): FRONT, (320, 450): FLOOR}),
    7: ([[200, 0], [200, 480], [440, 0], [440, 480]],
        {(50, 240): LEFT, (320, 240): FRONT, (600, 240): RIGHT}),
    8: ([[0, 150], [640, 150]], {(320, 50): CEILING, (320, 300): FRONT}),
    9: ([[0, 330], [640, 330]], {(320, 150): FRONT, (320, 450): FLOOR}),
    10: ([[440, 0], [440, 480]], {(200, 240): FRONT, (600, 240): RIGHT}),
}


def _at(mask: np.ndarray, x: float, y: float) -> int:
    rows, cols = mask.shape
    return int(mask[int(y * rows / H), int(x * cols / W)])


@pytest.mark.parametrize("room_type", sorted(ROOMS))
def test_every_type_gives_its_surfaces_their_labels(room_type):
    points, probes = ROOMS[room_type]
    mask = layout_segmentation(room_type, points, W, H, 64)
    assert mask.shape == (64, 64) and mask.dtype == np.uint8
    # exactly the type's surfaces, each where the hand-built room has it
    assert set(np.unique(mask)) == set(ROOM_TYPES[room_type].regions) == set(probes.values())
    for (x, y), surface in probes.items():
        assert _at(mask, x, y) == surface, f"type {room_type} at ({x}, {y}): {SURFACES[_at(mask, x, y)]}"


def test_full_box_surfaces_have_the_expected_areas():
    mask = layout_segmentation(0, ROOMS[0][0], W, H, (48, 64))
    assert mask.shape == (48, 64)
    area = np.bincount(mask.ravel(), minlength=5) / mask.size
    # back wall 240 x 180 of 640 x 480; floor and ceiling trapezoids, side walls
    expected = np.array([(640 + 240) / 2 * 150, 240 * 180, (480 + 180) / 2 * 200,
                         (480 + 180) / 2 * 200, (640 + 240) / 2 * 150]) / (640 * 480)
    np.testing.assert_allclose(area, expected, atol=0.015)


@pytest.mark.parametrize("room_type", sorted(ROOM_TYPES))
def test_segmentation_matches_the_drawn_box_room(room_type):
    """The fixture's box rooms know every pixel's surface from their geometry; the segmentation
    of their corners (lines + components + labels) agrees with it all but on line pixels."""
    for seed in range(12):
        points, truth = box_room(np.random.default_rng([seed, room_type]), room_type, 64)
        mask = layout_segmentation(room_type, points, 64, 64, 64)
        assert (mask == truth).mean() > 0.99, (room_type, seed, HIDDEN_SIDES[room_type])
        assert set(np.unique(mask)) == set(ROOM_TYPES[room_type].regions)


def test_grid_scales_the_layout():
    fine = layout_segmentation(0, ROOMS[0][0], W, H, 128)
    coarse = layout_segmentation(0, ROOMS[0][0], W, H, 32)
    assert (fine[1::4, 1::4] == coarse).mean() > 0.97


def test_corners_outside_the_picture_are_clamped_as_the_toolkit_does():
    inside = layout_segmentation(8, [[0, 150], [640, 150]], W, H, 64)
    outside = layout_segmentation(8, [[-30, 150], [700, 150]], W, H, 64)
    np.testing.assert_array_equal(inside, outside)


def test_bad_annotations_are_refused():
    with pytest.raises(ValueError, match="room type 11"):
        layout_segmentation(11, [[0, 0], [1, 1]], W, H)
    with pytest.raises(ValueError, match="type 0 has 8 layout corners, the annotation lists 4"):
        layout_segmentation(0, ROOMS[7][0], W, H)
    with pytest.raises(ValueError, match="must be positive"):
        layout_segmentation(8, ROOMS[8][0], 0, H)
