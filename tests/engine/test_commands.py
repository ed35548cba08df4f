"""`reprolab train` / `reprolab evaluate` end to end on the toy task, in a scratch checkout."""

import json

import pytest
import yaml

from reprolab import cli, predictions
from reprolab.results import ResultsStore
from reprolab.tasks import TASKS

TOY_RECIPE = """\
title: toy run for the command tests
task: toy-test
benchmark: toyvid-val
model: {dropout: 0.0}
data: {samples: 64}
optim: {name: sgd, lr: 0.1, momentum: 0.9, batch_size: 16, epochs: 2, schedule: constant}
seeds: [3]
tiny:
  optim: {epochs: 1}
"""


@pytest.fixture
def toy_root(mini_root, monkeypatch):
    from tests.engine.toy import ToyTask

    monkeypatch.setitem(TASKS._entries, "toy-test", ToyTask)
    monkeypatch.setenv("REPROLAB_NO_PROGRESS", "1")
    (mini_root / "reproductions" / "toy" / "recipes" / "toy-run.yaml").write_text(TOY_RECIPE)
    return mini_root


@pytest.mark.learning(seed=0)
def test_train_then_evaluate_writes_config_checkpoints_and_a_result(toy_root, tmp_path, learning):
    run_dir = tmp_path / "run"
    assert cli.main(["train", "toy-run", "--out", str(run_dir), "--seed", str(learning.seed),
                     "optim.lr=0.05"]) == 0
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["optim"]["lr"] == 0.05 and config["seed"] == learning.seed and config["profile"] == "full"
    assert config["benchmark_spec"]["eval_split"] == "validation"
    assert (run_dir / "checkpoints" / "final.pt").is_file()
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 2

    metrics_file = tmp_path / "metrics.json"
    assert cli.main(["evaluate", str(run_dir), "--metrics-out", str(metrics_file)]) == 0
    flat = json.loads(metrics_file.read_text())
    assert set(flat) == {"top1", "top2", "mean_class_acc"}
    learning.at_least("top1 after 2 epochs (chance 25)", flat["top1"], 60)
    (result,) = ResultsStore(toy_root / "results").runs("toy-run")
    run = json.loads((run_dir / "run.json").read_text())
    assert result.run_id == run["run_id"] and result.status == "ok" and result.seed == learning.seed
    assert result.metrics == flat
    # chance: the same metrics on random scores; 4 classes -> about 25 top-1 and 50 top-2
    assert set(result.chance) == set(flat)
    assert result.chance["top1"] == pytest.approx(25, abs=8) and result.chance["top2"] == pytest.approx(50, abs=10)
    assert result.split.name == "eval" and result.split.samples == 64
    assert result.provenance.world_size == 1 and result.provenance.device == "cpu"
    assert "torch" in result.provenance.packages
    assert [h["epoch"] for h in result.history] == [0, 1]
    # per-sample predictions beside the run, from the same outputs as the metrics
    samples = predictions.read(run_dir / predictions.PREDICTIONS_FILE)
    table = samples.table
    assert samples.kind == "classification" and len(table) == 64
    assert list(table.columns) == ["id", "target", "prediction", "confidence", "correct", "topk", "topk_scores"]
    assert 100 * table["correct"].mean() == pytest.approx(flat["top1"])
    assert all(len(k) == 4 and k[0] == p for k, p in zip(table["topk"], table["prediction"], strict=True))
    assert table["topk_scores"].map(sum).to_numpy() == pytest.approx(1.0, abs=1e-5)  # k = all 4 classes
    assert (table["confidence"] == table["topk_scores"].map(lambda s: s[0])).all()
    assert samples.meta["run_id"] == run["run_id"] and samples.meta["split"] == "eval"
    assert samples.meta["fingerprint"] == "toy-fingerprint" and samples.meta["classes"] == ["a", "b", "c", "d"]


def test_existing_run_dir_needs_resume_and_resume_needs_the_same_config(toy_root, tmp_path):
    run_dir = tmp_path / "run"
    assert cli.main(["train", "toy-run", "--profile", "tiny", "--out", str(run_dir)]) == 0
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["seed"] == 3  # the recipe's first seed
    assert cli.main(["train", "toy-run", "--profile", "tiny", "--out", str(run_dir)]) == cli.EXIT_USAGE
    assert cli.main(["train", "toy-run", "--profile", "tiny", "--out", str(run_dir), "--resume",
                     "optim.lr=0.5"]) == cli.EXIT_USAGE
    assert cli.main(["train", "toy-run", "--profile", "tiny", "--out", str(run_dir), "--resume"]) == 0


def test_a_run_that_raises_records_a_failed_result_and_exits_1(toy_root, tmp_path, capsys):
    run_dir = tmp_path / "run"
    code = cli.main(["train", "toy-run", "--out", str(run_dir), "+model.fail_at_call=3"])
    assert code == cli.EXIT_FAILED
    (result,) = ResultsStore(toy_root / "results").runs("toy-run")
    assert result.status == "failed" and "simulated crash" in result.error
    assert "--resume" in capsys.readouterr().err
    # evaluating an unfinished run fails the same way, naming what to do
    assert cli.main(["evaluate", str(run_dir)]) == cli.EXIT_FAILED
    (result,) = ResultsStore(toy_root / "results").runs("toy-run")
    assert "training did not finish" in result.error


def test_missing_data_exits_4_and_names_the_fetch_command(mini_root, tmp_path, capsys):
    (mini_root / "reproductions" / "toy" / "recipes" / "toyvid-video.yaml").write_text(
        "title: video task on unprepared data\ntask: video-classification\nbenchmark: toyvid-val\n"
        "model: {name: tsm_resnet18, segments: 8, pretrained: none}\n"
        "optim: {name: sgd, lr: 0.01, batch_size: 2, epochs: 1}\n"
    )
    code = cli.main(["train", "toyvid-video", "--profile", "tiny", "--out", str(tmp_path / "r")])
    assert code == cli.EXIT_MISSING_DATA
    assert "reprolab data fetch toyvid --profile tiny" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_evaluating_a_folder_that_is_not_a_run_is_a_usage_error(toy_root, tmp_path, capsys):
    assert cli.main(["evaluate", str(tmp_path / "no-such-run")]) == cli.EXIT_USAGE
    assert "not a run directory" in capsys.readouterr().err
    assert not (toy_root / "results").exists() or not any((toy_root / "results").rglob("*.json"))
