"""Claims benchmark: does Proxy Anchor converge faster and reach higher Recall@1 than pair-based
and proxy-based losses? (Kim et al., CVPR 2020, Fig. 1 and Tables 2-4.)

A small-scale replay on real images that ship with scikit-learn: the 8x8 handwritten digits.
Classes 0-4 train the embedding; retrieval is tested on the unseen classes 5-9 (the zero-shot
protocol of CUB/Cars, where train and test classes are disjoint). Every loss gets the same
network, optimizer (AdamW, as the official code), batch size, epochs and seeds; the loss
parameters (proxies) get the official learning-rate multipliers (x100 for Proxy Anchor, x1 for
Proxy-NCA). A sixth row, ``proxy_anchor_lr1``, trains Proxy Anchor's proxies at x1, the fairness
question of official issue #28. Chance Recall@1 on 5 balanced classes is about 20%.

Run: ``python -m reprolab.claims.metric_learning [--seeds 0 1 2] [--epochs 15] [--out table.md]``
(about a minute on 2 CPU cores). Prints a markdown table of test Recall@1 per epoch, mean +- std
over seeds. Not run in CI; tests/claims runs a one-seed, few-epoch version.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from reprolab.metrics.retrieval import recall_at_k
from reprolab.models.embedding import EmbeddingModel, param_groups
from reprolab.models.losses import build_loss

LOSSES = ("proxy_anchor", "proxy_nca", "multi_similarity", "triplet", "contrastive")
VARIANTS = {"proxy_anchor_lr1": "proxy_anchor"}  # extra rows: same loss, changed setting
TRAIN_CLASSES, TEST_CLASSES = (0, 1, 2, 3, 4), (5, 6, 7, 8, 9)
# Plain 8x8 digits are solved by raw-pixel nearest neighbours (test Recall@1 99.1%), so no loss
# could show an advantage. Each digit is therefore placed at a random position of a noisy 24x24
# canvas (raw-pixel Recall@1 then drops to about 50%): new positions every training epoch, one
# fixed placement (seed 12345) for the test set.
CANVAS, NOISE, TEST_PLACEMENT_SEED = 24, 0.5, 12345


class DigitsCNN(nn.Module):
    """Three conv-BN-ReLU stages; the embedding head pools the last (6 x 6) map."""

    feature_dim = 128
    input_config = {"channel_order": "RGB", "scale": 1.0, "mean": (0.0,), "std": (1.0,)}

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 128, 3, padding=1), nn.BatchNorm2d(128), nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def load_digits_split() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Digits 0-4 for training and 5-9 for testing, as (N, 1, 8, 8) images in [0, 1]."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32)[:, None] / 16.0
    labels = torch.tensor(digits.target, dtype=torch.long)
    train = torch.isin(labels, torch.tensor(TRAIN_CLASSES))
    test = torch.isin(labels, torch.tensor(TEST_CLASSES))
    return images[train], labels[train], images[test], labels[test] - len(TRAIN_CLASSES)


def place_on_canvas(images: torch.Tensor, generator: torch.Generator, canvas: int = CANVAS,
                    noise: float = NOISE) -> torch.Tensor:
    """Each 8x8 digit at a random position of a ``canvas``-sized image, plus uniform noise."""
    n = len(images)
    out = noise * torch.rand(n, 1, canvas, canvas, generator=generator)
    rows, cols = torch.randint(0, canvas - 7, (2, n), generator=generator)
    for i in range(n):
        out[i, :, rows[i] : rows[i] + 8, cols[i] : cols[i] + 8] += images[i]
    return out


@torch.no_grad()
def heldout_recall_at_1(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    model.eval()
    embeddings = model(images)
    model.train()
    return recall_at_k(embeddings, labels, ks=(1,))["recall@1"]


def train_one(loss_name: str, seed: int, epochs: int, batch_size: int = 60, lr: float = 1e-3,
              embedding_size: int = 64, data=None) -> list[float]:
    """Test Recall@1 (percent) before training and after each epoch, for one loss and seed."""
    train_digits, train_y, test_digits, test_y = data if data is not None else load_digits_split()
    test_x = place_on_canvas(test_digits, torch.Generator().manual_seed(TEST_PLACEMENT_SEED))
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = EmbeddingModel(DigitsCNN(), embedding_size)
    criterion = build_loss(VARIANTS.get(loss_name, loss_name), num_classes=len(TRAIN_CLASSES),
                           embedding_size=embedding_size)
    if loss_name == "proxy_anchor_lr1":
        criterion.lr_multiplier = 1.0
    loss_params = list(criterion.parameters())
    optimizer = torch.optim.AdamW(param_groups(model, criterion, lr), lr=lr, weight_decay=1e-4)
    curve = [heldout_recall_at_1(model, test_x, test_y)]
    for _ in range(epochs):
        train_x = place_on_canvas(train_digits, generator)
        order = torch.randperm(len(train_x), generator=generator)
        for start in range(0, len(order) - batch_size + 1, batch_size):  # drop_last, as official
            batch = order[start : start + batch_size]
            loss = criterion(model(train_x[batch]), train_y[batch])
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_value_(model.parameters(), 10)  # as the official train.py
            if loss_params:
                nn.utils.clip_grad_value_(loss_params, 10)
            optimizer.step()
        curve.append(heldout_recall_at_1(model, test_x, test_y))
    return curve


def run_comparison(losses: Sequence[str] = (*LOSSES, *VARIANTS), seeds: Sequence[int] = (0, 1, 2),
                   epochs: int = 15, **options) -> dict[str, list[list[float]]]:
    """{loss: [curve per seed]}, each curve the test Recall@1 at epochs 0..epochs."""
    data = load_digits_split()
    return {name: [train_one(name, seed, epochs, data=data, **options) for seed in seeds] for name in losses}


def markdown_table(results: dict[str, list[list[float]]], epochs_shown: Sequence[int] | None = None) -> str:
    """Rows: losses; columns: epochs; cells: mean +- std of Recall@1 over seeds (percent)."""
    num_epochs = len(next(iter(results.values()))[0])
    shown = list(epochs_shown) if epochs_shown is not None else list(range(num_epochs))
    seeds = len(next(iter(results.values())))
    header = "| loss | " + " | ".join(f"ep {e}" for e in shown) + " |"
    lines = [f"Test Recall@1 (%) on digits 5-9 after training on 0-4; mean ± std over {seeds} seed(s).",
             "", header, "|---|" + "---|" * len(shown)]
    for name, curves in results.items():
        cells = []
        for e in shown:
            values = [curve[e] for curve in curves]
            std = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):.1f} ± {std:.1f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reprolab.claims.metric_learning", description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--losses", nargs="+", default=[*LOSSES, *VARIANTS], choices=[*LOSSES, *VARIANTS])
    parser.add_argument("--out", type=Path, help="also write the markdown table to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    np.random.seed(0)
    results = run_comparison(args.losses, args.seeds, args.epochs)
    table = markdown_table(results)
    sys.stdout.write(table)
    if args.out:
        from reprolab.atomic import write_text

        write_text(args.out, table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
