"""Test-wide settings: everything offline, scratch databases, and a small registry to edit."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Set before any test imports datasets/fiftyone/dvc: nothing may reach the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")

REPO = Path(__file__).resolve().parents[1]

MINI_REGISTRY = {
    "pyproject.toml": "[project]\nname = 'scratch'\n",
    "datasets/toyvid/card.yaml": """\
id: toyvid
name: Toy videos
modality: video
citation: test fixture
license: CC0
homepage: https://example.org/toyvid
sources:
  - filename: toyvid.tar
    size: 1024
    sha256: "0000000000000000000000000000000000000000000000000000000000000000"
    urls: [https://example.org/toyvid.tar]
expect: {classes: 4, samples: 100}
splits:
  train: {classes: 4, samples: 80}
  validation: {classes: 4, samples: 20}
""",
    "benchmarks/toyvid-val.yaml": """\
id: toyvid-val
dataset: toyvid
task: video-classification
train_split: train
eval_split: validation
metrics: [top1, top5]
""",
    "reproductions/toy/paper.yaml": """\
id: toy
short: TOY
title: A toy paper
arxiv: "2101.00001"
venue: Nowhere 2021
authors: [A. Author]
claim: Toys can be reproduced.
""",
    "reproductions/toy/published.yaml": """\
- recipe: toyvid-toy-r18
  benchmark: toyvid-val
  setting: {frames: 8}
  metrics: {top1: 52.5}
  source: test fixture
  verified: false
- recipe: null
  benchmark: toyvid-val
  metrics: {top1: 60.0}
  source: test fixture
  verified: false
""",
    "reproductions/toy/recipes/_base.yaml": """\
task: video-classification
model: {name: tsm_resnet50, segments: 8, options: {window: [5, 9, 9]}}
optim: {name: sgd, lr: 0.01, batch_size: 8, epochs: 50, milestones: [30, 40]}
data: {crop: 224}
tiny:
  model: {name: tsm_resnet18}
  optim: {epochs: 2}
""",
    "reproductions/toy/recipes/toyvid-toy-r18.yaml": """\
base: _base.yaml
title: Toy-R18 on toy videos
benchmark: toyvid-val
model: {name: tsm_resnet18}
seeds: [0, 1, 2]
""",
}


def registry_checkout(root: Path) -> Path:
    """A scratch checkout with the repository's registries (cards, benchmarks, papers, recipes), so
    that fixtures, runs and results written through it never touch the repository."""
    from reprolab.claims.common import scratch_checkout

    return scratch_checkout(root, REPO)


def prepare_tiny(root: Path, dataset_id: str) -> Path:
    """Fetch and prepare `dataset_id`'s tiny fixture inside the checkout `root` (for module-scoped
    fixtures, which cannot use monkeypatch: REPROLAB_ROOT is restored afterwards)."""
    from reprolab.cli import main

    old = os.environ.get("REPROLAB_ROOT")
    os.environ["REPROLAB_ROOT"] = str(root)
    try:
        assert main(["data", "fetch", dataset_id, "--profile", "tiny"]) == 0
        assert main(["data", "prepare", dataset_id, "--profile", "tiny"]) == 0
    finally:
        if old is None:
            os.environ.pop("REPROLAB_ROOT")
        else:
            os.environ["REPROLAB_ROOT"] = old
    return root


def write_tree(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "learning(seed): asserts that a tiny run learns; takes the `learning` fixture "
                   "(tests/learning.py: thread count and seed from the environment, recorded checks)")


def pytest_terminal_summary(terminalreporter) -> None:
    """What each tiny recipe reached against its chance level and threshold (tests/test_smoke.py)."""
    from tests.learning import SUMMARY

    if SUMMARY:
        terminalreporter.section("tiny recipes: value, threshold, chance, margin")
        for line in SUMMARY:
            terminalreporter.write_line(line)


@pytest.fixture
def learning(request: pytest.FixtureRequest):
    """Thread count and seed for a test marked `learning(seed=N)`, and its recorded checks."""
    import torch

    from tests.learning import from_environment

    marker = request.node.get_closest_marker("learning")
    assert marker is not None and "seed" in marker.kwargs, "mark the test @pytest.mark.learning(seed=N)"
    setting = from_environment(request.node.nodeid, int(marker.kwargs["seed"]))
    before = torch.get_num_threads()
    torch.set_num_threads(setting.threads)
    try:
        yield setting
    finally:
        torch.set_num_threads(before)


@pytest.fixture
def mini_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A small self-contained checkout (one dataset, benchmark, paper, recipe), as REPROLAB_ROOT."""
    root = tmp_path / "checkout"
    write_tree(root, MINI_REGISTRY)
    monkeypatch.setenv("REPROLAB_ROOT", str(root))
    return root
