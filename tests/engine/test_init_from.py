"""The engine's warm start: `init_from` in a resolved config loads weights right after build_model."""

from __future__ import annotations

import pytest
import torch

from reprolab.engine import checkpoint
from reprolab.engine.distributed import DistContext
from reprolab.engine.init_from import init_checkpoint
from reprolab.engine.loop import fit
from reprolab.errors import ConfigError
from tests.engine.toy import ToyTask, toy_config

CPU = DistContext()


def final(run_dir):
    return checkpoint.load(run_dir / "checkpoints" / "final.pt")["model"]


def test_fit_starts_from_the_init_from_checkpoint(tmp_path):
    teacher = toy_config(epochs=2)
    fit(ToyTask(teacher), teacher, tmp_path / "teacher", CPU, seed=0, show_progress=False)
    # lr 0: the student's weights stay where they started, so they must be the teacher's
    student = {**toy_config(epochs=1, lr=0.0), "init_from": {
        "stage": "teacher", "checkpoint": str(tmp_path / "teacher" / "checkpoints" / "final.pt")}}
    fit(ToyTask(student), student, tmp_path / "student", CPU, seed=1, show_progress=False)
    fresh = toy_config(epochs=1, lr=0.0)
    fit(ToyTask(fresh), fresh, tmp_path / "fresh", CPU, seed=1, show_progress=False)
    want, got, other = final(tmp_path / "teacher"), final(tmp_path / "student"), final(tmp_path / "fresh")
    assert all(torch.equal(want[k], got[k]) for k in want)
    assert not all(torch.equal(want[k], other[k]) for k in want)


def test_a_relative_checkpoint_is_under_the_checkout_and_a_missing_one_names_its_stage(mini_root):
    assert init_checkpoint({"optim": {}}) is None
    path = mini_root / "runs" / "r" / "final.pt"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")
    assert init_checkpoint({"init_from": {"checkpoint": "runs/r/final.pt"}}) == path
    with pytest.raises(FileNotFoundError, match="stage 'teacher' has not finished"):
        init_checkpoint({"init_from": {"stage": "teacher", "checkpoint": "runs/r/missing.pt"}})
    with pytest.raises(ConfigError, match="expected"):
        init_checkpoint({"init_from": "teacher"})
