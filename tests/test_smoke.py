"""CI smoke: every recipe's tiny profile runs from data to result, through `reprolab reproduce`.

Each recipe runs one seed for one epoch of at most two steps: this proves the whole path works
(fetch, prepare, model, loss, optimizer, evaluation protocol, result, report) for every published
row. That learning happens is asserted elsewhere, once per paper, on full tiny schedules
(tests/tasks/). Recipes whose trainer is not built yet are strict xfails that name what is
missing, so the day they start to pass this file has to be updated.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reprolab.cli import main
from reprolab.registry import load_registry
from tests.conftest import REPO, registry_checkout

REGISTRY = load_registry(REPO)
NOT_BUILT: dict[str, str] = {}
SMOKE = ["optim.epochs=1", "+optim.max_steps_per_epoch=2"]


def _params() -> list:
    params = []
    for recipe in sorted(REGISTRY.recipes.values(), key=lambda r: r.id):
        marks = []
        if recipe.paper in NOT_BUILT:
            marks.append(pytest.mark.xfail(strict=True, reason=NOT_BUILT[recipe.paper]))
        params.append(pytest.param(recipe.id, id=recipe.id, marks=marks))
    return params


@pytest.fixture(scope="module")
def tiny_checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The registries in a scratch checkout, so fixtures, runs and results never touch the repo."""
    return registry_checkout(tmp_path_factory.mktemp("smoke") / "checkout")


@pytest.mark.parametrize("recipe_id", _params())
def test_recipe_runs_end_to_end_on_tiny_data(recipe_id: str, tiny_checkout: Path,
                                             monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("REPROLAB_ROOT", str(tiny_checkout))
    recipe = REGISTRY.recipes[recipe_id]
    code = main(["reproduce", recipe.paper, "--recipe", recipe_id, "--profile", "tiny",
                 "--seeds", "1", *SMOKE])
    assert code == 0, f"reprolab reproduce {recipe.paper} --recipe {recipe_id} --profile tiny failed"
    results = sorted((tiny_checkout / "results" / recipe_id).glob("*.json"))
    assert results, "no result written"
    result = json.loads(results[-1].read_text())
    assert result["status"] == "ok" and result["profile"] == "tiny"
    # The headline metric of every published row is measured. (The tiny profile may skip larger
    # cut-offs, e.g. Recall@1000 on a 24-image test split, which would be trivially 100.)
    headline = {next(iter(row.metrics)) for row in REGISTRY.published[recipe.paper]
                if row.recipe == recipe_id and row.metrics} or {REGISTRY.benchmarks[recipe.benchmark].metrics[0]}
    missing = headline - set(result["metrics"])
    assert not missing, f"headline metrics not measured: {sorted(missing)}"
    assert result["split"]["samples"] > 0 and result["split"]["fingerprint"].startswith("sha256:")
    assert (tiny_checkout / "reports" / "tiny" / f"{recipe.paper}.md").is_file()
