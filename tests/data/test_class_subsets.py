"""COCO without a class list (UBBR's COCO-60) as a derived split of the prepared COCO split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reprolab.data.class_subsets import read_class_list, split_without_classes
from reprolab.data.prepare.voc2012 import VOC_CLASSES
from reprolab.data.reader import open_split
from reprolab.errors import ConfigError
from tests.conftest import REPO, prepare_tiny, registry_checkout

LISTS = REPO / "reproductions" / "ubbr" / "class_lists"


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    root = registry_checkout(tmp_path_factory.mktemp("ubbr-data") / "checkout")
    prepare_tiny(root, "coco2017")
    return root


def test_the_coco_voc20_list_names_each_voc_class_once():
    held_out = read_class_list(LISTS / "coco-voc20.yaml")
    assert held_out.name == "coco-voc20" and len(held_out.coco) == 20 == len(set(held_out.coco))
    assert sorted(held_out.voc) == sorted(VOC_CLASSES)
    assert {"dining table", "motorcycle", "couch", "tv", "airplane", "potted plant"} <= set(held_out.coco)


def test_removing_a_class_drops_every_image_that_shows_it(checkout, tmp_path, monkeypatch):
    monkeypatch.setenv("REPROLAB_ROOT", str(checkout))
    source = open_split("coco2017", "train", "tiny", root=checkout)
    held_out = read_class_list(LISTS / "tiny-colour2.yaml")
    folder = tmp_path / "derived"
    split = split_without_classes(source, held_out, folder)
    names = [{o["category"] for o in json.loads(objects)} for objects in source.column("objects")]
    expected = [i for i, n in enumerate(names) if n and "car" not in n]
    assert 0 < len(split) == len(expected) < len(source)
    assert split.ids == [source.ids[i] for i in expected]
    assert all("car" not in o["category"] for objects in split.column("objects") for o in json.loads(objects))
    assert split[0].frames[0] == source[expected[0]].frames[0]  # the source's image bytes, not a copy
    info = json.loads((folder / "train.json").read_text())
    assert info["derived"]["held_out"] == ["car"] and info["derived"]["source"]["fingerprint"] == source.fingerprint
    assert info["derived"]["images_with_held_out"] == len(source) - len(expected) - names.count(set())

    written = (folder / "train.json").stat().st_mtime_ns
    assert split_without_classes(source, held_out, folder).fingerprint == split.fingerprint
    assert (folder / "train.json").stat().st_mtime_ns == written  # reused, not written again
    other = tmp_path / "bus.yaml"
    other.write_text("name: no-bus\nheld_out: [{coco: bus, voc: bus}]\n")
    again = split_without_classes(source, read_class_list(other), folder)  # a new list: written again
    assert again.fingerprint != split.fingerprint
    assert all("bus" not in o["category"] for objects in again.column("objects") for o in json.loads(objects))


def test_bad_class_lists_name_the_file(checkout, tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        read_class_list(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nheld_out: [car]\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        read_class_list(bad)
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("name: u\nheld_out: [{coco: zebra crossing, voc: none}]\n")
    source = open_split("coco2017", "train", "tiny", root=checkout)
    with pytest.raises(ConfigError, match="none of its classes"):
        split_without_classes(source, read_class_list(unknown), tmp_path / "d")
