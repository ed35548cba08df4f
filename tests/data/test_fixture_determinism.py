"""Every fixture of this module's datasets writes byte-identical archives for the same seed, and
exactly the files its card names (so the tiny profile's checksums are stable across machines)."""

from __future__ import annotations

import pytest

from reprolab.data.fixtures import write_mirror
from reprolab.registry import load_card
from tests.data.test_cub200 import REPO

DATASETS = ("cub200", "cars196", "sop", "inshop", "voc2012", "sbd", "voc2007", "coco2014",
            "coco2017", "coco-captions2014", "office31", "officehome", "visda2017", "imagenet",
            "imagenet-c", "cub200-c", "mpii-pose", "lsun-room", "hmdb51", "ucf101", "diving48",
            "kinetics400", "finegym", "web-videos-voc")


@pytest.mark.parametrize("dataset", DATASETS)
def test_same_seed_same_bytes(tmp_path, dataset):
    card = load_card(REPO / "datasets" / dataset / "card.yaml")
    first = write_mirror(card, tmp_path / "a")
    assert first == sorted(s.filename for s in card.sources)
    write_mirror(card, tmp_path / "b")
    assert (tmp_path / "a" / "SHA256SUMS").read_text() == (tmp_path / "b" / "SHA256SUMS").read_text()


def test_voc2012_and_sbd_fixtures_share_the_sbd_archive(tmp_path):
    for dataset in ("voc2012", "sbd"):
        write_mirror(load_card(REPO / "datasets" / dataset / "card.yaml"), tmp_path / dataset)
    sums = {d: dict(line.split("  ")[::-1] for line in (tmp_path / d / "SHA256SUMS").read_text().splitlines())
            for d in ("voc2012", "sbd")}
    assert sums["voc2012"]["benchmark.tgz"] == sums["sbd"]["benchmark.tgz"]


def test_bad_tiny_settings_name_the_card_and_key(tmp_path):
    card = load_card(REPO / "datasets" / "cub200" / "card.yaml")
    bad = card.model_copy(update={"tiny": {**card.tiny, "classes": 7}})
    with pytest.raises(ValueError, match=r"datasets/cub200/card.yaml key tiny.classes: 7"):
        write_mirror(bad, tmp_path)
