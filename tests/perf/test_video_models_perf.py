"""Speed of the SELFY block and the MotionSqueeze module (forward + backward), ours vs official.

Run: pytest tests/perf/test_video_models_perf.py -m benchmark --benchmark-only
The official side runs only when REPROLAB_OFFICIAL_SELFY / REPROLAB_OFFICIAL_MS point at the
official checkouts (see tests/parity/test_video_parity.py); it uses their pure-PyTorch
correlation (SELFY's einsum + `_corr_abs_to_rel` fallback, MotionSqueeze's `Matching_layer_mm`).
Both sides run in one session on the same input, so pytest-benchmark's table gives the ratio;
`extra_info["official_over_ours"]` records it too (medians of interleaved runs in one test).
The `*_only` tests time just the part where the two differ (the correlation).

Also records the FLOPs per clip of the R50 models (torch.utils.flop_counter, which counts a
multiply-add as 2 FLOPs; the papers' thop figures are MACs = FLOPs / 2).
"""

from __future__ import annotations

import statistics
import time

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from reprolab.models import create_model
from reprolab.models.video.correlation import l2_normalize, local_correlation
from reprolab.models.video.motion_squeeze import MotionSqueeze
from reprolab.models.video.stss import SELFYBlock
from tests.parity.test_video_parity import (
    _block_pair_selfy,
    _checkout,
    load_official_ms,
    official_to_ours,
    randomize_,
)

pytestmark = pytest.mark.benchmark

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
CLIPS, SEGMENTS, CHANNELS, SIZE = 2, 8, 512, 28  # R50 layer2 output for 2 clips of 8 x 224^2


@pytest.fixture(autouse=True)
def _only_when_selected(request):
    if "benchmark" not in (request.config.getoption("markexpr") or "").replace("not benchmark", ""):
        pytest.skip("benchmark: run with -m benchmark")


def _sync() -> None:
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def _step(forward, x: torch.Tensor, grad: torch.Tensor):
    def run() -> None:
        x.grad = None
        forward(x).backward(grad)
        _sync()

    return run


def _ratio(official, ours, repeats: int = 5) -> float:
    """Median time of official / median time of ours, runs interleaved so load drifts cancel."""
    official(), ours()  # warm-up
    times: dict[str, list[float]] = {"official": [], "ours": []}
    for _ in range(repeats):
        for name, run in (("official", official), ("ours", ours)):
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return statistics.median(times["official"]) / statistics.median(times["ours"])


def _inputs():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(CLIPS * SEGMENTS, CHANNELS, SIZE, SIZE, generator=g).to(DEVICE).requires_grad_()
    grad = torch.randn(x.shape, generator=g).to(DEVICE)
    return x, grad


def _official_selfy():
    official, ours = _block_pair_selfy(_checkout("REPROLAB_OFFICIAL_SELFY"), CHANNELS, SEGMENTS)
    return official.train().to(DEVICE), ours.train().to(DEVICE)


def _official_ms():
    module = load_official_ms(_checkout("REPROLAB_OFFICIAL_MS"))
    official = module.resnet50(False, shift="TSM", num_segments=SEGMENTS, flow_estimation=1)
    official.matching_layer = module.Matching_layer_mm(patch=15)
    randomize_(official)
    ours = MotionSqueeze(CHANNELS, SEGMENTS)
    ours.load_state_dict({k.removeprefix("backbone.motion."): v
                          for k, v in official_to_ours(official.state_dict()).items()
                          if k.startswith("backbone.motion.")})

    def official_forward(x):
        flow, confidence = official.flow_computation(x, temperature=100)
        return official.flow_refinement(flow, x, confidence)

    return official.train().to(DEVICE), official_forward, ours.train().to(DEVICE)


def test_selfy_block_ours(benchmark) -> None:
    block = SELFYBlock(CHANNELS, 128, SEGMENTS).train().to(DEVICE)
    torch.nn.init.ones_(block.integration.restore_bn.weight)
    x, grad = _inputs()
    benchmark.group = "selfy-block fwd+bwd"
    benchmark(_step(block, x, grad))


