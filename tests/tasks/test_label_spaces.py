"""The label-space interface of the log-ratio task (reprolab.data.label_spaces)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from reprolab.data.label_spaces import LabelSpace, build_label_space


class OneDimensional(LabelSpace):
    """Labels on a line: |y_a - y_b|."""

    def distance_rows(self, indices):
        values = np.array([s.extra["y"] for s in self.split], dtype=np.float32)
        return np.abs(values[list(indices)][:, None] - values[None, :])


def test_sorted_neighbours_leave_out_the_anchor_and_break_ties_by_index():
    split = [SimpleNamespace(extra={"y": y}) for y in (0.0, 2.0, 1.0, 3.0, 1.0)]
    neighbours, distances = OneDimensional(split, {}).sorted_neighbours(2)
    assert neighbours.tolist() == [4, 0, 1, 3]  # 4 ties with nothing at 0; 0 and 1 tie at 1
    np.testing.assert_allclose(distances, [0.0, 1.0, 1.0, 2.0])


def test_build_label_space_names_the_choices():
    with pytest.raises(ValueError, match=r"data.label_space.name: 'height'.*caption, layout, pose"):
        build_label_space({"name": "height"}, [])


def test_options_reach_the_label_space_without_the_name():
    space = build_label_space({"name": "pose", "scale": 2}, [])
    assert type(space).__name__ == "PoseLabels" and space.options == {"scale": 2}
