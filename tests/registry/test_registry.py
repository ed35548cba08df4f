"""Registry loading: every real file validates; bad files fail naming the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from reprolab.registry import (
    RegistryError,
    RegistryErrors,
    load_card,
    load_recipe,
    load_registry,
)
from tests.conftest import REPO


def test_every_registry_file_in_the_repository_loads_and_cross_checks():
    reg = load_registry(REPO)
    assert "sthv1" in reg.datasets
    assert "selfy" in reg.papers
    assert reg.recipes, "no recipes found"
    # every recipe resolves to a benchmark whose dataset has a card
    for recipe in reg.recipes.values():
        assert reg.benchmarks[recipe.benchmark].dataset in reg.datasets


def test_mini_registry_loads(mini_root: Path):
    reg = load_registry(mini_root)
    assert list(reg.recipes) == ["toyvid-toy-r18"]
    assert reg.recipe("toyvid-toy-r18").benchmark == "toyvid-val"
    assert [r.recipe for r in reg.published["toy"]] == ["toyvid-toy-r18", None]
    assert reg.datasets_of_recipe("toyvid-toy-r18") == ["toyvid"]


def test_recipe_composes_base_and_row(mini_root: Path):
    recipe = load_recipe(mini_root / "reproductions/toy/recipes/toyvid-toy-r18.yaml")
    assert recipe.id == "toyvid-toy-r18" and recipe.paper == "toy"
    # the row overrides one nested key and keeps its siblings from the base
    assert recipe.model == {"name": "tsm_resnet18", "segments": 8, "options": {"window": [5, 9, 9]}}
    assert recipe.optim["milestones"] == [30, 40]
    assert recipe.seeds == [0, 1, 2]


def test_base_files_are_not_recipes(mini_root: Path):
    assert "_base" not in load_registry(mini_root).recipes


def _assert_names(error: Exception, *fragments: str) -> None:
    text = str(error)
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in error:\n{text}"


def test_unknown_key_names_file_and_key(mini_root: Path):
    card = mini_root / "datasets/toyvid/card.yaml"
    card.write_text(card.read_text().replace("homepage:", "hompage:"))
    with pytest.raises(RegistryError) as caught:
        load_card(card)
    _assert_names(caught.value, str(card), "`hompage`", "unknown key", "`homepage`: required")


def test_wrong_type_names_file_key_and_value(mini_root: Path):
    card = mini_root / "datasets/toyvid/card.yaml"
    card.write_text(card.read_text().replace("size: 1024", "size: big"))
    with pytest.raises(RegistryError) as caught:
        load_card(card)
    _assert_names(caught.value, str(card), "`sources.0.size`", "'big'")


def test_bad_checksum_is_rejected(mini_root: Path):
    card = mini_root / "datasets/toyvid/card.yaml"
    card.write_text(card.read_text().replace('sha256: "' + "0" * 64, 'sha256: "' + "0" * 63))
    with pytest.raises(RegistryError) as caught:
        load_card(card)
    _assert_names(caught.value, "`sources.0.sha256`", "64 hex digits")


def test_source_without_checksum_must_say_why(mini_root: Path):
    card = mini_root / "datasets/toyvid/card.yaml"
    card.write_text(card.read_text().replace('    sha256: "' + "0" * 64 + '"\n', ""))
    with pytest.raises(RegistryError) as caught:
        load_card(card)
    _assert_names(caught.value, "toyvid.tar", "unpinned")


def test_recipe_typo_in_row_is_caught(mini_root: Path):
    row = mini_root / "reproductions/toy/recipes/toyvid-toy-r18.yaml"
    row.write_text(row.read_text() + "optimm: {lr: 0.1}\n")
    with pytest.raises(RegistryError) as caught:
        load_recipe(row)
    _assert_names(caught.value, str(row), "`optimm`")


def test_missing_base_is_named(mini_root: Path):
    row = mini_root / "reproductions/toy/recipes/toyvid-toy-r18.yaml"
    row.write_text(row.read_text().replace("_base.yaml", "_basee.yaml"))
    with pytest.raises(RegistryError) as caught:
        load_recipe(row)
    _assert_names(caught.value, "`base`", "_basee.yaml")


def test_base_cycle_is_detected(mini_root: Path):
    base = mini_root / "reproductions/toy/recipes/_base.yaml"
    base.write_text("base: toyvid-toy-r18.yaml\n" + base.read_text())
    with pytest.raises(RegistryError, match="cycle"):
        load_recipe(mini_root / "reproductions/toy/recipes/toyvid-toy-r18.yaml")


def test_invalid_yaml_is_reported_with_file(mini_root: Path):
    bench = mini_root / "benchmarks/toyvid-val.yaml"
    bench.write_text("id: [unclosed\n")
    with pytest.raises(RegistryErrors) as caught:
        load_registry(mini_root)
    _assert_names(caught.value, str(bench), "not valid YAML")


@pytest.mark.parametrize(
    ("relative", "old", "new", "fragments"),
    [
        ("reproductions/toy/recipes/toyvid-toy-r18.yaml", "benchmark: toyvid-val",
         "benchmark: toyvid-test", ["`benchmark`", "toyvid-test", "benchmarks/toyvid-test.yaml"]),
        ("benchmarks/toyvid-val.yaml", "dataset: toyvid", "dataset: toyvids",
         ["`dataset`", "datasets/toyvids/card.yaml"]),
        ("reproductions/toy/published.yaml", "recipe: toyvid-toy-r18", "recipe: toyvid-toy-r50",
         ["row 0", "`recipe`", "toyvid-toy-r50"]),
        ("reproductions/toy/published.yaml", "top1: 52.5", "top3: 52.5",
         ["row 0", "`metrics`", "top3"]),
    ],
)
def test_cross_references_are_checked(mini_root: Path, relative, old, new, fragments):
    path = mini_root / relative
    path.write_text(path.read_text().replace(old, new, 1))
    with pytest.raises(RegistryErrors) as caught:
        load_registry(mini_root)
    _assert_names(caught.value, str(path), *fragments)


def test_all_problems_are_reported_at_once(mini_root: Path):
    card = mini_root / "datasets/toyvid/card.yaml"
    card.write_text(card.read_text().replace("license:", "licence:"))
    paper = mini_root / "reproductions/toy/paper.yaml"
    paper.write_text(paper.read_text().replace('arxiv: "2101.00001"', 'arxiv: "21-01"'))
    with pytest.raises(RegistryErrors) as caught:
        load_registry(mini_root)
    files = {e.path for e in caught.value.errors}
    assert card in files and paper in files


def test_published_row_needs_numbers_or_a_reason(mini_root: Path):
    published = mini_root / "reproductions/toy/published.yaml"
    text = published.read_text()
    published.write_text(text.replace("  metrics: {top1: 60.0}\n", ""))
    with pytest.raises(RegistryErrors) as caught:
        load_registry(mini_root)
    _assert_names(caught.value, "row 1", "unavailable")
    published.write_text(text.replace("  metrics: {top1: 60.0}\n", "  unavailable: only plotted\n"))
    assert load_registry(mini_root).published["toy"][1].unavailable == "only plotted"
    published.write_text(text.replace("  metrics: {top1: 60.0}\n",
                                      "  metrics: {top1: 60.0}\n  unavailable: only plotted\n"))
    with pytest.raises(RegistryErrors, match="must not also give `metrics`"):
        load_registry(mini_root)


def test_benchmark_splits_must_exist_on_the_card(mini_root: Path):
    bench = mini_root / "benchmarks/toyvid-val.yaml"
    bench.write_text(bench.read_text().replace("eval_split: validation", "eval_split: val"))
    with pytest.raises(RegistryErrors) as caught:
        load_registry(mini_root)
    _assert_names(caught.value, str(bench), "`eval_split`", "'val' is not a split of dataset 'toyvid'",
                  "train, validation")
    bench.write_text(bench.read_text().replace("eval_split: val", "eval_split: [train, validation]"))
    assert load_registry(mini_root).benchmarks["toyvid-val"].eval_splits == ["train", "validation"]
