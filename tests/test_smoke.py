"""CI smoke: every recipe's tiny profile runs from data to report through `reprolab reproduce`, and
learns.

Each recipe trains its whole tiny schedule for one seed and must reach the level its `tiny_check`
states (a metric clearly above chance, or, for a baseline the paper says cannot solve the task,
at most its expected level). The chance level is what evaluation records beside the metrics (the
same metric on random outputs; `RunResult.chance`). Every check prints value, chance, threshold and
margin in the summary at the end of the pytest run. The thresholds hold at 1 and 2 threads and
seeds 0-2 (`nox -s learning-robustness -- -- tests/test_smoke.py`); each recipe's comment gives the
spread measured.

Recipes whose resolved tiny configuration is identical (the ResNet-50 and ResNet-101 rows of one
dataset, say, which the tiny profile runs on the same small network) share one run: same config,
same seed, same numbers. Recipes whose trainer is not built yet are strict xfails that name what
is missing, so the day they start to pass this file has to be updated.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from reprolab.cli import main
from reprolab.registry import load_registry
from tests.conftest import REPO, registry_checkout
from tests.learning import SUMMARY

REGISTRY = load_registry(REPO)
NOT_BUILT: dict[str, str] = {}
# Single recipes whose trainer raises NotBuiltError (the rest of their paper runs): strict xfails.
NOT_BUILT_RECIPES: dict[str, str] = {
    "ubbr-discovery-voc2007": "UBBR object discovery: the paper's box selection across images could "
                              "not be read (reproductions/ubbr/NOTES.md); the task raises NotBuiltError",
}
# Tiny profiles that do not reach their check yet: what was measured (seed 0, 2 threads) and what
# is missing. Not strict: a machine where one passes reports XPASS, and the entry should then go.
# Those in NOT_RUN_IN_CI are not trained by this test at all: each costs 1-2 CI minutes to end below
# its check, and its code path is the one of a row that does learn (the SELFY and MotionSqueeze 16f
# rows). `nox -s smoke` (reprolab reproduce --all --profile tiny) still trains them.
NOT_LEARNING_YET: dict[str, str] = {
    "hmdb51-ms-tsm-r50-16f": "MS-TSM 16f on the 96 training clips ended at 39.6 top-1 after its 8 "
                             "epochs (threshold 60); needs more clips or epochs, not measured yet",
    "ucf101-ms-tsm-r50-16f": "same setting as hmdb51-ms-tsm-r50-16f (96 clips, 16 frames, 8 epochs), "
                             "which ended at 39.6 top-1; not measured yet",
    "sthv1-tsm-r50-16f": "plain TSM 16f on the 240 sthv1 clips (32 frames) was at 31.2 top-1 after 17 "
                         "of its 20 epochs (threshold 60; TSM 8f reaches 100): needs a longer "
                         "schedule, not found yet",
    "sthv2-tsm-r50-16f": "the sthv1 TSM 16f setting on the same kind of fixture, which was at 31.2 top-1 "
                         "after 17 of 20 epochs; not measured on sthv2 yet",
    "kinetics400-ms-tsm-r50-16f": "same setting as hmdb51-ms-tsm-r50-16f (96 clips, 16 frames, 8 "
                                  "epochs), which ended at 39.6 top-1; not measured yet",
}
NOT_RUN_IN_CI = {"hmdb51-ms-tsm-r50-16f", "ucf101-ms-tsm-r50-16f", "sthv1-tsm-r50-16f", "sthv2-tsm-r50-16f",
                 "kinetics400-ms-tsm-r50-16f"}
_RUNS: dict[tuple[str, int], dict] = {}  # (tiny config hash, seed) -> result of the run


def _params() -> list:
    params = []
    for recipe in sorted(REGISTRY.recipes.values(), key=lambda r: r.id):
        # the seed a tiny run of the recipe takes by default (its tiny block's, else the recipe's)
        marks = [pytest.mark.slow, pytest.mark.learning(seed=recipe.tiny.get("seeds", recipe.seeds)[0])]
        if recipe.paper in NOT_BUILT:
            marks.append(pytest.mark.xfail(strict=True, reason=NOT_BUILT[recipe.paper]))
        elif recipe.id in NOT_BUILT_RECIPES:
            marks.append(pytest.mark.xfail(strict=True, reason=NOT_BUILT_RECIPES[recipe.id]))
        elif recipe.id in NOT_LEARNING_YET:
            marks.append(pytest.mark.xfail(strict=False, run=recipe.id not in NOT_RUN_IN_CI,
                                           reason=NOT_LEARNING_YET[recipe.id]))
        params.append(pytest.param(recipe.id, id=recipe.id, marks=marks))
    return params


@pytest.fixture(scope="module")
def tiny_checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The registries in a scratch checkout, so fixtures, runs and results never touch the repo."""
    return registry_checkout(tmp_path_factory.mktemp("smoke") / "checkout")


