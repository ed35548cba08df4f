"""Stage specs: precedence, per-stage overrides, isolation between stages, and the DVC stages."""

from __future__ import annotations

import pytest
import yaml

from reprolab import cli
from reprolab.config import ConfigError
from reprolab.pipeline.dvc import dvc_stages, write_dvc_yaml
from reprolab.pipeline.resolve import load_chain, spec_hash

CHAIN = """\
base: _base.yaml
title: A toy chain
benchmark: toyvid-val
stages:
  teacher: {}
  labels: {infer: predicted-labels, from: teacher, tiny: {options: {min_score: 0.2}}}
  student:
    data: {train_from: labels}
    init_from: teacher
    optim: {lr: 0.001, epochs: 10}
    tiny: {optim: {epochs: 3}}
"""


@pytest.fixture
def chain_root(mini_root):
    (mini_root / "reproductions/toy/recipes/toyvid-chain.yaml").write_text(CHAIN)
    return mini_root


def specs(profile="tiny", *overrides, seed=None):
    return load_chain("toyvid-chain", profile, list(overrides), seed)[1]


def test_precedence_recipe_tiny_stage_stage_tiny_then_overrides(chain_root):
    tiny = specs("tiny", "optim.milestones=[1]")
    assert (tiny["teacher"]["optim"]["lr"], tiny["teacher"]["optim"]["epochs"]) == (0.01, 2)
    assert (tiny["student"]["optim"]["lr"], tiny["student"]["optim"]["epochs"]) == (0.001, 3)
    assert tiny["teacher"]["optim"]["milestones"] == tiny["student"]["optim"]["milestones"] == [1]
    assert tiny["student"]["model"]["name"] == "tsm_resnet18" and tiny["student"]["task"] == "video-classification"
    assert tiny["labels"]["stage"]["options"] == {"min_score": 0.2}
    # the command line wins over the recipe's tiny options
    assert specs("tiny", "stages.labels.options.min_score=0.5")["labels"]["stage"]["options"] == {"min_score": 0.5}
    full = specs("full")
    assert full["student"]["optim"]["epochs"] == 10
    assert full["labels"]["stage"]["options"] == {"min_score": 0.0}  # the step's default, recorded
    assert [s["seed"] for s in full.values()] == [0, 0, 0]
    assert specs("full", seed=2)["student"]["seed"] == 2
    assert all(s["optim"]["lr"] == 0.5 for s in (v for k, v in specs("tiny", "optim.lr=0.5").items()
                                                 if k != "labels"))


def test_a_stage_reads_earlier_outputs_by_path_under_the_checkout(chain_root):
    tiny = specs("tiny")
    assert tiny["labels"]["stage"]["split_name"] == "train"  # the benchmark's training split
    assert tiny["student"]["data"]["train_split"] == "runs/toyvid-chain/tiny/stages/labels/split/train"
    assert "train_from" not in tiny["student"]["data"]
    assert tiny["student"]["init_from"] == {
        "stage": "teacher", "checkpoint": "runs/toyvid-chain/tiny/stages/teacher/run/checkpoints/final.pt"}
    assert tiny["student"]["stage"]["final"] and not tiny["teacher"]["stage"]["final"]
    assert "init_from" not in tiny["teacher"] and tiny["teacher"]["stage"]["inputs"] == []


def test_a_stage_override_changes_that_stage_spec_only(chain_root):
    base = {name: spec_hash(spec) for name, spec in specs("tiny").items()}
    options = {name: spec_hash(spec) for name, spec in
               specs("tiny", "stages.labels.options.min_score=0.4").items()}
    assert [name for name in base if base[name] != options[name]] == ["labels"]
    student = specs("tiny", "stages.student.optim.lr=0.3")
    assert student["student"]["optim"]["lr"] == 0.3 and student["teacher"]["optim"]["lr"] == 0.01
    assert spec_hash(student["teacher"]) == base["teacher"]


@pytest.mark.parametrize("override, message", [
    ("stages.nobody.optim.lr=1", "no stage 'nobody'"),
    ("stages.labels.options.min_scor=1", "unknown option"),
    ("stages.student.optim.lrr=1", "no key `optim.lrr`"),
    ("stages.student=1", "expected stages.<stage>.<key>=value"),
    ("stages.student.init_from=labels", "is an inference stage"),
])
def test_bad_stage_overrides_name_the_override(chain_root, override, message):
    with pytest.raises(ConfigError, match=message):
        specs("tiny", override)


