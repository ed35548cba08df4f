"""Config resolution: base < row < tiny profile < command-line overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from reprolab.config import ConfigError, parse_override, resolve
from reprolab.registry import load_registry


@pytest.fixture
def recipe(mini_root: Path):
    return load_registry(mini_root).recipe("toyvid-toy-r18")


def test_full_profile_is_the_recipe(recipe):
    config = resolve(recipe)
    assert config["profile"] == "full"
    assert config["optim"] == {"name": "sgd", "lr": 0.01, "batch_size": 8, "epochs": 50, "milestones": [30, 40]}
    assert config["recipe"] == "toyvid-toy-r18" and config["benchmark"] == "toyvid-val"
    assert config["seeds"] == [0, 1, 2]
    assert config["overrides"] == []


def test_tiny_profile_merges_its_block(recipe):
    config = resolve(recipe, "tiny")
    assert config["profile"] == "tiny"
    assert config["optim"]["epochs"] == 2
    assert config["optim"]["lr"] == 0.01  # untouched siblings survive the merge


def test_overrides_come_last_and_are_typed(recipe):
    config = resolve(recipe, "tiny", ["optim.lr=0.1", "optim.milestones=[5, 8]",
                                      "model.options.window=[3,7,7]", "seeds=[4]"])
    assert config["optim"]["lr"] == 0.1 and isinstance(config["optim"]["lr"], float)
    assert config["optim"]["milestones"] == [5, 8]
    assert config["model"]["options"]["window"] == [3, 7, 7]
    assert config["seeds"] == [4]
    assert config["overrides"][0] == "optim.lr=0.1"


def test_resolution_does_not_mutate_the_recipe(recipe):
    resolve(recipe, "tiny", ["model.options.window=[1,1,1]"])
    assert recipe.model["options"]["window"] == [5, 9, 9]


def test_unknown_override_key_is_refused_and_named(recipe):
    with pytest.raises(ConfigError, match=r"no key `optim.lrr` in the recipe \(did you mean lr\?\)"):
        resolve(recipe, "full", ["optim.lrr=0.1"])
    with pytest.raises(ConfigError, match=r"no key `optim.zzz`.*known: batch_size, epochs, lr, milestones, name"):
        resolve(recipe, "full", ["optim.zzz=0.1"])


def test_plus_adds_a_new_key(recipe):
    config = resolve(recipe, "full", ["+optim.warmup_epochs=1", "+eval.clips.count=2"])
    assert config["optim"]["warmup_epochs"] == 1
    assert config["eval"] == {"clips": {"count": 2}}


@pytest.mark.parametrize("text", ["optim.lr", "title=x", "optim..lr=1", "optim.lr=[1,"])
def test_malformed_overrides(text):
    with pytest.raises(ConfigError, match="override"):
        parse_override(text)


def test_unknown_profile(recipe):
    with pytest.raises(ConfigError, match="profile 'huge'"):
        resolve(recipe, "huge")  # type: ignore[arg-type]


def test_tiny_block_may_only_touch_run_sections(mini_root: Path):
    base = mini_root / "reproductions/toy/recipes/_base.yaml"
    base.write_text(base.read_text() + "  benchmark: other\n")
    recipe = load_registry(mini_root).recipe("toyvid-toy-r18")
    with pytest.raises(ConfigError, match="tiny.benchmark"):
        resolve(recipe, "tiny")
