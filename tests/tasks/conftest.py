"""A scratch checkout holding the real Something-Something V1 card, benchmark and video recipes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import prepare_tiny

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


@pytest.fixture(scope="module")
def prepared_sthv1(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkout with the sthv1 tiny fixture fetched and prepared once per module."""
    return prepare_tiny(video_checkout(tmp_path_factory.mktemp("video") / "checkout"), "sthv1")
