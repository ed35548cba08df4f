"""Checkouts for the pipeline tests: the example self-training recipe beside the rows it builds on."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import prepare_tiny
from tests.tasks.conftest import video_checkout

EXAMPLE = Path(__file__).with_name("sthv1-tsm-r50-8f-self-training.yaml")
RECIPE = EXAMPLE.stem
# Smoke schedule: the chain's code paths, not learning (the tiny video profile needs ~400 steps).
SMOKE = ["optim.epochs=1", "+optim.max_steps_per_epoch=2", "optim.eval_every=0"]


def with_example(root: Path) -> Path:
    shutil.copy(EXAMPLE, root / "reproductions" / "selfy" / "recipes" / EXAMPLE.name)
    return root


@pytest.fixture
def example_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example recipe in a scratch checkout without data (resolution, DVC files)."""
    root = with_example(video_checkout(tmp_path / "checkout"))
    monkeypatch.setenv("REPROLAB_ROOT", str(root))
    return root


@pytest.fixture(scope="module")
def prepared_example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example recipe in a checkout with the sthv1 tiny fixture prepared (once per module)."""
    root = video_checkout(tmp_path_factory.mktemp("stages") / "checkout")
    return with_example(prepare_tiny(root, "sthv1"))


@pytest.fixture(scope="module")
def chain_run(prepared_example: Path) -> Path:
    """The checkout after `reprolab run-stages <example> --profile tiny` (smoke schedule), once
    per module; tests that change it work on a copy."""
    from reprolab import cli

    old = os.environ.get("REPROLAB_ROOT")
    os.environ["REPROLAB_ROOT"] = str(prepared_example)
    try:
        assert cli.main(["run-stages", RECIPE, "--profile", "tiny", "--device", "cpu",
                         "--no-progress", *SMOKE]) == 0
    finally:
        if old is None:
            os.environ.pop("REPROLAB_ROOT")
        else:
            os.environ["REPROLAB_ROOT"] = old
    return prepared_example
