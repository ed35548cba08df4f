"""The log-ratio paper's per-iteration schedule: lr = lr0 / (1 + step * decay) (official
main.py adjust_learning_rate, run after every optimizer step and never reset between epochs)."""

import pytest
import torch
from torch import nn

from reprolab.engine.optim import build_optimizer, build_scheduler, lr_factor


def test_inverse_schedule_matches_the_official_update_over_the_whole_run():
    model = nn.Linear(2, 1)
    optim = {"name": "sgd", "lr": 0.01, "weight_decay": 5e-4, "schedule": "inverse", "decay": 0.1,
             "epochs": 3, "batch_size": 1}
    optimizer = build_optimizer(model, optim)
    scheduler = build_scheduler(optimizer, optim, iters_per_epoch=4)
    seen = []
    for _ in range(12):  # three epochs of four iterations: the decay runs on across epochs
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    # official: the first step uses lr0, the step-th update sets lr0 / (1 + step * decay)
    expected = [0.01 / (1 + step * 0.1) for step in range(12)]
    torch.testing.assert_close(torch.tensor(seen), torch.tensor(expected))
    assert seen[4] == pytest.approx(0.01 / 1.4)  # no reset at the epoch boundary


def test_inverse_schedule_defaults_and_rejects_negative_decay():
    assert lr_factor({"lr": 0.1, "batch_size": 1, "epochs": 1, "schedule": "inverse"}, 10)(7) == 1.0  # decay 0: constant
    with pytest.raises(ValueError, match="optim.decay"):
        lr_factor({"lr": 0.1, "batch_size": 1, "epochs": 1, "schedule": "inverse", "decay": -1e-4}, 10)
