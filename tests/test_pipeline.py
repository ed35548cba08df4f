"""dvc.yaml, params.yaml and noxfile.py agree with the registries."""

from __future__ import annotations

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


def test_the_report_stage_writes_the_profile_of_its_runs_to_its_own_folder():
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    assert params["report_dir"] == "reports/tiny"  # tiny runs never rewrite reports/
    report = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["report"]
    assert report["cmd"] == "reprolab report --profile ${profile} --out ${report_dir}"


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


def test_params_pipelines_are_committed_as_the_command_writes_them_and_cover_every_paper(tmp_path):
    """pipelines/<recipe>/tiny/dvc.yaml of each `pipelines:` entry equals what `reprolab stages
    dvc <recipe> --profile tiny` writes now; with the root recipes they cover every paper that has recipes, and
    the datasets they read are fetched and prepared by dvc.yaml."""
    from reprolab.pipeline.dvc import dvc_plots, dvc_stages

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    reg = load_registry(REPO)
    covered = {reg.recipe(r).paper for r in [*params["recipes"], *params["pipelines"]]}
    with_recipes = {recipe.paper for recipe in reg.recipes.values()}
    assert covered == with_recipes, f"papers with no DVC pipeline: {sorted(with_recipes - covered)}"
    regenerate = "regenerate it: reprolab stages dvc {} --profile tiny"
    for recipe_id in params["pipelines"]:
        path = REPO / "pipelines" / recipe_id / "tiny" / "dvc.yaml"
        assert path.is_file(), f"{path.relative_to(REPO)} is missing; {regenerate.format(recipe_id)}"
        committed = yaml.safe_load(path.read_text())
        expected = {"stages": dvc_stages(recipe_id, "tiny", root=REPO),
                    "plots": dvc_plots(recipe_id, "tiny", root=REPO)}
        assert committed == expected, f"{path.relative_to(REPO)} is out of date; {regenerate.format(recipe_id)}"
        for stage in committed["stages"].values():
            for dep in stage.get("deps", []):
                if dep.startswith("datasets/"):
                    assert dep.split("/")[1] in params["datasets"], (
                        f"{path.relative_to(REPO)} reads {dep}: add {dep.split('/')[1]!r} to the "
                        "datasets of params.yaml")
