"""`reprolab report --check`: each kind of inconsistency fails with exit 1 and names its file."""

from __future__ import annotations

from pathlib import Path

import pytest

from reprolab.cli import main

ALPHA = Path("reproductions") / "alpha"


def _check(capsys) -> tuple[int, str]:
    code = main(["report", "--check"])
    return code, capsys.readouterr().err


def _drop_extra_recipe(root: Path) -> None:
    (root / ALPHA / "recipes" / "alpha-extra.yaml").unlink()


def test_consistent_registry_passes(toy_root, capsys):
    # Rows with `recipe: null` (alpha row 6, all of beta) are allowed: they read "no recipe yet".
    _drop_extra_recipe(toy_root)
    assert main(["report", "--check"]) == 0
    assert "published tables and recipes agree: 2 papers, 10 published rows, 8 recipes" in capsys.readouterr().out


def test_recipe_without_published_row(toy_root, capsys):
    code, err = _check(capsys)
    assert code == 1
    assert f"{ALPHA / 'recipes' / 'alpha-extra.yaml'}: recipe 'alpha-extra' has no published row" in err
    assert "1 problem(s)" in err


def test_published_row_names_a_missing_recipe(toy_root, capsys):
    _drop_extra_recipe(toy_root)
    (toy_root / ALPHA / "recipes" / "alpha-notrun.yaml").unlink()
    code, err = _check(capsys)
    assert code == 1
    assert f"{ALPHA / 'published.yaml'}: row 5 (toy-val): recipe 'alpha-notrun' does not exist" in err


def test_number_without_source_key(toy_root, capsys):
    _drop_extra_recipe(toy_root)
    published = Path("reproductions") / "beta" / "published.yaml"
    (toy_root / published).write_text("- recipe: null\n  benchmark: toy-val\n  metrics: {top1: 33.3}\n  verified: false\n")
    code, err = _check(capsys)
    assert code == 1
    assert f"{published}: row 0: key `source`: required but missing" in err


@pytest.mark.parametrize("source", ["TODO", "???", "n/a"])
def test_number_with_placeholder_source(toy_root, capsys, source):
    _drop_extra_recipe(toy_root)
    published = Path("reproductions") / "beta" / "published.yaml"
    (toy_root / published).write_text(f"- recipe: null\n  benchmark: toy-val\n  metrics: {{top1: 33.3}}\n"
                         f"  source: '{source}'\n  verified: false\n")
    code, err = _check(capsys)
    assert code == 1
    assert f"{published}: row 0 (toy-val): numbers ['top1'] have no source" in err


def test_verified_row_must_cite_the_paper_and_benchmark_must_exist(toy_root, capsys):
    _drop_extra_recipe(toy_root)
    (toy_root / "reproductions" / "beta" / "published.yaml").write_text("- recipe: null\n  benchmark: nowhere\n  metrics: {top1: 1.0}\n"
                         "  source: a blog post\n  verified: true\n")
    code, err = _check(capsys)
    assert code == 1
    assert "row 0 (nowhere): `verified: true` but the source 'a blog post' does not cite the paper" in err
    assert "row 0 (nowhere): benchmark 'nowhere' does not exist" in err


def test_check_of_one_paper_ignores_the_others(toy_root, capsys):
    # alpha-extra (paper alpha) has no published row, but only beta is checked.
    assert main(["report", "--check", "beta"]) == 0
    assert main(["report", "--check", "alpha"]) == 1
