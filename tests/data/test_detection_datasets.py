"""VOC 2007, COCO 2014/2017 and COCO captions (Karpathy split), tiny profile: fetch + prepare."""

from __future__ import annotations

import json

import numpy as np
import pytest

from reprolab.data.reader import open_split
from tests.data.test_cub200 import prepare_tiny, rgb

EXPECTED = {
    "voc2007": {"trainval": 24, "test": 12},
    "coco2014": {"train": 24, "val": 12},
    "coco2017": {"train": 24, "val": 12},
    "coco-captions2014": {"train": 72, "val": 4, "test": 48},
}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("detection")
    for dataset, counts in EXPECTED.items():
        assert {s: r.samples for s, r in prepare_tiny(root, dataset).items()} == counts, dataset
    return root


def test_voc2007_boxes_sit_on_their_objects(root):
    data = open_split("voc2007", "trainval", "tiny", root=root)
    for i in range(len(data)):
        picture = rgb(data[i])
        for obj in json.loads(data[i].extra["objects"]):
            xmin, ymin, xmax, ymax = obj["bbox"]  # 1-based, inclusive
            assert 1 <= xmin < xmax <= picture.shape[1] and 1 <= ymin < ymax <= picture.shape[0]
        names = sorted({o["name"] for o in json.loads(data[i].extra["objects"])})
        assert sorted(data[i].extra["image_labels"].split()) == names


def test_coco_splits_years_and_boxes(root):
    for year in (2014, 2017):
        train = open_split(f"coco{year}", "train", "tiny", root=root)
        val = open_split(f"coco{year}", "val", "tiny", root=root)
        assert set(train.ids).isdisjoint(val.ids)
        name = train[0].extra["file_name"]
        assert name.startswith("COCO_train2014_") if year == 2014 else name == f"{int(train.ids[0]):012d}.jpg"
    sample = open_split("coco2014", "val", "tiny", root=root)[0]
    picture = rgb(sample)
    for obj in json.loads(sample.extra["objects"]):
        x, y, w, h = obj["bbox"]
        assert 0 <= x and 0 <= y and x + w <= picture.shape[1] and y + h <= picture.shape[0]
        inside = picture[int(y):int(y + h), int(x):int(x + w)].reshape(-1, 3)
        assert inside.std(0).mean() > 0  # the box holds more than flat background
        assert obj["category_id"] in range(1, 7) and obj["area"] <= w * h


def test_karpathy_split_and_captions(root):
    train = open_split("coco-captions2014", "train", "tiny", root=root)
    test = open_split("coco-captions2014", "test", "tiny", root=root)
    assert {train[i].extra["karpathy_split"] for i in range(len(train))} == {"train", "restval"}
    assert set(train.ids).isdisjoint(test.ids)
    captions = json.loads(test[0].extra["captions"])
    assert len(captions) == 5 and all(isinstance(c, str) and c for c in captions)
    assert np.asarray(rgb(test[0])).ndim == 3