def test_dvc_stages_depend_on_their_spec_data_and_inputs_only(chain_root):
    stages = dvc_stages("toyvid-chain", "tiny", ["optim.epochs=1", "stages.labels.options.min_score=0.4"])
    assert list(stages) == ["resolve", "teacher", "labels", "student"]
    resolve = stages["resolve"]
    assert resolve["always_changed"] and resolve["wdir"] == "../../.."
    assert resolve["cmd"] == ("reprolab stages resolve toyvid-chain --profile tiny optim.epochs=1 "
                              "stages.labels.options.min_score=0.4")
    assert [next(iter(o)) for o in resolve["outs"]] == [
        f"runs/toyvid-chain/tiny/specs/{s}.yaml" for s in ("teacher", "labels", "student")]
    # a stage's command carries the overrides of the stages it reads, not of later ones
    assert stages["teacher"]["cmd"] == ("reprolab run-stage toyvid-chain teacher --profile tiny "
                                        "--no-progress optim.epochs=1")
    assert stages["labels"]["cmd"].endswith("optim.epochs=1 stages.labels.options.min_score=0.4")
    assert stages["student"]["cmd"].endswith("optim.epochs=1 stages.labels.options.min_score=0.4")
    assert stages["teacher"]["deps"] == ["runs/toyvid-chain/tiny/specs/teacher.yaml",
                                         "datasets/toyvid/tiny/prepared"]
    assert stages["student"]["deps"][2:] == ["runs/toyvid-chain/tiny/stages/labels",
                                             "runs/toyvid-chain/tiny/stages/teacher"]
    assert stages["labels"]["outs"] == [{"runs/toyvid-chain/tiny/stages/labels": {"cache": False}}]
    assert stages["labels"]["metrics"] == [{"metrics/tiny/toyvid-chain/labels.json": {"cache": False}}]

    path = write_dvc_yaml("toyvid-chain", "tiny", ["optim.epochs=1"])
    assert path == chain_root / "pipelines/toyvid-chain/tiny/dvc.yaml"
    assert path.read_text().startswith("# Generated by `reprolab stages dvc toyvid-chain --profile tiny")
    written = yaml.safe_load(path.read_text())
    assert list(written["stages"]) == list(stages)
    # `dvc plots show`: each task stage's loss and primary metric, by name (not the last column)
    history = "../../../runs/toyvid-chain/tiny/stages/{}/run/history.json"
    assert written["plots"] == [{f"{stage}/{field}": {"x": "epoch", "y": {history.format(stage): field}}}
                                for stage in ("teacher", "student") for field in ("loss", "eval_top1")]
    never_evaluated = yaml.safe_load(write_dvc_yaml("toyvid-chain", "tiny", ["+optim.eval_every=0"]).read_text())
    assert [next(iter(p)) for p in never_evaluated["plots"]] == ["teacher/loss", "student/loss"]


def test_show_and_a_stage_whose_inputs_have_not_run(chain_root, capsys):
    assert cli.main(["stages", "show", "toyvid-chain", "--profile", "tiny"]) == 0
    shown = capsys.readouterr().out
    assert shown.count("not run") == 3 and "predicted-labels" in shown
    assert cli.main(["run-stage", "toyvid-chain", "student", "--profile", "tiny"]) == cli.EXIT_MISSING_DATA
    error = capsys.readouterr().err
    assert "reads stage 'teacher', which has not run" in error
    assert "reprolab run-stage toyvid-chain teacher --profile tiny" in error
    assert cli.main(["run-stage", "toyvid-chain", "nobody", "--profile", "tiny"]) == cli.EXIT_USAGE
    assert cli.main(["stages", "resolve", "toyvid-chain", "--profile", "tiny"]) == 0
    assert (chain_root / "runs/toyvid-chain/tiny/specs/student.yaml").is_file()


def test_reproduce_runs_a_chain_with_run_stages(chain_root, monkeypatch):
    from reprolab.cli import reproduce

    calls = []
    monkeypatch.setattr(reproduce, "_cli", lambda *argv: calls.append(argv) or 0)
    assert cli.main(["reproduce", "toy", "--recipe", "toyvid-chain", "--profile", "tiny",
                     "--seeds", "1", "optim.epochs=1"]) == 0
    assert ("run-stages", "toyvid-chain", "--profile", "tiny", "--seed", "0", "optim.epochs=1") in calls
    assert not any(call[0] in ("train", "evaluate") for call in calls)
    assert calls[-1] == ("report", "toy", "--profile", "tiny")  # tiny reports go to reports/tiny only


def test_reproduce_stops_at_a_failed_fetch_without_training_or_report(chain_root, monkeypatch, capsys):
    from reprolab.cli import reproduce

    calls = []

    def fake_cli(*argv):
        calls.append(argv)
        return 4 if argv[:2] == ("data", "fetch") else 0  # the fetch fails (exit 4: missing data)

    monkeypatch.setattr(reproduce, "_cli", fake_cli)
    assert cli.main(["reproduce", "toy", "--recipe", "toyvid-chain", "--profile", "tiny"]) == 4
    assert [call[:2] for call in calls] == [("data", "fetch")]  # no prepare, run-stages or report
    assert "no report was written" in capsys.readouterr().err


def test_a_plain_recipe_is_a_chain_of_one_train_stage_with_the_config_train_uses(mini_root):
    from reprolab.config import resolved_config

    specs = load_chain("toyvid-toy-r18", "tiny", ["optim.lr=0.5"], 1)[1]
    assert list(specs) == ["train"]
    spec, config = specs["train"], resolved_config("toyvid-toy-r18", "tiny", ["optim.lr=0.5"], 1)
    assert spec["stage"] == {"name": "train", "kind": "task", "inputs": [], "train_from": None,
                             "init_from": None, "final": True}
    for key in ("task", "model", "data", "optim", "eval", "seed", "benchmark_spec"):
        assert spec[key] == config[key], key
    stages = dvc_stages("toyvid-toy-r18", "tiny")
    assert list(stages) == ["resolve", "train"]
    assert stages["train"]["cmd"] == "reprolab run-stage toyvid-toy-r18 train --profile tiny --no-progress"
