import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from reprolab.engine import checkpoint
from reprolab.engine.distributed import DistContext
from reprolab.engine.loop import fit
from tests.engine.toy import ToyTask, toy_config

REPO = Path(__file__).resolve().parents[2]


def test_two_process_ddp_matches_one_process_on_the_same_global_batch(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "REPROLAB_NO_PROGRESS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         str(REPO / "tests" / "engine" / "ddp_worker.py"), str(tmp_path / "ddp")],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    config = toy_config(epochs=2, milestones=[1])
    config["model"]["dropout"] = 0.0
    fit(ToyTask(config), config, tmp_path / "one", DistContext(), seed=5, show_progress=False)

    ddp = checkpoint.load(tmp_path / "ddp" / "checkpoints" / "final.pt")["model"]
    one = checkpoint.load(tmp_path / "one" / "checkpoints" / "final.pt")["model"]
    for key in one:
        torch.testing.assert_close(ddp[key], one[key], rtol=0, atol=1e-6)
    assert not torch.equal(one["0.weight"], ToyTask(config).build_model().state_dict()["0.weight"])

    # Evaluation is sharded across the ranks and gathered: same metrics on all 64 samples.
    ddp_log = [json.loads(x) for x in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    one_log = [json.loads(x) for x in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()]
    assert ddp_log[-1]["eval_samples"] == one_log[-1]["eval_samples"] == 64
    assert ddp_log[-1]["eval_top1"] == one_log[-1]["eval_top1"]
    assert abs(ddp_log[-1]["loss"] - one_log[-1]["loss"]) < 1e-5


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_node_torchrun_rendezvous_matches_one_process(tmp_path):
    """The multi-node launch of the README ("Scale out"): one torchrun per node, meeting at a
    c10d rendezvous endpoint; here two "nodes" of one process each on this machine, gloo."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "REPROLAB_NO_PROGRESS": "1"}
    endpoint = f"127.0.0.1:{_free_port()}"
    nodes = [
        subprocess.Popen(
            [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
             "--rdzv-backend", "c10d", "--rdzv-endpoint", endpoint, "--rdzv-id", "reprolab-test",
             str(REPO / "tests" / "engine" / "ddp_worker.py"), str(tmp_path / "ddp")],
            env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    outputs = [node.communicate(timeout=300)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], "\n".join(o[-3000:] for o in outputs)

    config = toy_config(epochs=2, milestones=[1])
    config["model"]["dropout"] = 0.0
    fit(ToyTask(config), config, tmp_path / "one", DistContext(), seed=5, show_progress=False)
    ddp = checkpoint.load(tmp_path / "ddp" / "checkpoints" / "final.pt")["model"]
    one = checkpoint.load(tmp_path / "one" / "checkpoints" / "final.pt")["model"]
    for key in one:  # gradients all-reduced across the nodes: the one-process update
        torch.testing.assert_close(ddp[key], one[key], rtol=0, atol=1e-6)
    assert json.loads((tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()[-1])["eval_samples"] == 64
