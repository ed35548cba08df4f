"""Office-31, Office-Home and VisDA-2017, tiny profile: real fetch + prepare; domains as splits."""

from __future__ import annotations

import numpy as np
import pytest

from reprolab.data.reader import open_split
from tests.data.test_cub200 import prepare_tiny, rgb

EXPECTED = {
    "office31": {"amazon": 64, "dslr": 48, "webcam": 48},
    "officehome": {"art": 16, "clipart": 16, "product": 16, "real_world": 16},
    "visda2017": {"train": 48, "validation": 48},
}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("da")
    for dataset, counts in EXPECTED.items():
        assert {s: r.samples for s, r in prepare_tiny(root, dataset).items()} == counts
    return root


@pytest.mark.parametrize("dataset", sorted(EXPECTED))
def test_domains_share_classes_and_no_samples(root, dataset):
    splits = [open_split(dataset, s, "tiny", root=root) for s in EXPECTED[dataset]]
    assert all(s.classes == splits[0].classes for s in splits)
    assert len(splits[0].classes) == 4 and splits[0].classes == sorted(splits[0].classes)
    ids = [i for s in splits for i in s.ids]
    assert len(ids) == len(set(ids))
    for s in splits:
        assert set(s.labels) == {0, 1, 2, 3}


def test_office_home_keeps_the_real_world_folder(root):
    split = open_split("officehome", "real_world", "tiny", root=root)
    assert split.ids[0].startswith("real_world/Alarm_Clock/") and split[0].extra["path"] == "Alarm_Clock/00001.jpg"


def test_domains_look_different(root):
    """The domain gap is real: each domain has its own contrast (flat renders and product shots vs
    photos); tests/tasks/test_domain_adaptation.py checks that a source-only model suffers from it."""
    def background_spread(dataset, split):
        data = open_split(dataset, split, "tiny", root=root)
        return float(np.mean([rgb(data[i])[:4].std() for i in range(len(data))]))

    assert background_spread("visda2017", "train") < background_spread("visda2017", "validation")
    assert background_spread("office31", "amazon") < background_spread("office31", "dslr")
