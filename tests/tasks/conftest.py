"""A scratch checkout holding the real Something-Something V1 card, benchmark and video recipes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def video_checkout(root: Path) -> Path:
    for card in ("sthv1", "weights-resnet50-imagenet", "weights-resnet18-imagenet"):
        (root / "datasets" / card).mkdir(parents=True)
        shutil.copy(REPO / "datasets" / card / "card.yaml", root / "datasets" / card / "card.yaml")
    (root / "benchmarks").mkdir()
    shutil.copy(REPO / "benchmarks" / "sthv1-val.yaml", root / "benchmarks" / "sthv1-val.yaml")
    for paper in ("selfy", "motionsqueeze"):
        recipes = root / "reproductions" / paper / "recipes"
        recipes.mkdir(parents=True)
        shutil.copy(REPO / "reproductions" / paper / "paper.yaml", root / "reproductions" / paper)
        (root / "reproductions" / paper / "published.yaml").write_text("[]\n")
        for recipe in (REPO / "reproductions" / paper / "recipes").glob("*.yaml"):
            if recipe.name == "_base.yaml" or recipe.name.startswith("sthv1-"):
                shutil.copy(recipe, recipes / recipe.name)
    (root / "pyproject.toml").write_text("[project]\nname = 'scratch'\n")
    return root


@pytest.fixture
def video_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = video_checkout(tmp_path / "checkout")
    monkeypatch.setenv("REPROLAB_ROOT", str(root))
    monkeypatch.setenv("REPROLAB_NO_PROGRESS", "1")
    return root


def train_and_untrained_metrics(recipe: str, overrides: list[str], run_dir: Path,
                                seed: int | None = None) -> tuple[dict, dict, object]:
    """Train a recipe's tiny profile through the CLI (with `seed`, default the recipe's) and score
    it with `reprolab evaluate`; also score the same network before training (the run's seed and
    config). Returns (trained, untrained, task). REPROLAB_ROOT must point at a checkout with the
    data prepared."""
    import json

    import yaml

    from reprolab.cli import main
    from reprolab.engine.distributed import DistContext
    from reprolab.engine.loop import evaluate
    from reprolab.engine.seeding import seed_everything
    from reprolab.tasks import build_task

    seeded = [] if seed is None else ["--seed", str(seed)]
    assert main(["train", recipe, "--profile", "tiny", "--out", str(run_dir), "--device", "cpu",
                 "--no-progress", *seeded, *overrides]) == 0
    metrics_file = run_dir.parent / f"{run_dir.name}-metrics.json"
    assert main(["evaluate", str(run_dir), "--metrics-out", str(metrics_file), "--device", "cpu",
                 "--no-progress"]) == 0
    trained = json.loads(metrics_file.read_text())
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    task = build_task(config)
    seed_everything(int(config["seed"]))
    untrained = evaluate(task, task.build_model(), task.build_dataset("eval"), DistContext(),
                         show_progress=False)
    return trained, untrained, task


def late_epochs_mean(run_dir: Path, metric: str, epochs: int) -> float:
    """The mean of `eval_<metric>` over the run's last `epochs` epochs (its metrics.jsonl).

    On a 24-image test split one query that changes its nearest neighbour moves an @1 metric by a
    few percent of its range, so a single epoch's value swings with floating-point details of the
    machine; the mean over the last epochs measures where training arrived."""
    import json

    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    values = [r[f"eval_{metric}"] for r in records if f"eval_{metric}" in r][-epochs:]
    assert len(values) == epochs, f"{run_dir}: {len(values)} evaluated epochs, wanted the last {epochs}"
    return sum(values) / epochs


def leave_one_out_bounds(rows) -> tuple[float, float]:
    """mean_label_distance@1 of random retrieval and of the best ranking, from (N, N) label
    distances where every image queries the N - 1 others."""
    import numpy as np

    others = ~np.eye(len(rows), dtype=bool)
    return float(rows[others].mean()), float(np.where(others, rows, np.inf).min(1).mean())
