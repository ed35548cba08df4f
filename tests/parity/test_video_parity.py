"""Parity with the official SELFY and MotionSqueeze code, run beside ours on the same input.

Skipped unless these point at checkouts of the official repositories (nothing is vendored or
built here; their modules are imported from those paths):

    REPROLAB_OFFICIAL_SELFY=/path/to/arunos728/SELFY          (needs `einops` importable)
    REPROLAB_OFFICIAL_MS=/path/to/arunos728/MotionSqueeze

Both use their pure-PyTorch correlation: SELFY falls back to it when `spatial_correlation_sampler`
is missing; for MotionSqueeze the test swaps in its `Matching_layer_mm` (a stand-in module is
registered when the compiled sampler is not installed). Their fallbacks hard-code
`device='cuda'`: on a machine without CUDA, point the variables at a copy where `'cuda'` is
replaced by `'cpu'` (e.g. `sed -i "s/'cuda'/'cpu'/g" ops/selfy.py` in SELFY, `resnet_TSM.py`
in MotionSqueeze).
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
import types
from pathlib import Path

import pytest
import torch

from reprolab.models import create_model
from reprolab.models.video.motion_squeeze import MotionSqueeze
from reprolab.models.video.stss import SELFYBlock

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
TOLERANCE = 1e-4  # float32, after ~50 conv layers; measured differences are far smaller


def _checkout(var: str) -> Path:
    path = os.environ.get(var)
    if not path:
        pytest.skip(f"set {var} to an official checkout to run parity tests")
    return Path(path)


def load_official_selfy_ops(root: Path) -> types.ModuleType:
    """Import SELFY's ``ops`` package (ops/resnet_TSM.py, ops/selfy.py) under a private name."""
    pytest.importorskip("einops")
    name = "official_selfy_ops"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, root / "ops" / "__init__.py", submodule_search_locations=[str(root / "ops")]
        )
        package = importlib.util.module_from_spec(spec)
        sys.modules[name] = package
        spec.loader.exec_module(package)
    return importlib.import_module(f"{name}.resnet_TSM")


