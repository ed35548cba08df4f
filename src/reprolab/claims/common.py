"""What every claim module shares: its command line, training one tiny config, mean ± std, and
printing (and writing) the table. A claim module defines `run(...) -> str` and a `main` of a few
lines over `parser()` and `emit()`."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def parser(module: str, doc: str | None, overrides_help: str | None = None) -> argparse.ArgumentParser:
    """`python -m <module> [--seeds 0 1 2] [--out FILE] [KEY=VALUE ...]`."""
    p = argparse.ArgumentParser(prog=f"python -m {module}", description=doc,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--out", type=Path, default=None, help="also write the table here")
    if overrides_help:
        p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=overrides_help)
    return p


def emit(module: str, make_table: Callable[[], str], out: Path | None) -> int:
    """Build the table, print it and write it to `out` (atomically); exit 4 with the message
    when a dataset is missing."""
    from reprolab import atomic
    from reprolab.errors import EXIT_MISSING_DATA, EXIT_OK, MissingDataError

    os.environ.setdefault("REPROLAB_NO_PROGRESS", "1")
    try:
        table = make_table()
    except MissingDataError as error:
        print(f"{module}: {error}", file=sys.stderr)
        return EXIT_MISSING_DATA
    print(table)
    if out is not None:
        atomic.write_text(Path(out), table + "\n")
    return EXIT_OK


def fit_config(config: dict[str, Any], seed: int, run_dir: Path):
    """Train one resolved config (a recipe's or a stage's) on this process: (task, FitResult)."""
    from reprolab.engine.distributed import DistContext
    from reprolab.engine.loop import fit
    from reprolab.tasks import build_task

    task = build_task(config)
    task.check_data()
    return task, fit(task, config, run_dir, DistContext(), seed=seed, show_progress=False)


def trained_model(task, result):
    """The model of a finished fit, with its final weights."""
    from reprolab.engine import checkpoint

    model = task.build_model(pretrained=False)
    model.load_state_dict(checkpoint.load(result.final_checkpoint, map_location="cpu")["model"])
    return model


def mean_std(values: Sequence[float]) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.1f} ± {std:.1f}"


def per_seed(values: Sequence[float]) -> str:
    return " / ".join(f"{v:.1f}" for v in values)


class at_checkout:
    """REPROLAB_ROOT set to the checkout `root` inside the block (restored after)."""

    def __init__(self, root: Path):
        self.root, self.old = Path(root), None

    def __enter__(self) -> Path:
        self.old = os.environ.get("REPROLAB_ROOT")
        os.environ["REPROLAB_ROOT"] = str(self.root)
        return self.root

    def __exit__(self, *exc) -> None:
        if self.old is None:
            os.environ.pop("REPROLAB_ROOT", None)
        else:
            os.environ["REPROLAB_ROOT"] = self.old


def scratch_checkout(root: Path, source: Path | None = None) -> Path:
    """The registries of `source` (default: this checkout) copied to `root`: cards, benchmarks,
    papers and recipes, so that a claim's runs and results never touch the real checkout."""
    import shutil

    from reprolab import paths

    source = Path(source) if source is not None else paths.project_root()
    for name in ("benchmarks", "reproductions"):
        shutil.copytree(source / name, root / name)
    for card in source.glob("datasets/*/card.yaml"):
        (root / card.parent.relative_to(source)).mkdir(parents=True)
        shutil.copy(card, root / card.relative_to(source))
    shutil.copy(source / "pyproject.toml", root / "pyproject.toml")
    return root


def prepare_tiny(root: Path, dataset_ids: Sequence[str]) -> None:
    """Fetch and prepare the tiny fixtures of `dataset_ids` in the checkout `root`."""
    from reprolab.data.fetch import fetch_dataset
    from reprolab.data.prepare import prepare_dataset
    from reprolab.registry import load_registry

    cards = load_registry(Path(root)).datasets
    for dataset in dataset_ids:
        fetch_dataset(cards[dataset], "tiny", root=Path(root), progress=False)
        prepare_dataset(cards[dataset], "tiny", root=Path(root), progress=False)


def run_tiny_chain(root: Path, recipe: str, seed: int, overrides: Sequence[str] = ()) -> dict[str, dict[str, float]]:
    """Run a recipe's whole tiny chain in the checkout `root` (as `reprolab run-stages` does):
    {stage: its metrics, ..., "result": the recipe's result metrics}."""
    import json

    from reprolab.pipeline.resolve import load_chain, write_specs
    from reprolab.pipeline.run import check_stages, read_record, run_stage

    with at_checkout(root):
        _, specs, layout = load_chain(recipe, "tiny", list(overrides), seed)
        check_stages(specs)
        write_specs(specs, layout)
        for stage in specs:
            run_stage(recipe, stage, profile="tiny", overrides=list(overrides), seed=seed)
        out = {stage: read_record(layout, stage).get("metrics", {}) for stage in specs}
    result = max((Path(root) / "results" / recipe).glob("*.json"), key=lambda p: p.stat().st_mtime)
    out["result"] = json.loads(result.read_text())["metrics"]
    return out
