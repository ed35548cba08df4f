"""Cars-196, Stanford Online Products and In-Shop, tiny profile: real fetch + prepare, then data."""

from __future__ import annotations

import pytest

from reprolab.data.reader import open_split
from tests.data.test_cub200 import box_colour_recall_at_1, prepare_tiny, rgb


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("metric")
    counts = {}
    for dataset in ("cars196", "sop", "inshop"):
        counts[dataset] = {s: r.samples for s, r in prepare_tiny(root, dataset).items()}
    assert counts == {"cars196": {"train": 40, "test": 40},
                      "sop": {"train": 40, "test": 40},
                      "inshop": {"train": 40, "query": 20, "gallery": 20}}
    return root


def test_cars196_halves_and_boxes(root):
    train = open_split("cars196", "train", "tiny", root=root)
    test = open_split("cars196", "test", "tiny", root=root)
    assert train.classes == test.classes and len(train.classes) == 8
    assert train.classes[0] == "Striped Barred Sedan 2000"
    assert set(train.labels) == {0, 1, 2, 3} and set(test.labels) == {4, 5, 6, 7}
    assert set(train.ids).isdisjoint(test.ids) and train.ids[0] == "000001"
    sample = test[0]
    x1, y1, x2, y2 = (sample.extra[k] for k in ("bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2"))
    height, width = rgb(sample).shape[:2]
    assert 1 <= x1 < x2 <= width and 1 <= y1 < y2 <= height


def test_sop_lists_and_products(root):
    train = open_split("sop", "train", "tiny", root=root)
    test = open_split("sop", "test", "tiny", root=root)
    assert train.classes == ["1", "2", "3", "4"]
    assert test.classes == ["5", "6", "7", "8"]
    assert set(train.ids).isdisjoint(test.ids)
    assert train[0].extra["path"].startswith("bicycle_final/") and train[0].id.endswith(".JPG")
    assert {test[i].extra["super_class_id"] for i in range(len(test))} == {2, 3}


def test_inshop_query_gallery_share_items(root):
    train = open_split("inshop", "train", "tiny", root=root)
    query = open_split("inshop", "query", "tiny", root=root)
    gallery = open_split("inshop", "gallery", "tiny", root=root)
    assert query.classes == gallery.classes and set(query.classes).isdisjoint(train.classes)
    assert sorted(set(query.labels)) == sorted(set(gallery.labels)) == list(range(4))
    assert len({*train.ids, *query.ids, *gallery.ids}) == 80
    assert train[0].id.startswith("img/WOMEN/Dresses/id_")


def test_held_out_cars_are_not_retrievable_by_colour(root):
    def box(s):
        x1, y1, x2, y2 = (s.extra[k] for k in ("bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2"))
        return x1 - 1, y1 - 1, x2 - x1 + 1, y2 - y1 + 1

    test = open_split("cars196", "test", "tiny", root=root)
    assert box_colour_recall_at_1(test, box) < 0.4  # chance 9/39: colour is not the class
