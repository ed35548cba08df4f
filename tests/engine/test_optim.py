import pytest
import torch
from torch import nn

from reprolab.engine.optim import build_optimizer, build_scheduler, lr_factor


def test_step_schedule_decays_at_epoch_milestones_per_iteration():
    factor = lr_factor({"lr": 0.1, "batch_size": 1, "epochs": 50, "schedule": "step", "milestones": [30, 40], "gamma": 0.1}, 10)
    assert factor(0) == 1.0
    assert factor(299) == 1.0
    assert factor(300) == pytest.approx(0.1)
    assert factor(399) == pytest.approx(0.1)
    assert factor(400) == pytest.approx(0.01)


def test_cosine_with_linear_warmup():
    optim = {"lr": 0.1, "batch_size": 1, "epochs": 10, "schedule": "cosine", "warmup_epochs": 2, "warmup_start_factor": 0.0}
    factor = lr_factor(optim, 5)
    assert [factor(i) for i in range(0, 10, 2)] == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8])
    assert factor(10) == pytest.approx(1.0)
    assert factor(30) == pytest.approx(0.5)  # half way through the 40 cosine iterations
    assert factor(50) == pytest.approx(0.0, abs=1e-9)


def test_unknown_schedule_and_optimizer_name_the_key():
    with pytest.raises(ValueError, match="optim.schedule"):
        lr_factor({"lr": 0.1, "batch_size": 1, "epochs": 1, "schedule": "poly"}, 1)
    with pytest.raises(ValueError, match="optim.name"):
        build_optimizer(nn.Linear(2, 2), {"name": "lamb", "lr": 0.1, "batch_size": 1, "epochs": 1})


def test_group_multipliers_scale_lr_and_weight_decay_and_survive_the_schedule():
    model = nn.Linear(3, 2)
    groups = [{"params": [model.weight], "name": "w"},
              {"params": [model.bias], "lr_mult": 2, "decay_mult": 0, "name": "b"}]
    optim = {"name": "sgd", "lr": 0.01, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4,
             "epochs": 4, "batch_size": 1, "schedule": "step", "milestones": [2], "gamma": 0.1}
    optimizer = build_optimizer(groups, optim)
    assert optimizer.defaults["nesterov"] is True
    w, b = optimizer.param_groups
    assert (w["lr"], w["weight_decay"]) == (0.01, 5e-4)
    assert (b["lr"], b["weight_decay"]) == (0.02, 0.0)
    scheduler = build_scheduler(optimizer, optim, iters_per_epoch=3)
    for _ in range(6):
        optimizer.step()
        scheduler.step()
    assert w["lr"] == pytest.approx(0.001) and b["lr"] == pytest.approx(0.002)


def test_adamw_groups():
    model = nn.Linear(3, 2)
    optimizer = build_optimizer(model, {"name": "adamw", "lr": 1e-3, "weight_decay": 0.05, "betas": [0.9, 0.95],
                                        "batch_size": 1, "epochs": 1})
    assert isinstance(optimizer, torch.optim.AdamW)
    assert optimizer.param_groups[0]["betas"] == (0.9, 0.95)
    assert optimizer.param_groups[0]["weight_decay"] == 0.05


@pytest.mark.parametrize("name", ["sgd", "adamw"])
def test_fused_optimizer_makes_the_same_updates(name):
    """`optim.fused_optimizer` (used on CUDA) picks torch's fused kernels; same update rule."""
    from reprolab.engine.optim import build_optimizer

    torch.manual_seed(0)
    weights = [torch.nn.Parameter(torch.randn(8, 4)) for _ in range(2)]
    copies = [torch.nn.Parameter(w.detach().clone()) for w in weights]
    options = {"name": name, "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4, "batch_size": 2, "epochs": 1}
    plain = build_optimizer([{"params": weights}], options)
    fused = build_optimizer([{"params": copies}], options, fused=True)
    assert fused.defaults["fused"] is True
    for _ in range(3):
        for params, optimizer in ((weights, plain), (copies, fused)):
            optimizer.zero_grad()
            sum((p ** 3).sum() for p in params).backward()
            optimizer.step()
    for w, c in zip(weights, copies, strict=True):
        torch.testing.assert_close(w, c, rtol=1e-5, atol=1e-6)