def load_official_ms(root: Path) -> types.ModuleType:
    """Import MotionSqueeze's ``resnet_TSM.py`` (flat layout) under a private name."""
    name = "official_ms_resnet_tsm"
    if name in sys.modules:
        return sys.modules[name]
    if importlib.util.find_spec("spatial_correlation_sampler") is None:
        stand_in = types.ModuleType("spatial_correlation_sampler")

        class SpatialCorrelationSampler(torch.nn.Module):  # replaced by Matching_layer_mm below
            def __init__(self, *args, **kwargs):
                super().__init__()

            def forward(self, *args):
                raise RuntimeError("compiled correlation sampler is not installed")

        stand_in.SpatialCorrelationSampler = SpatialCorrelationSampler
        sys.modules["spatial_correlation_sampler"] = stand_in
    sys.path.insert(0, str(root))  # for its `from tsm_util import tsm`
    try:
        spec = importlib.util.spec_from_file_location(name, root / "resnet_TSM.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(root))
    return module


# Official state-dict names -> ours (full models: official ResNet -> our TSN).
RENAMES = [
    (r"^(conv1|bn1|layer[1-4])\.", r"backbone.\1."),
    (r"^selfy\.stss_transformation\.downsample\.", "backbone.motion.transformation.reduce."),
    (r"^selfy\.stss_extraction\.conv(\d)\.", r"backbone.motion.extraction.convs.\1."),
    (r"^selfy\.stss_integration\.conv([0-2])\.", r"backbone.motion.integration.convs.\1."),
    (r"^selfy\.stss_integration\.conv3_fuse\.1\.", "backbone.motion.integration.fuse.0."),
    (r"^selfy\.stss_integration\.conv3_fuse\.2\.", "backbone.motion.integration.fuse.1."),
    (r"^selfy\.stss_integration\.upsample\.0\.", "backbone.motion.integration.restore."),
    (r"^selfy\.stss_integration\.upsample\.1\.", "backbone.motion.integration.restore_bn."),
    (r"^chnl_reduction\.", "backbone.motion.reduce."),
    (r"^fc1\.", "fc."),
]
UNUSED_OFFICIAL = {"bn2.weight", "bn2.bias", "bn2.running_mean", "bn2.running_var",
                   "bn2.num_batches_tracked"}  # MS ResNet's bn2 is never called


def official_to_ours(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in state.items():
        if key in UNUSED_OFFICIAL:
            continue
        match = re.match(r"^flow_refinement\.conv(\d)\.(.*)$", key)
        if match:
            new = f"backbone.motion.transform.{int(match[1]) - 1}.{match[2]}"
        else:
            new = key
            for pattern, replacement in RENAMES:
                new, n = re.subn(pattern, replacement, new)
                if n:
                    break
        out[new] = value.squeeze(-1) if new == "fc.weight" else value  # Conv1d -> Linear
    return out


def randomize_(model: torch.nn.Module, seed: int = 0) -> None:
    """Random weights and BN statistics, so that no zero-init hides a difference."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if not tensor.is_floating_point():
                continue
            if name.endswith("running_var") or (name.endswith("weight") and tensor.dim() == 1):
                tensor.copy_(0.5 + torch.rand(tensor.shape, generator=g))
            elif name.endswith(("running_mean", "bias")):
                tensor.copy_(0.1 * torch.randn(tensor.shape, generator=g))
            else:
                fan_in = tensor[0].numel()
                tensor.copy_(torch.randn(tensor.shape, generator=g) * (2.0 / fan_in) ** 0.5)


def _block_pair_selfy(root: Path, channels: int, segments: int):
    official = load_official_selfy_ops(root).SELFYBlock(
        channels, 128, num_segments=segments, window=[5, 9, 9],
        ext_chnls=[4, 16, 64, 64], int_chnls=[64, 64, 64, 64])
    ours = SELFYBlock(channels, 128, segments)
    randomize_(official)
    state = {k.removeprefix("backbone.motion."): v
             for k, v in official_to_ours({f"selfy.{k}": v for k, v in official.state_dict().items()}).items()}
    ours.load_state_dict(state)
    return official, ours


@pytest.mark.parametrize("train", [False, True])
def test_selfy_block_matches_official(train: bool) -> None:
    official, ours = _block_pair_selfy(_checkout("REPROLAB_OFFICIAL_SELFY"), 512, 8)
    official.train(train).to(DEVICE)
    ours.train(train).to(DEVICE)
    x = torch.randn(2 * 8, 512, 28, 28, generator=torch.Generator().manual_seed(1)).to(DEVICE)
    x_ours = x.clone().requires_grad_()
    x_official = x.clone().requires_grad_()
    out_ours, out_official = ours(x_ours), official(x_official)
    assert (out_ours - out_official).abs().max().item() < TOLERANCE
    weight = torch.randn_like(out_ours)
    (out_ours * weight).sum().backward()
    (out_official * weight).sum().backward()
    assert (x_ours.grad - x_official.grad).abs().max().item() < TOLERANCE


@pytest.mark.parametrize("train", [False, True])
def test_motion_squeeze_matches_official(train: bool) -> None:
    module = load_official_ms(_checkout("REPROLAB_OFFICIAL_MS"))
    official = module.resnet50(False, shift="TSM", num_segments=8, flow_estimation=1)
    official.matching_layer = module.Matching_layer_mm(patch=15)
    randomize_(official)
    ours = MotionSqueeze(512, num_segments=8)
    state = {k.removeprefix("backbone.motion."): v
             for k, v in official_to_ours(official.state_dict()).items()
             if k.startswith("backbone.motion.")}
    ours.load_state_dict(state)
    official.train(train).to(DEVICE)
    ours.train(train).to(DEVICE)
    x = torch.randn(2 * 8, 512, 28, 28, generator=torch.Generator().manual_seed(2)).to(DEVICE)
    flow_official, conf_official = official.flow_computation(x, temperature=100)
    out_official = official.flow_refinement(flow_official, x, conf_official)
    flow_ours, conf_ours = ours.motion(x)
    assert (flow_ours - flow_official).abs().max().item() < TOLERANCE
    assert (conf_ours - conf_official).abs().max().item() < TOLERANCE
    assert (ours(x) - out_official).abs().max().item() < TOLERANCE


@pytest.mark.parametrize(
    ("name", "var", "depth"),
    [
        ("selfy_tsm_resnet50", "REPROLAB_OFFICIAL_SELFY", "resnet50"),
        ("tsm_resnet50", "REPROLAB_OFFICIAL_SELFY", "resnet50"),
        ("ms_tsm_resnet18", "REPROLAB_OFFICIAL_MS", "resnet18"),
        ("ms_tsm_resnet50", "REPROLAB_OFFICIAL_MS", "resnet50"),
    ],
)
def test_full_model_matches_official(name: str, var: str, depth: str) -> None:
    root = _checkout(var)
    motion = 0 if name.startswith("tsm") else 1
    if var == "REPROLAB_OFFICIAL_MS":
        module = load_official_ms(root)
        official = getattr(module, depth)(False, shift="TSM", num_segments=8,
                                          flow_estimation=motion, num_classes=10)
        official.matching_layer = module.Matching_layer_mm(patch=15)
        run_official = lambda x: official(x, 100)  # noqa: E731
    else:
        official = getattr(load_official_selfy_ops(root), depth)(
            False, shift="TSM", num_segments=8, flow_estimation=motion, num_classes=10)
        run_official = official
    randomize_(official)
    ours = create_model(name, num_classes=10, num_segments=8)
    ours.load_state_dict(official_to_ours(official.state_dict()))
    official.eval().to(DEVICE)
    ours.eval().to(DEVICE)
    clips = torch.randn(1, 8, 3, 112, 112, generator=torch.Generator().manual_seed(3)).to(DEVICE)
    with torch.no_grad():
        expected = run_official(clips.flatten(0, 1)).view(1, 8, 10).mean(1)  # + avg consensus
        got = ours(clips)
    scale = expected.abs().max().item()
    assert (got - expected).abs().max().item() < TOLERANCE * max(1.0, scale)
