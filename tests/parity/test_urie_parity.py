"""Parity of URIE's SK-UNet (reprolab.models.urie) with the official model, on committed reference
tensors (tests/parity/reference/urie_skunet.pt; how it was made: reference/README.md):
taeyoungson/urie@8d806bc670726783f891b3ee84372c1171f0f642 models/skunet_model.py ``SKUNet``.

- fixed random parameters (drawn by `_fill` below, the same recipe the reference run used),
  float64: train-mode forward (BatchNorm batch statistics), the input gradient and parameter
  gradients of a fixed cotangent, the BN running means after the step, and the eval-mode forward;
  two input sizes, one (20x28 -> 5x7 at the bottom) whose sides are not multiples of the
  selector's 4x4 grid, so that the nearest-neighbour upsampling of its attention is checked;
- the released checkpoint (ECCV_MODELS/ECCV_SKUNET_OURS.ckpt.pt, md5 b3dad7a8a3123d73d269c94e2d90798d):
  eval-mode output on a fixed input; runs when the weights card weights-urie-eccv2020 is fetched
  (the file is not committed), else skipped with that said.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from reprolab.models.urie import SKUNet, load_released_urie
from tests.parity._reference import assert_matches, load_reference

REF = load_reference("urie_skunet")


def _fill(model: torch.nn.Module, seed: int) -> None:
    """Parameters drawn in state-dict order (names equal the official ones): N(0, 1/fan_in) for
    weights and biases, running means N(0, 0.01), running variances U(0.5, 1.5)."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for name, t in model.state_dict().items():
        if name.endswith("num_batches_tracked"):
            state[name] = t
        elif name.endswith("running_var"):
            state[name] = 0.5 + torch.rand(t.shape, generator=g, dtype=torch.float64)
        elif name.endswith("running_mean"):
            state[name] = 0.1 * torch.randn(t.shape, generator=g, dtype=torch.float64)
        else:
            fan_in = t[0].numel() if t.dim() > 1 else 1
            state[name] = torch.randn(t.shape, generator=g, dtype=torch.float64) / fan_in ** 0.5
    model.load_state_dict(state)


def _model() -> SKUNet:
    model = SKUNet().double()
    _fill(model, 0)
    return model


def test_parameter_count_equals_the_official_model():
    assert sum(p.numel() for p in SKUNet().parameters()) == REF["official_parameters"] == 671_859


@pytest.mark.parametrize("tag", ["a", "b"])
def test_train_mode_forward_and_gradients(tag: str):
    model = _model().train()
    x = REF[f"{tag}_input"].clone().requires_grad_(True)
    out, residual = model(x)
    assert_matches(out, REF[f"{tag}_train_output"], f"urie {tag} train output")
    assert_matches(residual, REF[f"{tag}_train_output"] - REF[f"{tag}_input"], f"urie {tag} residual")
    (out * REF[f"{tag}_cotangent"]).sum().backward()
    assert_matches(x.grad, REF[f"{tag}_train_input_grad"], f"urie {tag} input grad")
    sums = REF[f"{tag}_train_grad_abs_sum"]
    named = dict(model.named_parameters())
    assert set(sums) == set(named)
    for name, param in named.items():
        assert param.grad.abs().sum().item() == pytest.approx(sums[name], rel=1e-6), name
    for name, grad in REF.get(f"{tag}_train_grads_small", {}).items():
        assert_matches(named[name].grad, grad, f"urie {tag} grad {name}")
    buffers = dict(model.named_buffers())
    for name, mean in REF[f"{tag}_running_mean_after"].items():
        assert_matches(buffers[name], mean, f"urie {tag} {name}")


@pytest.mark.parametrize("tag", ["a", "b"])
def test_eval_mode_forward(tag: str):
    model = _model().eval()
    with torch.no_grad():
        out, _ = model(REF[f"{tag}_input"])
    assert_matches(out, REF[f"{tag}_eval_output"], f"urie {tag} eval output")


def _released_checkpoint() -> Path | None:
    from reprolab.errors import MissingDataError
    from reprolab.models.weights import pretrained_weights_path

    if os.environ.get("REPROLAB_URIE_CHECKPOINT"):
        return Path(os.environ["REPROLAB_URIE_CHECKPOINT"])
    try:
        return pretrained_weights_path("weights-urie-eccv2020")
    except MissingDataError:
        return None


def test_released_checkpoint_output():
    path = _released_checkpoint()
    if path is None:
        pytest.skip("weights-urie-eccv2020 is not fetched (reprolab data fetch weights-urie-eccv2020, "
                    "or REPROLAB_URIE_CHECKPOINT=<ECCV_SKUNET_OURS.ckpt.pt>)")
    model = load_released_urie(path).double().eval()
    with torch.no_grad():
        out, _ = model(REF["released_input"])
    assert_matches(out, REF["released_eval_output"], "urie released eval output")