def test_selfy_block_official(benchmark) -> None:
    official, ours = _official_selfy()
    x, grad = _inputs()
    ratio = _ratio(_step(official, x, grad), _step(ours, x, grad))
    benchmark.group = "selfy-block fwd+bwd"
    benchmark.extra_info["official_over_ours"] = round(ratio, 3)
    print(f"\nSELFY block fwd+bwd on {DEVICE}: official / ours = {ratio:.2f}")
    benchmark(_step(official, x, grad))


def test_motion_squeeze_ours(benchmark) -> None:
    ms = MotionSqueeze(CHANNELS, SEGMENTS).train().to(DEVICE)
    x, grad = _inputs()
    benchmark.group = "motion-squeeze fwd+bwd"
    benchmark(_step(ms, x, grad))


def test_motion_squeeze_official(benchmark) -> None:
    _, official_forward, ours = _official_ms()
    x, grad = _inputs()
    ratio = _ratio(_step(official_forward, x, grad), _step(ours, x, grad))
    benchmark.group = "motion-squeeze fwd+bwd"
    benchmark.extra_info["official_over_ours"] = round(ratio, 3)
    print(f"\nMotionSqueeze fwd+bwd on {DEVICE}: official / ours = {ratio:.2f}")
    benchmark(_step(official_forward, x, grad))


def test_ms_correlation_only(benchmark) -> None:
    """The part the implementations differ in: ours (banded rows) vs official Matching_layer_mm."""
    module = load_official_ms(_checkout("REPROLAB_OFFICIAL_MS"))
    official = module.Matching_layer_mm(patch=15)
    g = torch.Generator().manual_seed(0)
    pairs = CLIPS * (SEGMENTS - 1)
    current = torch.randn(pairs, 64, SIZE, SIZE, generator=g).to(DEVICE).requires_grad_()
    following = torch.randn(pairs, 64, SIZE, SIZE, generator=g).to(DEVICE)
    grad = torch.randn(pairs, 225, SIZE * SIZE, generator=g).to(DEVICE)

    def ours(x):
        corr = local_correlation(l2_normalize(x), l2_normalize(following), (15, 15))
        return F.relu(corr).reshape(pairs, 225, SIZE * SIZE)

    ratio = _ratio(_step(lambda x: official(x, following), current, grad),
                   _step(ours, current, grad))
    benchmark.group = "ms correlation fwd+bwd"
    benchmark.extra_info["official_over_ours"] = round(ratio, 3)
    print(f"\nMS correlation fwd+bwd on {DEVICE}: official / ours = {ratio:.2f}")
    benchmark(_step(ours, current, grad))


def test_selfy_transformation_only(benchmark) -> None:
    """STSS transformation (reduce conv + correlation): ours vs the official einsum fallback."""
    official, ours = _official_selfy()
    x, _ = _inputs()
    grad = torch.randn(ours.transformation(x).shape, generator=torch.Generator().manual_seed(1))
    grad = grad.to(DEVICE)
    official_forward = lambda x: official.stss_transformation(x).squeeze(4)  # noqa: E731  (b t h w 1 l u v)
    ratio = _ratio(_step(official_forward, x, grad), _step(ours.transformation, x, grad))
    benchmark.group = "selfy transformation fwd+bwd"
    benchmark.extra_info["official_over_ours"] = round(ratio, 3)
    print(f"\nSELFY transformation fwd+bwd on {DEVICE}: official / ours = {ratio:.2f}")
    benchmark(_step(ours.transformation, x, grad))


@pytest.mark.parametrize("segments", [8, 16])
@pytest.mark.parametrize("name", ["tsm_resnet50", "selfy_tsm_resnet50", "ms_tsm_resnet50"])
def test_flops_per_clip(benchmark, name: str, segments: int) -> None:
    with torch.device("meta"):  # shapes only: counts without computing
        model = create_model(name, num_classes=174, num_segments=segments).eval()
        clip = torch.empty(1, segments, 3, 224, 224)
    counter = FlopCounterMode(display=False)

    def count() -> int:
        with counter, torch.no_grad():
            model(clip)
        return counter.get_total_flops()

    flops = benchmark.pedantic(count, rounds=1, iterations=1)
    benchmark.group = "flops per clip (meta device)"
    benchmark.extra_info.update(
        gflops=round(flops / 1e9, 2), gmacs=round(flops / 2e9, 2),
        params_m=round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
    )
    print(f"\n{name} {segments}x224^2: {flops / 2e9:.2f} GMACs ({flops / 1e9:.2f} GFLOPs)")
