"""Slurm through submitit, without a cluster: the sbatch script for 2 nodes x 8 GPUs, and a toy
run through submitit's local executor that is preempted, requeued and resumed, ending with the
weights and metrics of an uninterrupted run."""

import json
import os
from pathlib import Path

import pytest
import torch

from reprolab import cli
from reprolab.engine import checkpoint
from reprolab.engine.slurm import SlurmOptions, sbatch_script, submission_folder, submit
from reprolab.errors import UsageError
from reprolab.tasks import TASKS
from tests.engine.slurm_toy import PREEMPT_AT, PreemptedOnceToyTask, ToyTrainJob

REPO = Path(__file__).resolve().parents[2]

# 96 samples / 16 = 6 iterations an epoch; last.pt every 2 iterations and at epoch ends
TOY_RECIPE = """\
title: toy run for the Slurm tests
task: toy-test
benchmark: toyvid-val
model: {dropout: 0.2}
data: {samples: 96}
optim: {name: sgd, lr: 0.1, momentum: 0.9, batch_size: 16, epochs: 3, schedule: step, milestones: [2],
        checkpoint_every: 2}
seeds: [4]
"""


@pytest.fixture
def toy_root(mini_root, monkeypatch):
    monkeypatch.setitem(TASKS._entries, "toy-test", PreemptedOnceToyTask)
    monkeypatch.setenv("REPROLAB_NO_PROGRESS", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    (mini_root / "reproductions" / "toy" / "recipes" / "toy-run.yaml").write_text(TOY_RECIPE)
    return mini_root


def test_slurm_options_and_the_sbatch_script_for_two_nodes_of_eight_gpus(tmp_path):
    options = SlurmOptions.parse("partition=gpu,nodes=2,gpus_per_node=8,time=4320,account=vision,"
                                 "cpus_per_task=10,mem_gb=400,max_requeues=5")
    assert options.cluster == "slurm" and options.world_size == 16
    script = sbatch_script(options, tmp_path / "run.slurm")
    lines = script.splitlines()
    for flag in ("--partition=gpu", "--nodes=2", "--gpus-per-node=8", "--ntasks-per-node=8",
                 "--time=4320", "--account=vision", "--cpus-per-task=10", "--mem=400GB",
                 "--signal=USR2@90", "--open-mode=append", "--job-name=reprolab"):
        assert f"#SBATCH {flag}" in lines, (flag, script)
    # one srun over all 16 tasks, each running the pickled TrainJob
    (srun,) = [line for line in lines if line.startswith("srun ")]
    assert srun.endswith(f"-m submitit.core._submit {tmp_path / 'run.slurm' / '%j'}")
    with pytest.raises(UsageError, match="unknown key 'gpus'"):
        SlurmOptions.parse("partition=gpu,gpus=8")
    with pytest.raises(UsageError, match="nodes=two: expected an integer"):
        SlurmOptions.parse("nodes=two")


def test_train_slurm_dry_run_prints_the_script_and_submits_nothing(toy_root, tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["train", "toy-run", "--out", str(out), "--slurm-dry-run",
                     "--slurm", "partition=gpu,nodes=2,gpus_per_node=8"]) == 0
    printed = capsys.readouterr().out
    assert "#SBATCH --nodes=2" in printed and "#SBATCH --ntasks-per-node=8" in printed
    assert str(submission_folder(out)) in printed and not out.exists()
    assert cli.main(["train", "toy-run", "--slurm-wait"]) == cli.EXIT_USAGE
    # no Slurm here: a clear message, not submitit's traceback
    assert cli.main(["train", "toy-run", "--out", str(out), "--slurm", "partition=gpu"]) == cli.EXIT_USAGE
    assert "srun is not on PATH" in capsys.readouterr().err


def _final(run_dir: Path):
    weights = checkpoint.load(run_dir / "checkpoints" / "final.pt")["model"]
    log = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return weights, [{k: v for k, v in r.items() if k != "epoch_time_s"} for r in log]


def test_local_executor_preempted_job_requeues_and_ends_as_an_uninterrupted_run(toy_root, tmp_path,
                                                                                monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO / "src"), str(REPO)]))
    uninterrupted = ToyTrainJob("toy-run", "full", [], None, tmp_path / "one", device="cpu")
    uninterrupted()  # in this process, not preempted

    marker = tmp_path / "preempted"
    # training call 9 = epoch 2, iteration 3: last.pt holds epoch 2, iteration 2
    monkeypatch.setenv(PREEMPT_AT, f"9:{marker}")
    run_dir = tmp_path / "slurm-run"
    job = submit(ToyTrainJob("toy-run", "full", [], None, run_dir, device="cpu"),
                 SlurmOptions.parse("cluster=local,time=5"))
    assert job.result() == str(run_dir)
    assert marker.is_file()  # the first attempt was preempted ...
    log = job.stdout() or ""  # both attempts append to the same log
    assert "Caught signal SIGUSR2" in (job.stderr() or "")
    assert "Calling checkpoint method" in log and "Requeued job" in log, log[-3000:]
    assert log.count("Starting with JobEnvironment") == 2 and "no checkpoint" not in log
    saved = checkpoint.load(run_dir / "checkpoints" / "last.pt")
    assert (saved["epoch"], saved["batch"]) == (3, 0)

    # ... and the resumed one ends exactly where the uninterrupted run does
    ours, ours_log = _final(run_dir)
    theirs, theirs_log = _final(tmp_path / "one")
    for key in theirs:
        torch.testing.assert_close(ours[key], theirs[key], rtol=0, atol=0)
    assert ours_log == theirs_log and len(ours_log) == 3
    assert ours_log[-1]["loss"] < ours_log[0]["loss"]  # it trained


def test_train_slurm_wait_blocks_until_the_job_has_trained_the_run(toy_root, tmp_path, monkeypatch, capsys):
    """The DVC-friendly mode: the command returns when the run directory is complete."""
    from reprolab.engine import slurm

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO / "src"), str(REPO)]))
    monkeypatch.setattr(slurm, "TrainJob", ToyTrainJob)  # the toy task, registered in the job
    out = tmp_path / "run"
    assert cli.main(["train", "toy-run", "--out", str(out), "--device", "cpu", "optim.epochs=1",
                     "--slurm", "cluster=local,time=5", "--slurm-wait"]) == 0
    printed = capsys.readouterr().out
    assert "submitted job" in printed and f"next: reprolab evaluate {out}" in printed
    assert (out / "checkpoints" / "final.pt").is_file() and (out / "config.yaml").is_file()
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1
