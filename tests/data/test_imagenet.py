"""ImageNet and ImageNet-C, tiny profile: real fetch + prepare (nested tars, devkit ids)."""

from __future__ import annotations

import pytest

from reprolab.data import corruptions
from reprolab.data.fixtures.imagenet import val_images
from reprolab.data.reader import open_split
from reprolab.registry import load_card
from tests.data.test_cub200 import REPO, prepare_tiny, rgb


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("imagenet")
    assert {s: r.samples for s, r in prepare_tiny(root, "imagenet").items()} == {"train": 24, "val": 12}
    assert {s: r.samples for s, r in prepare_tiny(root, "imagenet-c").items()} == {"seen": 360, "unseen": 96}
    return root


def test_val_labels_follow_the_devkit_not_the_id_order(root):
    val = open_split("imagenet", "val", "tiny", root=root)
    train = open_split("imagenet", "train", "tiny", root=root)
    assert val.classes == train.classes == sorted(val.classes)
    truth = [k for _, k, _ in val_images(load_card(REPO / "datasets" / "imagenet" / "card.yaml"), 0)]
    assert val.labels == truth  # the devkit's ILSVRC ids are a permutation of the wnid order
    assert train.ids[0].startswith(train.classes[0] + "_")
    assert all(train.ids[i].startswith(train.classes[train.labels[i]]) for i in range(len(train)))
    assert rgb(train[len(train) - 1]).shape[2] == 3  # read in place from its class tar
    assert val[0].extra["words"].startswith(("tench", "goldfish", "great", "tiger"))


def test_imagenet_c_covers_every_corruption_and_severity(root):
    seen = open_split("imagenet-c", "seen", "tiny", root=root)
    unseen = open_split("imagenet-c", "unseen", "tiny", root=root)
    for split, names in ((seen, corruptions.SEEN), (unseen, corruptions.UNSEEN)):
        cells = {(split[i].extra["corruption"], split[i].extra["severity"]) for i in range(len(split))}
        assert cells == {(n, s) for n in names for s in (1, 3, 5)}
        assert split.classes == ["n01440764", "n01443537", "n01484850", "n01491361"]
    assert set(seen.ids).isdisjoint(unseen.ids)
