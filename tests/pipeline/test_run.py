"""A stage that fails leaves a failed RunResult naming the stage, and no record of completion."""

from __future__ import annotations

import json

from reprolab import cli
from tests.pipeline.test_resolve import CHAIN


class _DataIsThere:
    def __init__(self, config):
        self.config = config

    def check_data(self):
        return None


def test_a_failing_stage_is_recorded_as_a_failed_run_of_the_recipe(mini_root, monkeypatch, capsys):
    (mini_root / "reproductions/toy/recipes/toyvid-chain.yaml").write_text(CHAIN)
    monkeypatch.setattr("reprolab.tasks.build_task", _DataIsThere)

    def crash(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr("reprolab.pipeline.run._train_and_evaluate", crash)
    code = cli.main(["run-stage", "toyvid-chain", "teacher", "--profile", "tiny", "--device", "cpu"])
    assert code == cli.EXIT_FAILED
    assert "stage 'teacher' of toyvid-chain failed: RuntimeError: out of memory" in capsys.readouterr().err
    (path,) = (mini_root / "results" / "toyvid-chain").glob("*.json")
    result = json.loads(path.read_text())
    assert result["status"] == "failed" and result["error"].startswith("stage teacher: RuntimeError")
    assert result["provenance"]["stages"][-1]["stage"] == "teacher"
    assert not (mini_root / "runs/toyvid-chain/tiny/stages/teacher/stage.json").exists()
