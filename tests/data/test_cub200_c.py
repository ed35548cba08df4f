"""Distorted CUB (URIE), tiny profile: fetch CUB's fixture, prepare through the corruption generator."""

from __future__ import annotations

import numpy as np
import pytest

from reprolab.data import corruptions
from reprolab.data.reader import open_split
from tests.data.test_cub200 import prepare_tiny, rgb

SPLITS = ("train", "test_clean", "test_seen", "test_unseen")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("cubc")
    assert {s: r.samples for s, r in prepare_tiny(root, "cub200-c").items()} == dict.fromkeys(SPLITS, 24)
    return root


def test_splits_follow_the_official_split_and_are_disjoint(root):
    data = {s: open_split("cub200-c", s, "tiny", root=root) for s in SPLITS}
    clean_ids = set(data["test_clean"].ids)
    assert set(data["train"].ids).isdisjoint(clean_ids)
    for split in ("test_seen", "test_unseen"):
        base = {i.split("@")[0] for i in data[split].ids}
        assert base == clean_ids and all("@" in i for i in data[split].ids)
        assert data[split].labels == data["test_clean"].labels
    assert all(len(set(data[s].labels)) == 8 for s in SPLITS)  # all classes in every split


def test_test_corruptions_are_seen_or_unseen_as_named(root):
    for split, names in (("test_seen", corruptions.SEEN), ("test_unseen", corruptions.UNSEEN)):
        data = open_split("cub200-c", split, "tiny", root=root)
        drawn = [(data[i].extra["corruption"], data[i].extra["severity"]) for i in range(len(data))]
        assert {n for n, _ in drawn} <= set(names) and len({n for n, _ in drawn}) > 1
        assert {s for _, s in drawn} <= set(corruptions.SEVERITIES)
        assert all(i.endswith(f"@{n}-{s}") for i, (n, s) in zip(data.ids, drawn, strict=True))


def test_distorted_images_differ_from_their_clean_crop(root):
    clean = open_split("cub200-c", "test_clean", "tiny", root=root)
    seen = open_split("cub200-c", "test_seen", "tiny", root=root)
    for i in range(len(clean)):
        a, b = rgb(clean[i]), rgb(seen[i])
        assert a.shape == b.shape == (64, 64, 3)
        assert np.abs(a - b).mean() > 1.0


def test_prepare_is_deterministic(root, tmp_path):
    again = tmp_path / "again"
    prepare_tiny(again, "cub200-c")
    for split in SPLITS:
        assert (open_split("cub200-c", split, "tiny", root=root).fingerprint
                == open_split("cub200-c", split, "tiny", root=again).fingerprint)
