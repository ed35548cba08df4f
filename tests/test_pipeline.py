"""dvc.yaml, params.yaml and noxfile.py agree with the registries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from reprolab.registry import load_registry
from tests.conftest import REPO


def test_params_name_existing_recipes_papers_and_datasets():
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    reg = load_registry(REPO)
    assert params["profile"] == "tiny", "the committed default must run offline on fixtures"
    for dataset in params["datasets"]:
        assert dataset in reg.datasets, f"params.yaml datasets: no card {dataset!r}"
    for recipe_id, item in params["recipes"].items():
        recipe = reg.recipe(recipe_id)
        assert item["paper"] == recipe.paper, recipe_id
        assert item["dataset"] == reg.benchmarks[recipe.benchmark].dataset, recipe_id
        assert item["dataset"] in params["datasets"], f"{recipe_id} reads {item['dataset']}, not fetched"
        assert (REPO / "reproductions" / recipe.paper / "recipes" / "_base.yaml").is_file()


DVC = Path(sys.executable).parent / "dvc"


@pytest.mark.skipif(not DVC.exists(), reason="dvc is not installed next to this Python")
def test_dvc_expands_one_stage_per_dataset_and_recipe():
    done = subprocess.run([str(DVC), "stage", "list"], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "DVC_NO_ANALYTICS": "1"})
    assert done.returncode == 0, done.stderr
    names = {line.split()[0] for line in done.stdout.splitlines() if line.strip()}
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    expected = {"report"}
    expected |= {f"{stage}@{d}" for stage in ("fetch", "prepare") for d in params["datasets"]}
    expected |= {f"{stage}@{r}" for stage in ("train", "evaluate") for r in params["recipes"]}
    assert names == expected


def _history_file(recipe_id: str) -> str:
    return f"metrics/${{profile}}/{recipe_id}-history.json"


def _plots() -> dict[str, dict]:
    return {name: spec for entry in yaml.safe_load((REPO / "dvc.yaml").read_text())["plots"]
            for name, spec in entry.items()}


def test_dvc_plots_name_the_loss_and_the_primary_metric_of_each_recipe():
    # Without y fields DVC plots the history's last column (eval_samples, a constant).
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    reg = load_registry(REPO)
    assert _history_file("${key}") in dvc["stages"]["evaluate"]["do"]["cmd"]
    plots = _plots()
    for recipe_id in params["recipes"]:
        primary = f"eval_{reg.benchmarks[reg.recipe(recipe_id).benchmark].metrics[0]}"
        for field in ("loss", primary):  # one plot each: a loss near 1 and a top-1 near 50 need own axes
            assert plots.pop(f"{recipe_id}/{field}") == {"x": "epoch", "y": {_history_file(recipe_id): field}}
    assert not plots, f"dvc.yaml plots of no params.yaml recipe: {sorted(plots)}"


@pytest.mark.skipif(not DVC.exists(), reason="dvc is not installed next to this Python")
def test_dvc_plots_show_plots_those_fields_from_an_evaluate_history(tmp_path):
    from reprolab.engine.logs import plot_records

    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    subprocess.run([str(DVC), "init", "--no-scm", "-q"], cwd=tmp_path, check=True, env=env)
    for name in ("dvc.yaml", "params.yaml"):
        (tmp_path / name).write_text((REPO / name).read_text())
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    records = [{"epoch": 0, "split": "train", "loss": 1.4, "lr": 0.01, "epoch_time_s": 3.0},
               {"epoch": 1, "split": "train", "loss": 1.1, "lr": 0.01, "epoch_time_s": 3.1,
                "eval_top1": 45.0, "eval_top5": 100.0, "eval_samples": 48.0}]
    for recipe_id in params["recipes"]:
        history = tmp_path / _history_file(recipe_id).replace("${profile}", params["profile"])
        history.parent.mkdir(parents=True, exist_ok=True)
        history.write_text(json.dumps(plot_records(records)))  # what `evaluate --history-out` writes
    done = subprocess.run([str(DVC), "plots", "show", "--json"], cwd=tmp_path, capture_output=True,
                          text=True, env=env)
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert not shown.get("errors"), shown["errors"]
    for name, spec in _plots().items():
        (plot,) = shown["data"][name]
        (field,) = spec["y"].values()
        assert _y_fields(plot["content"]) == {field}, f"{name}: DVC plots other fields than dvc.yaml names"
        assert [v[field] for v in plot["content"]["data"]["values"]] == [r.get(field) for r in records]


def _y_fields(spec) -> set[str]:
    """The fields of every y encoding in a Vega-Lite spec (DVC's templates nest layers)."""
    if isinstance(spec, list):
        return set().union(*map(_y_fields, spec))
    if not isinstance(spec, dict):
        return set()
    found = {spec["y"]["field"]} if isinstance(spec.get("y"), dict) and "field" in spec["y"] else set()
    return found.union(*(_y_fields(v) for k, v in spec.items() if k != "data"))


def test_dvc_analytics_are_off():
    assert "analytics = false" in (REPO / ".dvc" / "config").read_text()


def test_nox_has_a_reproduce_session_per_paper():
    done = subprocess.run([sys.executable, "-m", "nox", "--list", "-f", str(REPO / "noxfile.py")],
                          cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    papers = sorted(load_registry(REPO).papers)
    for paper in papers:
        assert f"reproduce-{paper}" in done.stdout
    for session in ("tests", "lint", "smoke"):
        assert session in done.stdout
