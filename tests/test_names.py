"""Typos in a name get "did you mean" (difflib), not a dump of every name; one helper everywhere."""

from __future__ import annotations

import pytest

from reprolab import cli
from reprolab.names import UnknownNameError, hint, unknown_name
from tests.pipeline.test_resolve import CHAIN

RECIPES = [f"sthv1-selfy-tsm-r50-{n}f" for n in (8, 16)] + [f"cub-proxy-anchor-{d}" for d in range(45)]


def test_close_names_are_suggested_and_long_lists_are_not_dumped():
    assert hint("sthv1-selfy-tsm-r50-8", RECIPES) == "did you mean sthv1-selfy-tsm-r50-8f, sthv1-selfy-tsm-r50-16f?"
    far = hint("xyz", RECIPES, "reprolab list recipes")
    assert far == "47 known; `reprolab list recipes` shows them"
    assert hint("xyz", ["teacher", "labels", "student"]) == "known: labels, student, teacher"
    assert hint("xyz", []) == "none exist yet"
    error = unknown_name("stage", "techer", ["teacher", "student"], where="recipe r: ")
    assert isinstance(error, KeyError) and str(error) == "recipe r: unknown stage 'techer'; did you mean teacher?"


@pytest.fixture
def root(mini_root):
    (mini_root / "reproductions/toy/recipes/toyvid-chain.yaml").write_text(CHAIN)
    return mini_root


@pytest.mark.parametrize("argv, message", [
    (["train", "toyvid-toy-r8"], "unknown recipe 'toyvid-toy-r8'; did you mean toyvid-toy-r18?"),
    (["config", "toyvid-chian"], "unknown recipe 'toyvid-chian'; did you mean toyvid-chain"),
    (["reproduce", "tyo"], "unknown paper 'tyo'; did you mean toy?"),
    (["reproduce", "toy", "--recipe", "toyvid-toy-r81"], "toy: unknown recipe 'toyvid-toy-r81'; did you mean toyvid-toy-r18"),
    (["report", "toyy"], "unknown paper 'toyy'; did you mean toy?"),
    (["data", "status", "toyvd"], "unknown dataset card 'toyvd'; did you mean toyvid?"),
    (["data", "fetch", "toyvd", "--profile", "tiny"], "unknown dataset card 'toyvd'; did you mean toyvid?"),
    (["run-stage", "toyvid-chain", "techer", "--profile", "tiny"],
     "recipe toyvid-chain: unknown stage 'techer'; did you mean teacher?"),
    (["run-stages", "toyvid-chain", "--from", "studnet", "--profile", "tiny"],
     "--from: recipe toyvid-chain: unknown stage 'studnet'; did you mean student?"),
    (["config", "toyvid-toy-r18", "model.nmae=x"], "no key `model.nmae` in the recipe (did you mean name?)"),
    (["config", "toyvid-toy-r18", "stages.x.optim.lr=1"], "stages"),
])
def test_cli_typos_exit_2_with_a_suggestion(root, capsys, argv, message):
    assert cli.main(argv) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") <= 2  # one message, no listing


def test_recipe_names_are_checked_by_the_catalogs(root, capsys):
    (root / "reproductions/toy/recipes/toyvid-chain.yaml").write_text(
        CHAIN.replace("labels: {infer: predicted-labels", "labels: {infer: predicted-label"))
    assert cli.main(["stages", "show", "toyvid-chain", "--profile", "tiny"]) == cli.EXIT_USAGE
    assert ("key `stages.labels.infer`: unknown inference step 'predicted-label'; did you mean "
            "predicted-labels?") in capsys.readouterr().err
    from reprolab.models import MODELS

    with pytest.raises(UnknownNameError, match="unknown model 'tsm_resnet1'; did you mean tsm_resnet18"):
        MODELS.get("tsm_resnet1")


def test_unknown_name_error_is_a_usage_error():
    assert UnknownNameError("x").exit_code == cli.EXIT_USAGE


@pytest.mark.parametrize("argv, message", [
    (["trian", "toyvid-toy-r18"], "invalid choice: 'trian'; did you mean train?"),
    (["list", "recipies"], "invalid choice: 'recipies'; did you mean recipes?"),
    (["train", "toyvid-toy-r18", "--profile", "tiyn"], "invalid choice: 'tiyn'; did you mean tiny?"),
])
def test_command_line_choices_get_a_suggestion(root, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == cli.EXIT_USAGE
    assert message in capsys.readouterr().err


def test_a_mistyped_corruption_gets_a_suggestion():
    import numpy as np

    from reprolab.data.corruptions import corrupt

    with pytest.raises(UnknownNameError, match="unknown corruption 'gausian_noise'; did you mean gaussian_noise"):
        corrupt(np.zeros((64, 64, 3), np.uint8), "gausian_noise", 1)