def _tiny_config_hash(recipe_id: str) -> str:
    from reprolab.config import resolved_config

    if REGISTRY.recipes[recipe_id].stages:  # a chain: every stage's spec, the recipe id left out
        from reprolab.pipeline.resolve import load_chain

        specs = load_chain(recipe_id, "tiny", [], None, REPO)[1]
        shared = {name: {k: v for k, v in spec.items() if k not in {"recipe", "title"}}
                  for name, spec in specs.items()}
        text = json.dumps(shared, sort_keys=True, default=str).replace(f"/{recipe_id}/", "/<recipe>/")
        return hashlib.sha256(text.encode()).hexdigest()
    config = resolved_config(recipe_id, "tiny", [], None)
    shared = {k: v for k, v in config.items() if k not in {"recipe", "title"}}
    return hashlib.sha256(json.dumps(shared, sort_keys=True, default=str).encode()).hexdigest()


def _run(recipe_id: str, seed: int, checkout: Path) -> dict:
    recipe = REGISTRY.recipes[recipe_id]
    key = (_tiny_config_hash(recipe_id), seed)
    if key not in _RUNS:
        code = main(["reproduce", recipe.paper, "--recipe", recipe_id, "--profile", "tiny",
                     "--seeds", "1", f"seeds=[{seed}]"])
        assert code == 0, f"reprolab reproduce {recipe.paper} --recipe {recipe_id} --profile tiny failed"
        results = sorted((checkout / "results" / recipe_id).glob("*.json"))
        assert results, "no result written"
        _RUNS[key] = {"recipe": recipe_id, **json.loads(results[-1].read_text())}
        assert (checkout / "reports" / "tiny" / f"{recipe.paper}.md").is_file()
    return _RUNS[key]


@pytest.mark.parametrize("recipe_id", _params())
def test_recipe_learns_on_tiny_data(recipe_id: str, tiny_checkout: Path, monkeypatch: pytest.MonkeyPatch,
                                    learning):
    monkeypatch.setenv("REPROLAB_ROOT", str(tiny_checkout))
    monkeypatch.setenv("REPROLAB_NO_PROGRESS", "1")
    recipe = REGISTRY.recipes[recipe_id]
    check = recipe.tiny_check
    assert check is not None, (f"reproductions/{recipe.paper}/recipes/{recipe_id}.yaml: no `tiny_check`; "
                               "state the level its tiny profile reaches (registry/models.py TinyCheck)")
    result = _run(recipe_id, learning.seed, tiny_checkout)
    assert result["status"] == "ok" and result["profile"] == "tiny"
    # The headline metric of every published row is measured. (The tiny profile may skip larger
    # cut-offs, e.g. Recall@1000 on a 24-image test split, which would be trivially 100.)
    headline = {next(iter(row.metrics)) for row in REGISTRY.published[recipe.paper]
                if row.recipe == recipe_id and row.metrics} or {REGISTRY.benchmarks[recipe.benchmark].metrics[0]}
    missing = headline - set(result["metrics"])
    assert not missing, f"headline metrics not measured: {sorted(missing)}"
    assert result["split"]["fingerprint"].startswith("sha256:")
    assert result["split"]["samples"] >= 40, (
        f"{result['split']['dataset']} {result['split']['name']}: {result['split']['samples']} evaluation "
        "samples are too few for a tiny number to mean anything (>= 40)")

    assert check.metric in result["metrics"], f"tiny_check.metric {check.metric!r} is not measured"
    value, chance = result["metrics"][check.metric], result["chance"][check.metric]
    op, threshold = (">=", check.at_least) if check.at_least is not None else ("<=", check.at_most)
    if check.learns:  # a threshold on the near side of chance would not show learning
        beyond = threshold > chance if op == ">=" else threshold < chance
        assert beyond, f"tiny_check {op} {threshold} is not beyond chance {chance:.4g}"
    margin = value - threshold if op == ">=" else threshold - value
    shared = "" if result["recipe"] == recipe_id else f"; the run of {result['recipe']}, same tiny config"
    why = "" if check.learns else f"; not expected to learn: {check.why}"
    SUMMARY.append(f"{recipe_id}: {check.metric} {value:.4g} {op} {threshold:.4g} (chance {chance:.4g}, "
                   f"margin {margin:+.4g}; {learning.threads} threads, seed {learning.seed}{shared}{why})")
    measure = learning.at_least if op == ">=" else learning.at_most
    measure(f"{check.metric} (chance {chance:.3g})", value, threshold)
