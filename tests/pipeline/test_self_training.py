"""The example chain end to end on the sthv1 tiny fixture: teacher -> pseudo labels -> student,
through the CLI and through `dvc repro` (smoke schedule: the code paths, not learning)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from reprolab import cli
from tests.pipeline.conftest import RECIPE, SMOKE

pytestmark = pytest.mark.slow

STAGES = f"runs/{RECIPE}/tiny/stages"
DVC = Path(sys.executable).parent / "dvc"


def record(root: Path, stage: str) -> dict:
    return json.loads((root / STAGES / stage / "stage.json").read_text())


def final_result(root: Path, run_id: str) -> dict:
    return json.loads((root / "results" / RECIPE / f"{run_id}.json").read_text())


def assert_provenance_names_every_stage(root: Path) -> dict:
    teacher, labels, student = (record(root, s) for s in ("teacher", "pseudo-labels", "student"))
    result = final_result(root, student["run_id"])
    assert result["status"] == "ok" and result["split"]["name"] == "validation"
    chain = result["provenance"]["stages"]
    assert [(e["stage"], e["run_id"]) for e in chain] == [
        ("teacher", teacher["run_id"]), ("pseudo-labels", labels["run_id"]),
        ("student", student["run_id"])]
    assert chain[1]["fingerprint"] == labels["outputs"]["fingerprint"]
    assert result["config"]["stage_inputs"] == chain[:2]
    assert result["config"]["init_from"]["checkpoint"] == teacher["outputs"]["checkpoint"]
    assert result["config"]["data"]["train_split"] == labels["outputs"]["split"]
    # the teacher's evaluation is not a result of the recipe: only the student's is
    assert [p.stem for p in (root / "results" / RECIPE).glob("*.json")].count(teacher["run_id"]) == 0
    return result


def test_the_chain_runs_end_to_end_through_the_cli(chain_run, monkeypatch):
    """`chain_run` ran `reprolab run-stages` on the example; check what each stage left."""
    from reprolab.data.reader import open_split
    from reprolab.engine import checkpoint
    from reprolab.engine.distributed import DistContext
    from reprolab.engine.loop import predict_all
    from reprolab.tasks import build_task

    root = chain_run
    monkeypatch.setenv("REPROLAB_ROOT", str(root))
    assert_provenance_names_every_stage(root)

    # The derived split holds the teacher's predictions on the training split, opened like data.
    labels = record(root, "pseudo-labels")
    derived = open_split("sthv1", labels["outputs"]["split"], "tiny")
    source = open_split("sthv1", "train", "tiny")
    assert len(derived) == len(source) == 240 and derived.classes == source.classes
    assert derived.info["derived"]["run_id"] == labels["run_id"]
    assert derived.info["derived"]["from"]["run_id"] == record(root, "teacher")["run_id"]
    assert derived.column("source_label") == source.labels
    assert derived.frames(5, [0, 3]) == source.frames(5, [0, 3])  # the source's bytes, referenced
    config = yaml.safe_load((root / STAGES / "teacher/run/config.yaml").read_text())
    config["data"]["eval_split"] = "train"
    task = build_task(config)
    model = task.build_model(pretrained=False)
    model.load_state_dict(checkpoint.load(root / STAGES / "teacher/run/checkpoints/final.pt")["model"])
    outputs, _ = predict_all(task, model, task.build_dataset("eval"), DistContext(), show_progress=False)
    assert derived.labels == outputs.argmax(1).tolist()
    scores = torch.tensor(derived.column("score"))
    torch.testing.assert_close(scores, outputs.softmax(1).max(1).values)

    # The student started from the teacher (engine init_from) and trained on the derived split.
    student_config = yaml.safe_load((root / STAGES / "student/run/config.yaml").read_text())
    assert student_config["data"]["train_split"] == labels["outputs"]["split"]
    assert (root / f"metrics/tiny/{RECIPE}/pseudo-labels.json").is_file()

    # A stage whose inputs changed since it ran is refused with the stage to run again.
    code = cli.main(["run-stage", RECIPE, "student", "--profile", "tiny", "--device", "cpu",
                     *SMOKE, "stages.pseudo-labels.options.min_score=0.1"])
    assert code == cli.EXIT_MISSING_DATA


def _dvc(root: Path, *args: str) -> str:
    env = {**os.environ, "REPROLAB_ROOT": str(root), "DVC_NO_ANALYTICS": "1",
           "REPROLAB_NO_PROGRESS": "1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run([str(DVC), *args], cwd=root, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"dvc {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def _ran(output: str) -> list[str]:
    return re.findall(r"Running stage '[^']*:([a-z-]+)'", output)


@pytest.mark.skipif(not DVC.exists(), reason="dvc is not installed next to this Python")
def test_dvc_repro_reruns_from_the_first_changed_stage(chain_run, tmp_path, monkeypatch):
    """The chain `reprolab run-stages` ran is what the generated dvc.yaml runs: `dvc commit`
    adopts it as is (the same specs, outputs and commands), which keeps the tests to one full run
    of the chain; the reruns below are real `dvc repro` runs of the stage commands."""
    root = tmp_path / "checkout"
    shutil.copytree(chain_run, root)  # every path inside is relative to the checkout
    monkeypatch.setenv("REPROLAB_ROOT", str(root))
    _dvc(root, "init", "--no-scm")
    _dvc(root, "config", "core.analytics", "false")
    assert cli.main(["stages", "dvc", RECIPE, "--profile", "tiny", *SMOKE]) == 0
    dvc_file = f"pipelines/{RECIPE}/tiny/dvc.yaml"
    _dvc(root, "commit", "--force", dvc_file)
    assert _ran(_dvc(root, "repro", dvc_file)) == ["resolve"]  # up to date: only resolve runs
    # `dvc plots show` reads each task stage's history by the fields the generated file names
    # (the loss only: SMOKE sets optim.eval_every=0, so no epoch has a top-1 to plot)
    shown = json.loads(_dvc(root, "plots", "show", "--json"))
    assert not shown.get("errors"), shown["errors"]
    assert sorted(shown["data"]) == ["student/loss", "teacher/loss"]
    values = shown["data"]["student/loss"][0]["content"]["data"]["values"]
    assert [v["epoch"] for v in values] == [0] and values[0]["loss"] > 0

    before = {s: record(root, s) for s in ("teacher", "pseudo-labels", "student")}
    checkpoint = root / STAGES / "teacher/run/checkpoints/final.pt"
    mtime = checkpoint.stat().st_mtime_ns
    recipe = root / "reproductions/selfy/recipes" / f"{RECIPE}.yaml"
    recipe.write_text(recipe.read_text().replace("{min_score: 0.0}", "{min_score: 0.05}"))
    second = _dvc(root, "repro", dvc_file)
    assert _ran(second) == ["resolve", "pseudo-labels", "student"], second
    assert re.search(r"Stage '[^']*:teacher' didn't change, skipping", second), second

    after = {s: record(root, s) for s in ("teacher", "pseudo-labels", "student")}
    assert after["teacher"]["run_id"] == before["teacher"]["run_id"]
    assert checkpoint.stat().st_mtime_ns == mtime
    for stage in ("pseudo-labels", "student"):
        assert after[stage]["run_id"] != before[stage]["run_id"]
    # every top score of 4 classes is >= 0.25: the same videos and labels, so the same content
    # fingerprint, recorded as made by another run
    assert after["pseudo-labels"]["outputs"]["fingerprint"] == before["pseudo-labels"]["outputs"]["fingerprint"]
    result = assert_provenance_names_every_stage(root)
    assert result["provenance"]["stages"][0]["run_id"] == before["teacher"]["run_id"]
    spec = yaml.safe_load((root / f"runs/{RECIPE}/tiny/specs/pseudo-labels.yaml").read_text())
    assert spec["stage"]["options"] == {"min_score": 0.05}
