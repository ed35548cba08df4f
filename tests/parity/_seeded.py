"""Seeded float64 weights and inputs for parity of networks too large to store.

The official code and ours get the same tensors from ``seeded_state`` (state-dict names are the
same on both sides), so the committed references need only the outputs. Each tensor is drawn in
sorted-name order from one ``torch.Generator``: conv/linear weights normal with std
1/sqrt(fan_in) (activations stay O(1) through 50 layers), BatchNorm weights U(0.5, 1.5), biases
and running means N(0, 0.1), running variances U(0.5, 1.5).
"""

from __future__ import annotations

import torch


def seeded_state(model: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    state = {}
    for name, tensor in sorted(model.state_dict().items()):
        if not tensor.is_floating_point():
            state[name] = tensor.clone()
            continue
        shape, leaf = tensor.shape, name.rsplit(".", 1)[-1]
        if leaf == "running_var" or (leaf == "weight" and len(shape) == 1):
            value = 0.5 + torch.rand(shape, generator=g, dtype=torch.float64)
        elif leaf in ("bias", "running_mean") or len(shape) == 1:
            value = 0.1 * torch.randn(shape, generator=g, dtype=torch.float64)
        else:
            fan_in = shape[1:].numel()
            value = torch.randn(shape, generator=g, dtype=torch.float64) / fan_in ** 0.5
        state[name] = value
    return state


def seeded_input(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
