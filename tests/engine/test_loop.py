import json

import pytest
import torch

from reprolab.engine import checkpoint
from reprolab.engine.distributed import DistContext
from reprolab.engine.loop import fit
from reprolab.engine.seeding import seed_everything
from tests.engine.toy import ToyTask, toy_config

CPU = DistContext()


def weights(run_dir):
    return checkpoint.load(run_dir / "checkpoints" / "final.pt")["model"]


@pytest.mark.learning(seed=0)
def test_fit_learns_and_logs_one_json_line_per_epoch(tmp_path, learning):
    result = fit(ToyTask(toy_config()), toy_config(), tmp_path, CPU, seed=learning.seed, show_progress=False)
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines] == [0, 1, 2]
    assert lines == result.history == json.loads((tmp_path / "history.json").read_text())
    learning.at_least("eval_top1, last epoch (chance 25)", lines[-1]["eval_top1"], 80.0)  # 4 separable classes
    learning.at_least("train loss drop, first to last epoch", lines[0]["loss"] - lines[-1]["loss"], 0.1)
    assert lines[2]["lr"] == pytest.approx(0.01)  # stepped at epoch 2
    assert (tmp_path / "checkpoints" / "last.pt").is_file()


def test_same_seed_same_weights_other_seed_other_weights(tmp_path):
    config = toy_config(epochs=1)
    a = fit(ToyTask(config), config, tmp_path / "a", CPU, seed=1, show_progress=False)
    b = fit(ToyTask(config), config, tmp_path / "b", CPU, seed=1, show_progress=False)
    fit(ToyTask(config), config, tmp_path / "c", CPU, seed=2, show_progress=False)
    assert a.history[0]["loss"] == b.history[0]["loss"]
    wa, wb, wc = weights(tmp_path / "a"), weights(tmp_path / "b"), weights(tmp_path / "c")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)


@pytest.mark.parametrize("crash_at", [5, 6, 13])  # mid-epoch, at an epoch end, in the last epoch
def test_resume_after_a_crash_gives_bitwise_the_same_weights(tmp_path, crash_at):
    # 96 samples / batch 16 = 6 iterations per epoch; a checkpoint every 2 iterations.
    config = toy_config(epochs=3, checkpoint_every=2, milestones=[1, 2])
    fit(ToyTask(config), config, tmp_path / "straight", CPU, seed=7, show_progress=False)

    crashed = tmp_path / "crashed"
    with pytest.raises(RuntimeError, match="simulated crash"):
        fit(ToyTask(config, fail_at_call=crash_at), config, crashed, CPU, seed=7, show_progress=False)
    assert not (crashed / "checkpoints" / "final.pt").exists()
    resumed = fit(ToyTask(config), config, crashed, CPU, seed=7, resume=True, show_progress=False)

    straight, again = weights(tmp_path / "straight"), weights(crashed)
    assert all(torch.equal(straight[k], again[k]) for k in straight)
    logged = [json.loads(line) for line in (crashed / "metrics.jsonl").read_text().splitlines()]
    reference = [json.loads(line) for line in (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()]
    drop = ("epoch_time_s",)
    assert [{k: v for k, v in r.items() if k not in drop} for r in logged] == \
           [{k: v for k, v in r.items() if k not in drop} for r in reference]
    assert len(resumed.history) == 3


def test_gradient_clipping_by_value_bounds_the_update(tmp_path):
    # lr 1, no momentum, one step: the update is the clipped gradient (x2 for the biases' lr_mult).
    config = toy_config(epochs=1, momentum=0.0, nesterov=False, weight_decay=0.0, lr=1.0,
                        clip_grad_norm=None, clip_grad_value=1e-3, schedule="constant")
    config["data"]["samples"] = 16
    fit(ToyTask(config), config, tmp_path, CPU, seed=0, show_progress=False)
    seed_everything(0)  # the engine seeds, then builds the model
    start = ToyTask(config).build_model().state_dict()
    end = weights(tmp_path)
    steps = {k: float((end[k] - start[k]).abs().max()) for k in end}
    assert steps["0.weight"] == pytest.approx(1e-3, rel=1e-4)
    assert steps["0.bias"] == pytest.approx(2e-3, rel=1e-4)


def test_max_steps_per_epoch_caps_the_iterations(tmp_path):
    config = toy_config(epochs=2)
    config["optim"]["max_steps_per_epoch"] = 2
    task = ToyTask(config)
    calls = []
    original = task.training_loss

    def counting_loss(model, batch):
        calls.append(1)
        return original(model, batch)

    task.training_loss = counting_loss
    result = fit(task, config, tmp_path, CPU, seed=0, show_progress=False)
    assert len(calls) == 4
    assert [record["epoch"] for record in result.history] == [0, 1]
