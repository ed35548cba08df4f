"""The real published numbers, papers and benchmarks of the checkout load with the typed loaders."""

from __future__ import annotations

from pathlib import Path

import pytest

from reprolab.registry import load_benchmark, load_paper, load_published

REPO = Path(__file__).resolve().parents[2]
PAPER_IDS = ["selfy", "motionsqueeze", "urie", "proxy-anchor", "dsbn", "log-ratio", "ubbr", "irnet",
             "psa", "web-videos-wsss"]
BENCHMARK_FILES = sorted((REPO / "benchmarks").glob("*.yaml"))


@pytest.mark.parametrize("paper_id", PAPER_IDS)
def test_paper_and_published_files_load(paper_id):
    folder = REPO / "reproductions" / paper_id
    assert load_paper(folder / "paper.yaml").id == paper_id
    rows = load_published(folder / "published.yaml")
    benchmarks = {path.stem: load_benchmark(path) for path in BENCHMARK_FILES}
    for index, row in enumerate(rows):
        where = f"{folder / 'published.yaml'} row {index}"
        assert row.benchmark in benchmarks, f"{where}: no benchmarks/{row.benchmark}.yaml"
        assert set(row.metrics) <= set(benchmarks[row.benchmark].metrics), where
        if "from memory" in row.source.lower() or "recollection" in row.source.lower():
            assert not row.verified and "memory" in row.note, f"{where}: memory numbers stay unverified"
        if row.verified:
            assert "paper" in row.source.lower(), f"{where}: verified rows cite the paper"


@pytest.mark.parametrize("path", BENCHMARK_FILES, ids=lambda p: p.stem)
def test_benchmark_files_load(path):
    assert load_benchmark(path).id == path.stem


def test_report_check_passes_on_the_checkout(monkeypatch, capsys):
    """CI's `reprolab report --check`: every recipe has a published row, every row a source."""
    from reprolab.cli import main

    monkeypatch.setenv("REPROLAB_ROOT", str(REPO))
    assert main(["report", "--check"]) == 0, capsys.readouterr().err
    assert "published tables and recipes agree" in capsys.readouterr().out
