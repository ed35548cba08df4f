"""Claims benchmark for URIE: does an enhancer trained only through a frozen recognizer's loss
recover the accuracy that recognizer loses on distorted images, on seen and unseen distortions?

A small-scale replay of the paper's setting on a generated fixture of a few shape classes (each
image a shape of random colour, position and size on a random texture, 32 x 32 px, so that the
recognizer has to read the shape):

1. a small CNN (reprolab.tasks.enhancement.SmallCNN) is trained on clean images, then frozen;
2. the test images are distorted once each: `seen` by one of the 15 ImageNet-C corruptions URIE
   trains on, `unseen` by one of the 4 it holds out, severity uniform 1-5 (as URIE's CUB sets);
3. URIE's SK-UNet (reprolab.models.urie) is trained in front of the frozen CNN with the CNN's
   cross-entropy on the enhanced image only, on training images drawn distorted (one of the 15
   seen corruptions or clean, severity 1-5: reprolab.data.corruptions.draw), as the official code,
   except for two choices of ours that make a few hundred steps enough: its last conv starts at
   zero (the enhancer starts as the identity; the official init is PyTorch's default) and
   batches of 16;
4. top-1 of the CNN alone and behind URIE on clean, seen and unseen test images.

Run:

    python -m reprolab.claims.urie [--seeds 0 1 2] [--threads 1] [--out table.md]

Prints a markdown table (mean +- std over seeds, and per seed). About 15-25 s per seed on one CPU
core; tests/claims/test_urie_claim.py runs one seed in CI.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from reprolab.claims.common import emit, parser
from reprolab.data import corruptions
from reprolab.data.fixtures.synthetic_images import (
    COLOURS,
    SHAPES,
    background,
    jitter_colour,
    shape_mask,
)

SIZE = 32             # the corruptions need at least 32 px per side
CLASSES = 4           # disc, square, triangle, cross
TRAIN_PER_CLASS = 60
TEST_PER_CLASS = 40
MEAN = torch.tensor((0.485, 0.456, 0.406)).view(1, 3, 1, 1)
STD = torch.tensor((0.229, 0.224, 0.225)).view(1, 3, 1, 1)


@dataclass(frozen=True)
class Setting:
    recognizer_epochs: int = 20
    recognizer_lr: float = 3e-3
    draws_per_image: int = 2      # distorted training draws per image: the pool the enhancer trains on
    enhancer_epochs: int = 5
    identity_start: bool = True   # the enhancer's last conv starts at zero: output = input at step 0
    enhancer_lr: float = 1e-3
    batch_size: int = 32
    enhancer_batch_size: int = 16  # more, smaller steps for the same compute


def shape_image(rng: np.random.Generator, k: int) -> np.ndarray:
    """Class k = shape k, in a random colour family, on a random texture."""
    image = background(rng, SIZE, SIZE)
    r = SIZE * rng.uniform(0.24, 0.34)
    cx, cy = rng.uniform(r, SIZE - r, size=2)
    mask = shape_mask(SHAPES[k], SIZE, SIZE, cx, cy, r, r * rng.uniform(0.85, 1.15))
    image[mask] = jitter_colour(rng, COLOURS[int(rng.integers(len(COLOURS)))])
    return np.clip(image, 0, 255).astype(np.uint8)


def make_split(seed: int, per_class: int, stream: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([seed, stream])
    labels = np.repeat(np.arange(CLASSES), per_class)
    return np.stack([shape_image(rng, int(k)) for k in labels]), labels


def distort(images: np.ndarray, seed: int, stream: int, names: tuple[str, ...], clean: bool) -> np.ndarray:
    """One (corruption, severity) draw per image, fixed by (seed, stream, image index)."""
    out = []
    for i, image in enumerate(images):
        rng = np.random.RandomState([seed, stream, i])
        name, severity = corruptions.draw(rng, names, clean=clean)
        out.append(image if name is None else corruptions.corrupt(image, name, severity, rng=rng))
    return np.stack(out)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(np.array(images, dtype=np.float32)).permute(0, 3, 1, 2) / 255.0
    return (x - MEAN) / STD  # the recognizer's normalised input space, as URIE's loaders


def _batches(n: int, batch_size: int, generator: torch.Generator):
    order = torch.randperm(n, generator=generator)
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


def train_recognizer(x: torch.Tensor, y: torch.Tensor, setting: Setting, seed: int):
    from reprolab.tasks.enhancement import SmallCNN

    torch.manual_seed(seed)
    model = SmallCNN(CLASSES, width=16)
    optimizer = torch.optim.Adam(model.parameters(), lr=setting.recognizer_lr)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(setting.recognizer_epochs):
        for index in _batches(len(x), setting.batch_size, generator):
            optimizer.zero_grad()
            F.cross_entropy(model(x[index]), y[index]).backward()
            optimizer.step()
    return model.eval().requires_grad_(False)


def train_enhancer(recognizer, x: torch.Tensor, y: torch.Tensor, setting: Setting, seed: int):
    from reprolab.models.urie import SKUNet

    torch.manual_seed(seed)
    enhancer = SKUNet()
    if setting.identity_start:  # ours, not the official init: few steps must not start from noise
        torch.nn.init.zeros_(enhancer.up3.weight)
        torch.nn.init.zeros_(enhancer.up3.bias)
    optimizer = torch.optim.Adam(enhancer.parameters(), lr=setting.enhancer_lr, weight_decay=1e-3)
    generator = torch.Generator().manual_seed(seed + 1)
    enhancer.train()
    for _ in range(setting.enhancer_epochs):
        for index in _batches(len(x), setting.enhancer_batch_size, generator):
            optimizer.zero_grad()
            enhanced, _ = enhancer(x[index])
            F.cross_entropy(recognizer(enhanced), y[index]).backward()  # the recognizer's loss only
            optimizer.step()
    return enhancer.eval()


@torch.no_grad()
def accuracy(recognizer, x: torch.Tensor, y: torch.Tensor, enhancer=None) -> float:
    if enhancer is not None:
        x = enhancer(x)[0]
    return 100.0 * (recognizer(x).argmax(1) == y).float().mean().item()


def measure(seed: int, setting: Setting = Setting()) -> dict[str, float]:
    """Top-1 of the frozen recognizer alone (`baseline_*`) and behind URIE on clean / seen / unseen."""
    started = time.perf_counter()
    train_images, train_labels = make_split(seed, TRAIN_PER_CLASS, 0)
    test_images, test_labels = make_split(seed, TEST_PER_CLASS, 1)
    y_train, y_test = torch.from_numpy(train_labels), torch.from_numpy(test_labels)
    recognizer = train_recognizer(to_tensor(train_images), y_train, setting, seed)
    pool = np.concatenate([distort(train_images, seed, 10 + d, corruptions.SEEN, clean=True)
                           for d in range(setting.draws_per_image)])
    enhancer = train_enhancer(recognizer, to_tensor(pool), y_train.repeat(setting.draws_per_image), setting, seed)
    sets = {"clean": test_images,
            "seen": distort(test_images, seed, 2, corruptions.SEEN, clean=False),
            "unseen": distort(test_images, seed, 3, corruptions.UNSEEN, clean=False)}
    metrics = {}
    for name, images in sets.items():
        x = to_tensor(images)
        metrics[f"baseline_top1_{name}"] = accuracy(recognizer, x, y_test)
        metrics[f"top1_{name}"] = accuracy(recognizer, x, y_test, enhancer)
    metrics["wall_s"] = time.perf_counter() - started
    return metrics


def run(seeds: Sequence[int], threads: int | None = None) -> tuple[str, dict[int, dict[str, float]]]:
    if threads:
        torch.set_num_threads(threads)
    per_seed = {}
    for seed in seeds:
        per_seed[seed] = measure(seed)
        shown = ", ".join(f"{k} {v:.1f}" for k, v in per_seed[seed].items())
        print(f"seed {seed}: {shown}", file=sys.stderr, flush=True)
    rows = []
    for name in ("clean", "seen", "unseen"):
        for label, key in (("recognizer alone", f"baseline_top1_{name}"), ("+ URIE", f"top1_{name}")):
            scores = [per_seed[s][key] for s in seeds]
            std = statistics.stdev(scores) if len(scores) > 1 else 0.0
            rows.append([name, label, f"{statistics.mean(scores):.1f} ± {std:.1f}",
                         " / ".join(f"{s:.1f}" for s in scores)])
    from tabulate import tabulate

    table = tabulate(rows, headers=["test images", "model", f"top-1 % (mean ± std, {len(seeds)} seeds)",
                                    "per seed"], tablefmt="github")
    return table, per_seed


def main(argv: Sequence[str] | None = None) -> int:
    p = parser("reprolab.claims.urie", __doc__)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = p.parse_args(argv)
    return emit("reprolab.claims.urie", lambda: run(args.seeds, args.threads)[0], args.out)


if __name__ == "__main__":
    sys.exit(main())
