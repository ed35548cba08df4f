"""Loading the committed reference tensors (tests/parity/reference/, see its README.md) and the
one comparison every parity test uses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

REFERENCE_DIR = Path(__file__).resolve().parent / "reference"

# Both sides run in float64: differences are round-off (at most ~1e-11 seen). rtol 1e-6 for
# every value; atol 1e-9 only for entries that are themselves near zero (a relative tolerance is
# meaningless there), far above float64 round-off and far below any real difference.
RTOL = 1e-6
ATOL = 1e-9

# Largest absolute and relative differences seen per compared quantity, for reporting.
OBSERVED: dict[str, tuple[float, float]] = {}


def load_reference(name: str) -> dict[str, Any]:
    """The reference dict stored in ``reference/<name>.pt`` (plain tensors, ints, floats, lists)."""
    return torch.load(REFERENCE_DIR / f"{name}.pt", map_location="cpu", weights_only=True)


def as_float64(tree: Any) -> Any:
    """Floating tensors of a stored input (kept there as exact float32 values) as float64."""
    if isinstance(tree, torch.Tensor):
        return tree.double() if tree.is_floating_point() else tree
    if isinstance(tree, dict):
        return {k: as_float64(v) for k, v in tree.items()}
    return tree


def assert_matches(actual: torch.Tensor, expected: torch.Tensor, what: str) -> None:
    """assert_close at RTOL/ATOL with equal shapes and dtypes; records the observed difference."""
    actual = actual.detach()
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} vs {expected.dtype}"
    if actual.is_floating_point() and actual.numel():
        diff = (actual - expected).abs()
        rel = (diff / expected.abs().clamp(min=ATOL)).max().item()
        previous = OBSERVED.get(what, (0.0, 0.0))
        OBSERVED[what] = (max(previous[0], diff.max().item()), max(previous[1], rel))
    torch.testing.assert_close(actual, expected, rtol=RTOL, atol=ATOL, msg=lambda m: f"{what}: {m}")
