"""Training throughput and peak memory per model, ours beside the official model code (issue 16, section 1).

    python benchmarks/perf/gpu_train.py                      # a GPU: the paper sizes (< 8 minutes on one)
    python benchmarks/perf/gpu_train.py --tiny               # CPU: tiny sizes, a check that it runs
    python benchmarks/perf/gpu_train.py --models tsm_r50 --no-compile --steps 10

Models: TSM-R50, SELFY-TSM-R50 and MS-TSM-R50 (8 frames at 224, 174 classes, SGD) and the
BN-Inception / ResNet-50 embedding models of Proxy Anchor (224, 512-d, Proxy-Anchor loss, AdamW).
One training step = forward, loss, backward, optimizer step on random inputs (the data path is
measured apart). For each model the rows are ours with: float32; bf16 autocast; + channels_last;
+ fused optimizer; + torch.compile (--no-compile drops it); and the official model at float32 and
bf16 when its code is there. cudnn.benchmark is on for every GPU row (--no-cudnn-benchmark: off).
Columns: clips (images) per second over the timed steps, after warm-up; peak memory
(torch.cuda.max_memory_allocated on a GPU; on CPU the resident memory above the level at the
row's start, which the allocator's reuse of earlier rows' memory makes approximate); ratio to our
float32 row.

The official model code is not part of this repository. To compare with it, check the official
repositories out into a scratch folder outside the repository and point these at them:

    REPROLAB_OFFICIAL_SELFY=...          arunos728/SELFY (ops/resnet_TSM.py: TSM-R50 and SELFY-TSM-R50; needs einops)
    REPROLAB_OFFICIAL_MS=...             arunos728/MotionSqueeze (resnet_TSM.py; its pure-PyTorch
                                         Matching_layer_mm stands in for the CUDA spatial_correlation_sampler)
    REPROLAB_OFFICIAL_PROXY_ANCHOR=...   tjddus9597/Proxy-Anchor-CVPR2020 (code/net/bn_inception.py, code/net/resnet.py)

A variable that is unset, or code that does not import, skips that model's official rows and
says why. Needs only torch, torchvision and this package's models (no data extras); the video
official loaders come from tests/parity/test_video_parity.py (pytest must be importable).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from benchmarks.perf.memory import PeakRSS  # noqa: E402

VIDEO = {"tsm_r50": "tsm_resnet50", "selfy_tsm_r50": "selfy_tsm_resnet50", "ms_tsm_r50": "ms_tsm_resnet50"}
EMBEDDING = {"bn_inception": "bn_inception", "resnet50_embedding": "resnet50"}
MODELS = (*VIDEO, *EMBEDDING)


@dataclass(frozen=True)
class Sizes:
    clips: int  # video: clips per step; embedding: images per step
    frames: int
    size: int
    classes: int
    width: float  # video width multiplier (1.0 = R50)


FULL = {"video": Sizes(8, 8, 224, 174, 1.0), "embedding": Sizes(64, 1, 224, 100, 1.0)}
TINY = {"video": Sizes(2, 8, 64, 10, 0.25), "embedding": Sizes(4, 1, 96, 10, 1.0)}


@dataclass(frozen=True)
class Variant:
    name: str
    bf16: bool = False
    channels_last: bool = False
    fused: bool = False
    compile: bool = False
    official: bool = False


OURS = (
    Variant("ours fp32"),
    Variant("ours bf16", bf16=True),
    Variant("ours bf16+cl", bf16=True, channels_last=True),
    Variant("ours bf16+cl+fused", bf16=True, channels_last=True, fused=True),
    Variant("ours bf16+cl+fused+compile", bf16=True, channels_last=True, fused=True, compile=True),
)
OFFICIAL = (Variant("official fp32", official=True), Variant("official bf16", bf16=True, official=True))


class Skip(Exception):
    """This row cannot run here; the message says why."""


# ------------------------------------------------------------------------------ models


def _video_official(model: str, classes: int, frames: int) -> Callable:
    """The official network as (module, forward(frames (B*T, 3, H, W)) -> (B*T, classes))."""
    try:
        from tests.parity import test_video_parity as parity
    except ImportError as error:
        raise Skip(f"tests/parity is not importable ({error})") from None
    var = "REPROLAB_OFFICIAL_MS" if model == "ms_tsm_r50" else "REPROLAB_OFFICIAL_SELFY"
    root = os.environ.get(var)
    if not root:
        raise Skip(f"{var} is not set")
    motion = 0 if model == "tsm_r50" else 1
    try:
        if model == "ms_tsm_r50":
            module = parity.load_official_ms(Path(root))
            net = module.resnet50(False, shift="TSM", num_segments=frames, flow_estimation=motion,
                                  num_classes=classes)
            net.matching_layer = module.Matching_layer_mm(patch=15)
            return net, lambda x: net(x, 100)
        net = parity.load_official_selfy_ops(Path(root)).resnet50(
            False, shift="TSM", num_segments=frames, flow_estimation=motion, num_classes=classes)
        return net, net
    except BaseException as error:  # noqa: BLE001 - pytest's Skipped (einops missing) is a BaseException
        if isinstance(error, KeyboardInterrupt):
            raise
        raise Skip(f"official code in {root} did not load: {type(error).__name__}: {error}") from None


def _embedding_official(model: str) -> torch.nn.Module:
    root = os.environ.get("REPROLAB_OFFICIAL_PROXY_ANCHOR")
    if not root:
        raise Skip("REPROLAB_OFFICIAL_PROXY_ANCHOR is not set")
    code = str(Path(root) / "code")
    sys.path.insert(0, code)
    try:
        if model == "bn_inception":
            return importlib.import_module("net.bn_inception").bn_inception(
                512, pretrained=False, is_norm=True, bn_freeze=True)
        return importlib.import_module("net.resnet").Resnet50(512, pretrained=False, is_norm=True, bn_freeze=True)
    except Exception as error:  # noqa: BLE001
        raise Skip(f"official code in {root} did not load: {type(error).__name__}: {error}") from None
    finally:
        sys.path.remove(code)


def build(model: str, variant: Variant, sizes: Sizes, device: torch.device):
    """(module, step inputs, loss(module, inputs), optimizer-parameter groups, optimizer kind)."""
    g = torch.Generator().manual_seed(0)
    if model in VIDEO:
        clips = torch.randn(sizes.clips, sizes.frames, 3, sizes.size, sizes.size, generator=g)
        labels = torch.randint(0, sizes.classes, (sizes.clips,), generator=g)
        if variant.official:
            net, forward = _video_official(model, sizes.classes, sizes.frames)

            def loss(module, batch):  # TSN average consensus over the frames, as the official code
                x, y = batch
                logits = forward(x.flatten(0, 1)).view(x.shape[0], x.shape[1], -1).mean(1)
                return F.cross_entropy(logits, y)
        else:
            from reprolab.models import create_model

            net = create_model(VIDEO[model], num_classes=sizes.classes, num_segments=sizes.frames,
                               width_multiplier=sizes.width)

            def loss(module, batch):
                x, y = batch
                return F.cross_entropy(module(x), y)
        return net, (clips, labels), loss, [{"params": list(net.parameters())}], "sgd"

    from reprolab.models.losses import ProxyAnchorLoss

    images = torch.randn(sizes.clips, 3, sizes.size, sizes.size, generator=g) * 50
    labels = torch.randint(0, sizes.classes, (sizes.clips,), generator=g)
    if variant.official:
        net = _embedding_official(model)
    else:
        from reprolab.models.embedding import build_embedding_model

        net = build_embedding_model(EMBEDDING[model], 512, freeze_bn=True)
    criterion = ProxyAnchorLoss(sizes.classes, 512).to(device)

    def loss(module, batch):
        x, y = batch
        return criterion(module(x), y)

    groups = [{"params": [p for p in net.parameters() if p.requires_grad]},
              {"params": list(criterion.parameters()), "lr": 1e-2}]
    return net, (images, labels), loss, groups, "adamw"


# ----------------------------------------------------------------------------- measuring


def measure(model: str, variant: Variant, sizes: Sizes, device: torch.device, warmup: int, steps: int):
    """(clips per second, peak MiB)."""
    from reprolab.engine.loop import channels_last_

    net, batch, loss_fn, groups, kind = build(model, variant, sizes, device)
    net = net.to(device).train()
    if variant.channels_last:
        channels_last_(net)
    x, y = batch[0].to(device), batch[1].to(device)
    if variant.channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    fused = {"fused": True} if variant.fused else {}
    try:
        if kind == "sgd":
            optimizer = torch.optim.SGD(groups, lr=0.01, momentum=0.9, weight_decay=5e-4, **fused)
        else:
            optimizer = torch.optim.AdamW(groups, lr=1e-4, weight_decay=1e-4, **fused)
    except (RuntimeError, TypeError, ValueError) as error:
        raise Skip(f"fused {kind} is not available here: {error}") from None
    module = torch.compile(net) if variant.compile else net
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if variant.bf16
                else contextlib.nullcontext())
    on_gpu = device.type == "cuda"

    def step() -> None:
        with autocast:
            loss = loss_fn(module, (x, y))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def sync() -> None:
        if on_gpu:
            torch.cuda.synchronize(device)

    if on_gpu:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    with PeakRSS() as rss:
        for _ in range(warmup):  # compile, cudnn autotuning, allocator, optimizer state
            step()
        sync()
        start = time.perf_counter()
        for _ in range(steps):
            step()
        sync()
        elapsed = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if on_gpu else rss.extra_mib
    return steps * sizes.clips / elapsed, peak


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="tiny sizes (CPU check; numbers mean little)")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--warmup", type=int, default=None, help="default: 5 on a GPU, 1 on CPU")
    parser.add_argument("--steps", type=int, default=None, help="default: 20 on a GPU, 2 on CPU")
    parser.add_argument("--no-compile", action="store_true", help="leave out the torch.compile rows")
    parser.add_argument("--no-official", action="store_true", help="leave out the official rows")
    parser.add_argument("--no-cudnn-benchmark", action="store_true")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    on_gpu = device.type == "cuda"
    warmup = args.warmup if args.warmup is not None else (5 if on_gpu else 1)
    steps = args.steps if args.steps is not None else (20 if on_gpu else 2)
    torch.backends.cudnn.benchmark = on_gpu and not args.no_cudnn_benchmark
    sizes_of = TINY if args.tiny else FULL
    name = torch.cuda.get_device_name(device) if on_gpu else f"CPU, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__} on {name}; {'tiny' if args.tiny else 'full'} sizes; "
          f"cudnn.benchmark={torch.backends.cudnn.benchmark}; {warmup} warm-up + {steps} timed steps")
    variants = [v for v in OURS if not (v.compile and args.no_compile)]
    if not args.no_official:
        variants += OFFICIAL
    print("\n| model | batch | variant | clips/s | peak MiB | x ours fp32 |\n|---|---|---|---|---|---|")
    for model in args.models:
        sizes = sizes_of["video" if model in VIDEO else "embedding"]
        batch = (f"{sizes.clips}x{sizes.frames}x{sizes.size}^2" if model in VIDEO
                 else f"{sizes.clips}x{sizes.size}^2")
        base = None
        for variant in variants:
            try:
                rate, peak = measure(model, variant, sizes, device, warmup, steps)
            except Skip as why:
                print(f"| {model} | {batch} | {variant.name} | skipped: {why} | | |", flush=True)
                continue
            base = base or rate
            print(f"| {model} | {batch} | {variant.name} | {rate:.1f} | {peak:.0f} | {rate / base:.2f} |",
                  flush=True)
            if on_gpu:
                torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
