"""Distorted CUB (URIE), tiny profile: fetch CUB's fixture, prepare through the corruption generator."""

from __future__ import annotations

import numpy as np
import pytest

from reprolab.data import corruptions
from reprolab.data.reader import open_split
from tests.data.test_cub200 import prepare_tiny, rgb

SPLITS = ("train", "train_distorted", "test_clean", "test_seen", "test_unseen")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("cubc")
    counts = {s: r.samples for s, r in prepare_tiny(root, "cub200-c").items()}
    assert counts == {**dict.fromkeys(SPLITS, 24), "train_distorted": 24 * 15 * 5}
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
    pool = data["train_distorted"]
    cells = {(pool[i].extra["corruption"], pool[i].extra["severity"]) for i in range(len(pool))}
    assert cells == {(n, s) for n in corruptions.SEEN for s in corruptions.SEVERITIES}
    assert {i.split("@")[0] for i in pool.ids} == set(data["train"].ids)


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
    from reprolab.data.fetch import fetch_dataset
    from reprolab.data.prepare import prepare_dataset
    from tests.data.conftest import card_of, make_checkout

    again = make_checkout(tmp_path / "again", ("cub200-c",))
    card = card_of(again, "cub200-c")
    fetch_dataset(card, "tiny", root=again, progress=False)
    prepare_dataset(card, "tiny", root=again, workers=1, progress=False, splits=["test_seen", "test_unseen"])
    for split in ("test_seen", "test_unseen"):
        assert (open_split("cub200-c", split, "tiny", root=root).fingerprint
                == open_split("cub200-c", split, "tiny", root=again).fingerprint)
