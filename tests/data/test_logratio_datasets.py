"""MPII pose retrieval and LSUN room layout (log-ratio loss), tiny profile: fetch + prepare."""

from __future__ import annotations

import io
import json
import pickle

import numpy as np
import pytest

from reprolab.data.fixtures.lsun_room import SHADES
from reprolab.data.prepare import PrepareError
from reprolab.data.prepare.mpii_pose import load_arrays
from reprolab.data.reader import open_split
from reprolab.data.room_layout import ROOM_TYPES, layout_segmentation
from tests.data.test_cub200 import prepare_tiny


def npy(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data))


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("logratio")
    assert {s: r.samples for s, r in prepare_tiny(root, "mpii-pose").items()} == {"train": 48, "test": 48}
    assert {s: r.samples for s, r in prepare_tiny(root, "lsun-room").items()} == {"train": 48, "val": 48}
    return root


def test_pose_label_distances_travel_with_each_image(root):
    train = open_split("mpii-pose", "train", "tiny", root=root)
    test = open_split("mpii-pose", "test", "tiny", root=root)
    for i in range(len(train)):
        order, dist = npy(train[i].extra["pose_nn"]), npy(train[i].extra["pose_nn_dist"])
        assert len(order) == len(train) - 1 and i not in order
        assert np.all(np.diff(dist) >= 0)  # neighbours by rising pose distance
    full = np.stack([npy(test[i].extra["pose_dist"]) for i in range(len(test))])
    assert np.allclose(full, full.T) and np.allclose(np.diag(full), 0)
    roles = [test[i].extra["role"] for i in range(len(test))]
    assert roles == ["query"] * 16 + ["database"] * 32


def test_pose_is_visible_in_the_pixels(root):
    """Images with close poses look alike: the nearest pose neighbour is closer in pixels."""
    from tests.data.test_cub200 import rgb

    train = open_split("mpii-pose", "train", "tiny", root=root)
    pixels = np.stack([rgb(train[i]).mean(-1) > 200 for i in range(len(train))]).astype(float)
    nearer = 0
    for i in range(len(train)):
        order = npy(train[i].extra["pose_nn"])
        near, far = pixels[order[0]], pixels[order[-1]]
        nearer += np.abs(pixels[i] - near).sum() < np.abs(pixels[i] - far).sum()
    assert nearer / len(train) > 0.8


def test_a_pickle_that_runs_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "list_nn.pkl"
    path.write_bytes(pickle.dumps({"trn": Evil(), "val": np.zeros(2)}))
    with pytest.raises(PrepareError, match="only NumPy arrays"):
        load_arrays(path)


def test_lsun_room_types_and_corners(root):
    val = open_split("lsun-room", "val", "tiny", root=root)
    assert len(val.classes) == 11 and set(val.labels) == {0, 4, 5, 6}  # the card's room_types: 4
    for i in range(len(val)):
        points = np.array(json.loads(val[i].extra["points"]))
        assert points.shape == (ROOM_TYPES[val.labels[i]].corners, 2)  # the type's corner list
        assert (points >= 0).all() and (points <= 64).all()
        assert (val[i].extra["width"], val[i].extra["height"]) == (64, 64)


def test_lsun_room_layout_is_visible_in_the_pixels(root):
    """Every pixel's grey level names its surface: the picture shows the annotated layout."""
    from tests.data.test_cub200 import rgb

    train = open_split("lsun-room", "train", "tiny", root=root)
    for i in range(len(train)):
        extra = train[i].extra
        mask = layout_segmentation(train.labels[i], json.loads(extra["points"]), extra["width"],
                                   extra["height"], 64)
        grey = rgb(train[i]).astype(float).mean(-1)
        means = {s: grey[mask == s].mean() for s in np.unique(mask)}
        order = sorted(means, key=means.get)
        assert order == sorted(means, key=lambda s: SHADES[s])  # floor darkest ... ceiling lightest
