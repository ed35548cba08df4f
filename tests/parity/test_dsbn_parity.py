"""DSBN against the official code (wgchang/DSBN@e0cd4bf): reference tensors made as
tests/parity/reference/README.md says (`dsbn.pt`), compared in float64."""

from __future__ import annotations

import pytest
import torch

from reprolab.models.dsbn import DomainSpecificBatchNorm2d
from reprolab.models.mstn import MovingCentroids, adaptation_factor, ensemble_pseudo_labels
from tests.parity._reference import assert_matches, load_reference


@pytest.fixture(scope="module")
def reference():
    return load_reference("dsbn")


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("domain", [0, 1, 2])
def test_dsbn_layer_matches_official(reference, mode, domain):
    """Output, input and parameter gradients, and running statistics after the step, per domain."""
    init = reference["init_state"]
    layer = DomainSpecificBatchNorm2d(5, 3).double()
    layer.load_state_dict(init)  # the official state-dict names (bns.<d>.weight, ...)
    layer.train(mode == "train")
    x = reference["x"].clone().requires_grad_(True)
    y = layer(x, torch.full((4,), domain, dtype=torch.long))
    (y * reference["cotangent"]).sum().backward()
    expected = reference[mode][domain]
    assert_matches(y, expected["y"], f"dsbn {mode} output")
    assert_matches(x.grad, expected["grad_x"], f"dsbn {mode} grad x")
    for d, bn in enumerate(layer.bns):
        grad_w = bn.weight.grad if bn.weight.grad is not None else torch.zeros(5, dtype=torch.float64)
        grad_b = bn.bias.grad if bn.bias.grad is not None else torch.zeros(5, dtype=torch.float64)
        assert_matches(grad_w, expected["grad_weight"][d], f"dsbn {mode} grad weight")
        assert_matches(grad_b, expected["grad_bias"][d], f"dsbn {mode} grad bias")
    for key, value in layer.state_dict().items():
        if value.is_floating_point():
            assert_matches(value, expected["state_after"][key], f"dsbn {mode} {key}")
        else:
            assert torch.equal(value, expected["state_after"][key]), key
    changed = [k for k in init if not torch.equal(init[k], expected["state_after"][k])]
    if mode == "train":  # only the chosen branch's statistics move
        assert changed and all(k.startswith(f"bns.{domain}.") for k in changed)
    else:
        assert changed == []


def test_moving_centroids_match_official(reference):
    ref = reference["centroids"]
    centroids = MovingCentroids(4, 4, decay=ref["decay"]).double()
    for features, labels, moved in zip(ref["features"], ref["labels"], ref["moved"], strict=True):
        new = centroids(features, labels)
        assert_matches(new, moved, "moving centroids")
        centroids.store(new)
    assert (ref["labels"][0] != 3).all()  # class 3 is absent from the first batch: it stays at zero


def test_ensemble_pseudo_labels_match_official(reference):
    ref = reference["ensemble"]
    for case in ref["cases"]:
        lam = adaptation_factor(case["i_iter"] / case["max_step"])
        assert lam == pytest.approx(case["lambda"], abs=1e-15)
        label, kept = ensemble_pseudo_labels(ref["teacher"], ref["student"], lam)
        assert torch.equal(label, case["label"])
        assert kept.all()
    labels = [case["label"] for case in ref["cases"]]
    assert not torch.equal(labels[0], labels[-1])  # the mix moves from teacher to student
