"""`reprolab evaluate` writes predictions.parquet with its task's schema (reprolab.predictions),
on one short tiny run per task kind, from the same outputs as the recorded metrics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from reprolab import predictions
from reprolab.cli import main
from reprolab.data import open_split
from tests.conftest import prepare_tiny, registry_checkout

pytestmark = pytest.mark.slow  # one short tiny run per task kind (about a minute on 2 cores)

SMOKE = ["optim.epochs=1", "+optim.max_steps_per_epoch=2", "optim.eval_every=0"]
CASES = {  # recipe: (dataset, overrides that keep the run short)
    "sthv1-ms-tsm-r18-8f": ("sthv1", []),
    "cub200-pa-bninception-512": ("cub200", []),
    "mpii-pose-logratio-r34-128": ("mpii-pose", ["model.backbone=resnet18", "data.train_geometry.canvas=40",
                                                 "data.train_geometry.crop=32", "data.eval_geometry.crop=32",
                                                 "model.mining.tuple_size=10"]),
}


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return registry_checkout(tmp_path_factory.mktemp("predictions") / "checkout")


def evaluated_run(root: Path, recipe: str, tmp_path: Path) -> tuple[Path, dict]:
    dataset, overrides = CASES[recipe]
    if not (root / "datasets" / dataset / "tiny" / "prepared").is_dir():
        prepare_tiny(root, dataset)
    run_dir = tmp_path / "run"
    assert main(["train", recipe, "--profile", "tiny", "--out", str(run_dir), "--device", "cpu",
                 "--no-progress", *SMOKE, *overrides]) == 0
    assert main(["evaluate", str(run_dir), "--metrics-out", str(tmp_path / "metrics.json"), "--device",
                 "cpu", "--no-progress"]) == 0
    return run_dir, json.loads((tmp_path / "metrics.json").read_text())


@pytest.mark.parametrize("recipe", list(CASES))
def test_evaluate_writes_per_sample_predictions(recipe, checkout, tmp_path, monkeypatch):
    monkeypatch.setenv("REPROLAB_ROOT", str(checkout))
    run_dir, metrics = evaluated_run(checkout, recipe, tmp_path)
    samples = predictions.read(run_dir / predictions.PREDICTIONS_FILE)
    table, meta = samples.table, samples.meta
    run = json.loads((run_dir / "run.json").read_text())
    assert meta["run_id"] == run["run_id"] and meta["recipe"] == recipe and meta["profile"] == "tiny"
    split = open_split(meta["dataset"], meta["split"], "tiny", root=checkout)
    assert meta["fingerprint"] == split.fingerprint and meta["dataset"] == CASES[recipe][0]
    if recipe.startswith("sthv1"):
        assert samples.kind == "classification"
        assert list(table.columns) == ["id", "target", "prediction", "confidence", "correct", "topk",
                                       "topk_scores"]
        assert table["id"].tolist() == split.ids and table["target"].tolist() == split.labels
        assert meta["classes"] == split.classes
        k = min(5, len(split.classes))
        assert table["topk"].map(len).eq(k).all() and table["topk_scores"].map(len).eq(k).all()
        assert 100 * table["correct"].mean() == pytest.approx(metrics["top1"])
    elif recipe.startswith("cub200"):  # every test image queries the others
        assert samples.kind == "retrieval"
        assert list(table.columns) == ["id", "retrieved", "distances", "label", "retrieved_labels", "correct"]
        assert table["id"].tolist() == split.ids and table["label"].tolist() == split.labels
        assert not any(i in r for i, r in zip(table["id"], table["retrieved"], strict=True))
        assert table["retrieved"].map(len).eq(10).all()
        # nearest first (to float rounding: after two steps the embeddings are still close together)
        assert all((np.diff(d) > -1e-6).all() for d in table["distances"])
        assert 100 * table["correct"].mean() == pytest.approx(metrics["recall@1"])
    else:  # pose queries search the database images; continuous labels
        assert samples.kind == "retrieval"
        assert list(table.columns) == ["id", "retrieved", "distances", "label_distances"]
        roles = split.column("role")
        queries = [i for i, r in zip(split.ids, roles, strict=True) if r == "query"]
        database = {i for i, r in zip(split.ids, roles, strict=True) if r == "database"}
        assert table["id"].tolist() == queries
        assert all(set(r) <= database for r in table["retrieved"])
        first = table["label_distances"].map(lambda d: d[0]).mean()
        assert first == pytest.approx(metrics["mean_label_distance@1"], rel=1e-5)
