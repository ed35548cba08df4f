"""Every dataset card loads, matches its folder and the agreed ids; bad cards fail by file and key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from reprolab.registry import RegistryError, load_card

REPO = Path(__file__).resolve().parents[2]
CARDS = sorted((REPO / "datasets").glob("*/card.yaml"))

# The agreed ids (helpers/ids.md): one card each.
DATASETS = {
    "sthv1", "sthv2", "diving48", "finegym", "kinetics400", "hmdb51", "ucf101",
    "cub200", "cars196", "sop", "inshop", "mpii-pose", "lsun-room", "coco-captions2014",
    "voc2012", "sbd", "voc2007", "coco2014", "coco2017",
    "visda2017", "office31", "officehome",
    "imagenet", "imagenet-c", "cub200-c", "web-videos-voc",
}
WEIGHTS = {
    "weights-resnet50-imagenet", "weights-resnet18-imagenet", "weights-resnet34-imagenet",
    "weights-resnet101-imagenet", "weights-bninception-imagenet", "weights-resnet38-imagenet",
    "weights-vgg16-imagenet",
    "weights-urie-eccv2020",  # the released URIE enhancer (reproductions/urie)
}


@pytest.mark.parametrize("path", CARDS, ids=[p.parent.name for p in CARDS])
def test_card_loads_and_is_complete(path: Path):
    card = load_card(path)
    assert card.id == path.parent.name
    assert card.citation and card.license and card.homepage
    for source in card.sources:
        # identity is a checksum, or an explicit reason why none exists
        assert source.sha256 or source.md5 or source.unpinned
    if card.kind == "weights":
        assert card.modality == "weights" and card.id in WEIGHTS
        return
    assert card.id in DATASETS
    assert card.splits, "a dataset card lists its splits with expected counts"
    assert card.tiny, "a dataset card says how its tiny fixture is built"
    names = [s.filename for s in card.sources]
    assert len(names) == len(set(names)), "source file names must be unique"


def test_cards_cover_the_agreed_ids():
    found = {p.parent.name for p in CARDS}
    owned_elsewhere = {"sthv2"}  # written by the data-core helper; may land separately
    assert (DATASETS | WEIGHTS) - owned_elsewhere <= found
    assert found <= DATASETS | WEIGHTS, f"cards with ids not agreed: {found - DATASETS - WEIGHTS}"


def test_diving48_keeps_label_versions_apart():
    card = load_card(REPO / "datasets" / "diving48" / "card.yaml")
    assert {"v1_train", "v1_test", "v2_train", "v2_test"} <= set(card.splits)
    names = {s.filename for s in card.sources}
    assert {"Diving48_train.json", "Diving48_test.json",
            "Diving48_V2_train.json", "Diving48_V2_test.json"} <= names


def test_split_counts_add_up_where_the_card_claims_a_total():
    for name, parts in {"cub200": ("train", "test"), "cars196": ("train", "test"),
                        "sop": ("train", "test"), "inshop": ("train", "query", "gallery"),
                        "voc2007": ("trainval", "test"), "coco2014": ("train", "val"),
                        "office31": ("amazon", "dslr", "webcam"),
                        "officehome": ("art", "clipart", "product", "real_world")}.items():
        card = load_card(REPO / "datasets" / name / "card.yaml")
        assert sum(card.splits[p].samples for p in parts) == card.expect.samples, name


GOOD = {
    "id": "scratch",
    "name": "Scratch",
    "citation": "nobody",
    "license": "none",
    "homepage": "https://example.org",
    "sources": [{"filename": "a.tar", "md5": "0" * 32, "urls": ["https://example.org/a.tar"]}],
    "splits": {"train": {"samples": 3}},
}


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "datasets" / data["id"] / "card.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump(data))
    return path


def test_good_scratch_card_loads(tmp_path: Path):
    assert load_card(_write(tmp_path, GOOD)).splits["train"].samples == 3


@pytest.mark.parametrize(("change", "key", "words"), [
    ({"licence": "typo"}, "licence", "unknown key"),
    ({"splits": {"train": {"samples": "many"}}}, "splits.train.samples", "integer"),
    ({"sources": [{"filename": "a.tar", "md5": "abc123", "urls": ["https://example.org/a"]}]},
     "sources.0.md5", "32 hex digits"),
    ({"sources": [{"filename": "a.tar", "urls": ["https://example.org/a"]}]},
     "sources.0", "unpinned"),
    ({"sources": [{"filename": "a.tar", "unpinned": "none published", "manual": True}]},
     "", "manual:"),
])
def test_bad_card_fails_naming_file_and_key(tmp_path: Path, change: dict, key: str, words: str):
    path = _write(tmp_path, {**GOOD, **change})
    with pytest.raises(RegistryError) as caught:
        load_card(path)
    message = str(caught.value)
    assert str(path) in message
    assert f"`{key}`" in message or not key
    assert words in message


def test_card_id_must_match_its_folder(tmp_path: Path):
    path = _write(tmp_path, GOOD)
    moved = tmp_path / "datasets" / "other" / "card.yaml"
    moved.parent.mkdir()
    path.rename(moved)
    with pytest.raises(RegistryError, match="must equal its folder name"):
        load_card(moved)


@pytest.mark.parametrize("path", CARDS, ids=[p.parent.name for p in CARDS])
def test_every_dataset_has_a_fixture_and_a_preparer(path: Path):
    from reprolab.data.fixtures import fixture_module
    from reprolab.data.prepare import preparer_module

    card = load_card(path)
    if card.kind == "weights":
        pytest.skip("weights are fetched, not prepared; the tiny profile never loads them")
    assert callable(fixture_module(card.id).write_raw)
    module = preparer_module(card.id)
    assert callable(module.plan) and callable(module.encode)
