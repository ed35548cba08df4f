"""A toy checkout and toy run results for the report tests (copied into tmp, never the live tree)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from reprolab.results import RunResult

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def toy_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tests/report/fixtures/registry copied to a temporary checkout, set as REPROLAB_ROOT."""
    root = tmp_path / "checkout"
    shutil.copytree(FIXTURES / "registry", root)
    (root / "datasets").mkdir()
    (root / "pyproject.toml").write_text("[project]\nname = 'scratch'\n")
    monkeypatch.setenv("REPROLAB_ROOT", str(root))
    return root


@pytest.fixture
def toy_results(tmp_path: Path) -> Path:
    """The fixture run results, plus one corrupt result file that must be reported, not crash."""
    results = tmp_path / "results"
    shutil.copytree(FIXTURES / "results", results)
    (results / "alpha-within" / "20210102T039900Z-corrupt-fixture.json").write_text('{"run_id": "trunc')
    return results


def _make_run(recipe: str = "r", seed: int = 0, metrics: dict[str, float] | None = None, *,
             profile: str = "full", status: str = "ok", error: str | None = None,
             paper: str = "alpha", **extra: Any) -> RunResult:
    """A minimal valid RunResult for unit tests."""
    fields: dict[str, Any] = dict(
        run_id=f"20210101T000000Z-s{seed}-{recipe}", recipe=recipe, paper=paper, benchmark="toy-val",
        profile=profile, seed=seed, status=status, config={}, metrics=metrics or {}, error=error,
        provenance={"git_commit": None, "git_dirty": None, "device": "cpu"},
        started_at="2021-01-01T00:00:00+00:00", wall_time_s=1.0,
    )
    return RunResult(**{**fields, **extra})  # extra may replace run_id or started_at


@pytest.fixture
def make_run():
    """Factory of minimal valid RunResults: make_run(recipe, seed, metrics, profile=, status=, error=)."""
    return _make_run
