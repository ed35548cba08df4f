"""A usage error (bad command-line value, unknown key, bad override) exits 2 before anything is
recorded: no run directory under runs/, no result under results/, no report, for every command
that starts runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from reprolab import cli
from reprolab.tasks import TASKS
from tests.engine.test_commands import TOY_RECIPE
from tests.pipeline.test_resolve import CHAIN


@pytest.fixture
def root(mini_root, monkeypatch):
    from tests.engine.toy import ToyTask

    monkeypatch.setitem(TASKS._entries, "toy-test", ToyTask)
    monkeypatch.setenv("REPROLAB_NO_PROGRESS", "1")
    (mini_root / "reproductions/toy/recipes/toy-run.yaml").write_text(TOY_RECIPE)
    (mini_root / "reproductions/toy/recipes/toyvid-chain.yaml").write_text(CHAIN)
    return mini_root


def _exit_code(argv: list[str]) -> int:
    """What the command exits with, argparse's own usage errors (SystemExit) included."""
    try:
        return cli.main(argv)
    except SystemExit as exit_:
        return int(exit_.code)


def _nothing_written(root: Path) -> None:
    for folder in ("runs", "results", "reports"):
        entries = sorted(p.relative_to(root).as_posix() for p in (root / folder).rglob("*")) \
            if (root / folder).exists() else []
        assert entries == [], f"{folder}/ after a usage error: {entries}"


BAD_OVERRIDES = [
    pytest.param(["optim.lr=fast"], "optim.lr", id="bad-value"),
    pytest.param(["optim.lrr=0.1"], "lrr", id="unknown-key"),
    pytest.param(["optim.lr"], "optim.lr", id="not-key-value"),  # said by argparse
    pytest.param(["+model.nonsense=1"], "nonsense", id="added-unknown-key"),
]


@pytest.mark.parametrize("overrides, named", BAD_OVERRIDES)
def test_train(root, capsys, overrides, named):
    assert _exit_code(["train", "toy-run", "--profile", "tiny", *overrides]) == cli.EXIT_USAGE
    assert named in capsys.readouterr().err
    _nothing_written(root)


@pytest.mark.parametrize("argv, named", [
    (["train", "toy-runn", "--profile", "tiny"], "toy-run"),
    (["train", "toy-run", "--profile", "tiny", "--device", "tpu"], "--device 'tpu'"),
])
def test_train_names_and_options(root, capsys, argv, named):
    assert cli.main(argv) == cli.EXIT_USAGE
    assert named in capsys.readouterr().err
    _nothing_written(root)


def test_train_bad_option_values_are_argparse_errors(root, capsys):
    for argv in (["train", "toy-run", "--profile", "small"], ["train", "toy-run", "--seed", "one"]):
        with pytest.raises(SystemExit) as exit_:
            cli.main(argv)
        assert exit_.value.code == cli.EXIT_USAGE
    _nothing_written(root)


def test_evaluate(root, tmp_path, capsys):
    assert cli.main(["evaluate", str(tmp_path / "nowhere")]) == cli.EXIT_USAGE
    _nothing_written(root)
    run_dir = tmp_path / "run"
    assert cli.main(["train", "toy-run", "--profile", "tiny", "--out", str(run_dir)]) == 0
    assert cli.main(["evaluate", str(run_dir), "--device", "tpu"]) == cli.EXIT_USAGE
    # a run directory whose configuration was edited into an invalid one
    config = run_dir / "config.yaml"
    config.write_text(config.read_text().replace("lr: 0.1", "lr: fast"))
    capsys.readouterr()
    assert cli.main(["evaluate", str(run_dir)]) == cli.EXIT_USAGE
    assert "optim.lr" in capsys.readouterr().err
    _nothing_written(root)


@pytest.mark.parametrize("overrides, named", BAD_OVERRIDES)
def test_reproduce(root, capsys, monkeypatch, overrides, named):
    from reprolab.cli import reproduce

    calls = []
    monkeypatch.setattr(reproduce, "_cli", lambda *argv: calls.append(argv) or 0)
    code = _exit_code(["reproduce", "toy", "--recipe", "toy-run", "--profile", "tiny", *overrides])
    assert code == cli.EXIT_USAGE
    assert named in capsys.readouterr().err
    assert calls == []  # no fetch, prepare, train or report was started
    _nothing_written(root)


