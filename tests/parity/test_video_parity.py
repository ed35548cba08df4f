"""Parity of our SELFY block and MotionSqueeze module with the official code.

Two kinds of test:

- Committed reference tensors (always run, no checkout needed): tests/parity/reference/
  selfy_block.pt and motion_squeeze.pt hold fixed inputs, parameters (official names), outputs,
  gradients w.r.t. the input and every parameter, and (train mode) the updated BN statistics, made
  by running arunos728/SELFY@d6e1e00 ops/selfy.py SELFYBlock and arunos728/MotionSqueeze@e94684d
  resnet_TSM.py (ResNet.flow_computation + Flow_refinement) in float64; how, and with which
  patches, is in tests/parity/reference/README.md. Our modules get the same parameters through
  the state-dict mapping below and must reproduce every stored tensor at rtol 1e-6 / atol 1e-9.
- Whole networks (TSM-R50 and SELFY/MS variants, with the official ResNet around the blocks) are
  too large to store; ``test_full_model_matches_official`` (marker ``official_checkout``, not
  selected by default: `nox -s parity-official` runs it) runs them beside ours when these point
  at checkouts of the official repositories (nothing is vendored or built here;
  their modules are imported from those paths):

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

import copy
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
from tests.parity._reference import as_float64, assert_matches, load_reference

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
TOLERANCE = 1e-4  # full models, float32, ~50 conv layers; measured differences are far smaller


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
    """The official SELFY block as resnet_TSM builds it, and ours with the same random weights
    (used by tests/perf/test_video_models_perf.py)."""
    official = load_official_selfy_ops(root).SELFYBlock(
        channels, 128, num_segments=segments, window=[5, 9, 9],
        ext_chnls=[4, 16, 64, 64], int_chnls=[64, 64, 64, 64])
    ours = SELFYBlock(channels, 128, segments)
    randomize_(official)
    ours.load_state_dict(selfy_block_to_ours(official.state_dict()))
    return official, ours


@pytest.mark.official_checkout
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


# ------------------------------------------------------------ committed reference tensors


def selfy_block_to_ours(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official SELFYBlock names (stss_transformation.downsample.0.weight, ...) -> ours."""
    prefixed = official_to_ours({f"selfy.{k}": v for k, v in state.items()})
    return {k.removeprefix("backbone.motion."): v for k, v in prefixed.items()}


def motion_squeeze_to_ours(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official ResNet names (chnl_reduction.*, flow_refinement.conv1.*) -> our MotionSqueeze's."""
    return {k.removeprefix("backbone.motion."): v for k, v in official_to_ours(state).items()}


def _check_run(module: torch.nn.Module, ref: dict, expected: dict, to_ours, train: bool) -> None:
    """Forward + backward of ``module`` on the stored input; compare output and all gradients."""
    x = as_float64(ref["input"]).requires_grad_()
    out = module(x)
    assert_matches(out, expected["output"], f"{type(module).__name__}.{train=}.output")
    (out * as_float64(ref["cotangent"])).sum().backward()
    assert_matches(x.grad, expected["grad_input"], f"{type(module).__name__}.{train=}.grad_input")
    grads = {name: p.grad for name, p in module.named_parameters()}
    expected_grads = to_ours(expected["grad_params"])
    assert set(expected_grads) == set(grads), "every parameter has an official gradient"
    for name, grad in expected_grads.items():
        assert_matches(grads[name], grad, f"{type(module).__name__}.{train=}.grad.{name}")
    if train:  # BatchNorm running statistics after one training step
        state = module.state_dict()
        for name, value in to_ours(expected["buffers_after"]).items():
            if value.is_floating_point():
                assert_matches(state[name], value, f"{type(module).__name__}.buffer.{name}")
            else:
                assert torch.equal(state[name], value), name


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_selfy_block_matches_official_reference(train: bool) -> None:
    ref = load_reference("selfy_block")
    # official SELFYBlock(d_in, d_hid, num_segments, window, ext_chnls, int_chnls)
    cfg = ref["config"]
    ours = SELFYBlock(cfg["d_in"], cfg["d_hid"], cfg["num_segments"], window=tuple(cfg["window"]),
                      extraction_channels=tuple(cfg["ext_chnls"]),
                      integration_channels=tuple(cfg["int_chnls"])).double()
    ours.load_state_dict(selfy_block_to_ours(as_float64(ref["state"])))  # strict: every key maps
    ours.train(train)
    _check_run(ours, ref, ref["train" if train else "eval"], selfy_block_to_ours, train)


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_motion_squeeze_matches_official_reference(train: bool) -> None:
    ref = load_reference("motion_squeeze")
    # official resnet18(shift='TSM', num_segments, flow_estimation=1): 128 channels at layer2
    cfg = ref["config"]
    channels = ref["input_shape"][1]
    ours = MotionSqueeze(channels, num_segments=cfg["num_segments"], window=cfg["patch"],
                         temperature=cfg["temperature"]).double()
    ours.load_state_dict(motion_squeeze_to_ours(as_float64(ref["state"])))
    ours.train(train)
    expected = ref["train" if train else "eval"]
    # flow and confidence (ResNet.flow_computation) from a copy, so that BN statistics are
    # updated exactly once, by the forward below
    with torch.no_grad():
        flow, confidence = copy.deepcopy(ours).motion(as_float64(ref["input"]))
    assert_matches(flow, expected["flow"], f"MotionSqueeze.{train=}.flow")
    assert_matches(confidence, expected["confidence"], f"MotionSqueeze.{train=}.confidence")
    _check_run(ours, ref, expected, motion_squeeze_to_ours, train)