@pytest.mark.parametrize("recipe, command", [("toy-run", "train"), ("toyvid-chain", "run-stages")])
def test_reproduce_runs_the_seeds_an_override_names(root, monkeypatch, recipe, command):
    from reprolab.cli import reproduce

    calls = []
    monkeypatch.setattr(reproduce, "_cli", lambda *argv: calls.append(argv) or 0)
    assert cli.main(["reproduce", "toy", "--recipe", recipe, "--profile", "tiny", "seeds=[5, 6]",
                     "--seeds", "1"]) == 0
    runs = [argv for argv in calls if argv[0] == command]
    assert [argv[argv.index("--seed") + 1] for argv in runs] == ["5"]


@pytest.mark.parametrize("argv, named", [
    (["reproduce", "toy", "--recipe", "toy-runn", "--profile", "tiny"], "toy-run"),
    (["reproduce", "toyy", "--profile", "tiny"], "toy"),
    (["reproduce", "toy", "--profile", "tiny", "--seeds", "0"], "--seeds"),
    (["reproduce", "toy", "--recipe", "toyvid-chain", "--profile", "tiny",
      "stages.labels.options.min_score=high"], "min_score"),
    (["reproduce", "toy", "--recipe", "toyvid-chain", "--profile", "tiny", "optim.lr=fast"], "optim.lr"),
])
def test_reproduce_names(root, capsys, monkeypatch, argv, named):
    from reprolab.cli import reproduce

    calls = []
    monkeypatch.setattr(reproduce, "_cli", lambda *argv: calls.append(argv) or 0)
    assert cli.main(argv) == cli.EXIT_USAGE
    assert named in capsys.readouterr().err
    assert calls == []
    _nothing_written(root)


STAGE_OVERRIDES = [*BAD_OVERRIDES,
                   pytest.param(["stages.labels.options.min_score=high"], "min_score", id="step-option"),
                   pytest.param(["stages.nobody.optim.lr=0.1"], "nobody", id="unknown-stage")]


@pytest.mark.parametrize("overrides, named", STAGE_OVERRIDES)
@pytest.mark.parametrize("command", [["run-stage", "toyvid-chain", "teacher"], ["run-stages", "toyvid-chain"]])
def test_run_stage_and_run_stages(root, capsys, command, overrides, named):
    assert _exit_code([*command, "--profile", "tiny", *overrides]) == cli.EXIT_USAGE
    assert named in capsys.readouterr().err
    _nothing_written(root)


@pytest.mark.parametrize("argv, named", [
    (["run-stage", "toyvid-chain", "techer", "--profile", "tiny"], "techer"),
    (["run-stages", "toyvid-chain", "--from", "studnt", "--profile", "tiny"], "studnt"),
    (["run-stage", "toyvid-chain", "teacher", "--profile", "tiny", "--device", "tpu"], "--device"),
])
def test_run_stage_names_and_options(root, capsys, argv, named):
    assert cli.main(argv) == cli.EXIT_USAGE
    assert named in capsys.readouterr().err
    _nothing_written(root)


@pytest.mark.parametrize("override, message", [
    ("model.name=tsm_resnet1", "unknown model 'tsm_resnet1'; did you mean tsm_resnet18"),
    ("model.segments=0", "model.segments"),
])
def test_names_a_task_builds_later_are_checked_before_the_data(mini_root, capsys, override, message):
    # toyvid's data is not prepared: a usage error must be said first (exit 2, not 4)
    assert cli.main(["train", "toyvid-toy-r18", "--profile", "tiny", override]) == cli.EXIT_USAGE
    assert message in capsys.readouterr().err
    _nothing_written(mini_root)


def test_a_usage_error_found_during_training_is_not_a_failed_run(root, tmp_path, monkeypatch, capsys):
    from reprolab.errors import ConfigError
    from tests.engine.toy import ToyTask

    def bad_model(self, *, pretrained=True):
        raise ConfigError("model.options: a value only the model builder can check")

    monkeypatch.setattr(ToyTask, "build_model", bad_model)
    assert cli.main(["train", "toy-run", "--profile", "tiny", "--out", str(tmp_path / "run")]) == cli.EXIT_USAGE
    assert "only the model builder can check" in capsys.readouterr().err
    assert not (root / "results").exists() and not (tmp_path / "run").exists()
