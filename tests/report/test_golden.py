"""The committed fixture results render to the committed markdown, byte for byte."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pandas as pd
import pytest

from reprolab.cli import main

from_fixtures = Path(__file__).parent / "fixtures"
EXPECTED = from_fixtures / "expected"
UPDATE = os.environ.get("REPROLAB_UPDATE_GOLDEN") == "1"


@pytest.fixture
def rendered(toy_root, toy_results, tmp_path) -> Path:
    out = tmp_path / "reports"
    assert main(["report", "--results", str(toy_results), "--out", str(out)]) == 0
    return out


@pytest.fixture
def rendered_tiny(toy_root, toy_results, tmp_path) -> Path:
    out = tmp_path / "reports" / "tiny"
    assert main(["report", "--profile", "tiny", "--results", str(toy_results), "--out", str(out)]) == 0
    return out


def _golden(produced: str, expected: Path) -> None:
    if UPDATE:
        expected.parent.mkdir(parents=True, exist_ok=True)
        expected.write_text(produced, encoding="utf-8")
    assert produced == expected.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", ["index.md", "alpha.md", "beta.md"])
def test_markdown_matches_golden(rendered, name):
    _golden((rendered / name).read_text(encoding="utf-8"), EXPECTED / name)


@pytest.mark.parametrize("name", ["index.md", "alpha.md"])
def test_tiny_markdown_matches_golden(rendered_tiny, name):
    _golden((rendered_tiny / name).read_text(encoding="utf-8"), EXPECTED / "tiny" / name)


def test_full_reports_never_show_tiny_runs(rendered, rendered_tiny):
    tiny_ids = ["20210102T030800Z-s0-f1x708", "20210102T030900Z-s1-f1x719"]
    for name in ("index.md", "alpha.md", "alpha.csv"):
        text = (rendered / name).read_text()
        assert not any(run_id in text for run_id in tiny_ids), name
        assert "tiny:" not in text and "tiny only" not in text.split("How to read")[0]
    assert not (rendered / "figures" / "alpha" / "alpha-tiny-curves.png").exists()
    tiny = (rendered_tiny / "alpha.md").read_text()
    assert all(run_id in tiny for run_id in tiny_ids)
    assert "20210102T030100Z-s0-f1x701" not in tiny  # and no full run in the tiny report
    assert (rendered_tiny / "figures" / "alpha" / "alpha-tiny-curves.png").is_file()
    frame = pd.read_csv(rendered_tiny / "alpha.csv")
    assert set(frame.loc[frame.recipe == "alpha-tiny", "verdict"]) == {"tiny only"}


def test_tiny_reports_cannot_overwrite_the_full_ones(toy_root, toy_results, capsys):
    full = toy_root / "reports"
    code = main(["report", "--profile", "tiny", "--results", str(toy_results), "--out", str(full)])
    assert code == 2
    assert "holds the full-profile reports; the tiny-profile reports go to" in capsys.readouterr().err
    assert not full.exists()


def test_rendering_is_deterministic(toy_root, toy_results, rendered, tmp_path):
    again = tmp_path / "again"
    assert main(["report", "--results", str(toy_results), "--out", str(again)]) == 0
    for name in ("index.md", "alpha.md", "beta.md", "alpha.csv"):
        assert (again / name).read_bytes() == (rendered / name).read_bytes()
    for png in sorted((rendered / "figures").rglob("*.png")):
        assert (again / png.relative_to(rendered)).read_bytes() == png.read_bytes()


def test_failed_run_is_a_row_with_its_error(rendered):
    alpha = (rendered / "alpha.md").read_text()
    row = next(line for line in alpha.splitlines() if "`alpha-failed`" in line and line.startswith("|"))
    assert "**failed**: RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB" in row
    assert "RuntimeError: CUDA out of memory" in alpha.split("## Runs and their provenance")[1]


def test_scoreboard_counts(rendered):
    index = (rendered / "index.md").read_text()
    alpha = next(line for line in index.splitlines() if line.startswith("| [Alpha]"))
    cells = [cell.strip() for cell in alpha.strip("|").split("|")]
    # Paper, rows, verified, reproduced, below, above, failed, not measured, no published number,
    # not run (alpha-tiny has tiny runs only: not run in the full profile), no recipe
    assert cells[1:] == ["9", "5", "1", "1", "1", "1", "1", "1", "2", "1"]
    assert "Tiny only" not in index
    assert "20210102T039900Z-corrupt-fixture.json" in index  # named, not a crash


def test_csv_keeps_numbers_numeric(rendered):
    frame = pd.read_csv(rendered / "alpha.csv")
    within = frame[frame.recipe == "alpha-within"].iloc[0]
    assert within["verdict"] == "within" and within["n"] == 3
    assert within["mean"] == pytest.approx(50.1) and within["delta"] == pytest.approx(0.1)
    assert pd.api.types.is_float_dtype(frame["published"]) and pd.api.types.is_float_dtype(frame["mean"])


def test_figures_are_pngs_linked_from_the_report(rendered):
    alpha = (rendered / "alpha.md").read_text()
    expected = ["figures/alpha/obtained-vs-published.png", "figures/alpha/alpha-within-curves.png"]
    for relative in expected:
        data = (rendered / relative).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = struct.unpack(">II", data[16:24])
        assert width > 300 and height > 150
        assert f"]({relative})" in alpha
    # beta has no run: no figure, and the report says so.
    assert not (rendered / "figures" / "beta").exists()
    assert "No figure yet" in (rendered / "beta.md").read_text()


def test_notes_are_included_or_reported_missing(rendered):
    assert "### Hidden details" in (rendered / "alpha.md").read_text()  # NOTES.md headings nested
    assert "no NOTES.md yet" in (rendered / "beta.md").read_text()


def test_one_paper_only_still_writes_the_full_index(toy_root, toy_results, tmp_path):
    out = tmp_path / "one"
    assert main(["report", "beta", "--results", str(toy_results), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["beta.csv", "beta.md", "index.md"]
    assert "[Alpha](alpha.md)" in (out / "index.md").read_text()


def test_unknown_paper_is_a_usage_error(toy_root, toy_results, tmp_path, capsys):
    assert main(["report", "gamma", "--results", str(toy_results), "--out", str(tmp_path / "x")]) == 2
    assert "unknown paper 'gamma'; known: alpha, beta" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_stale_figures_are_removed_and_orphan_runs_listed(toy_root, toy_results, rendered, make_run):
    stale = rendered / "figures" / "alpha" / "deleted-recipe-curves.png"
    stale.write_bytes(b"old")
    orphan = make_run("ghost-recipe", 0, {"top1": 1.0}, paper="ghost")
    (toy_results / "ghost-recipe").mkdir()
    (toy_results / "ghost-recipe" / f"{orphan.run_id}.json").write_text(orphan.model_dump_json())
    assert main(["report", "--results", str(toy_results), "--out", str(rendered)]) == 0
    assert not stale.exists()
    assert (rendered / "figures" / "alpha" / "obtained-vs-published.png").exists()
    assert f"- `{orphan.run_id}`: paper `ghost`, recipe `ghost-recipe`, full, ok" in (rendered / "index.md").read_text()


def test_an_absolute_log_path_of_an_older_result_is_shown_relative(toy_root, toy_results, tmp_path, make_run):
    run = make_run("alpha-within", 7, {"top1": 50.0}, log_path=str(toy_root / "runs/alpha-within/x/metrics.jsonl"))
    (toy_results / "alpha-within" / f"{run.run_id}.json").write_text(run.model_dump_json())
    out = tmp_path / "out"
    assert main(["report", "alpha", "--results", str(toy_results), "--out", str(out)]) == 0
    alpha = (out / "alpha.md").read_text()
    assert "- **Log:** `runs/alpha-within/x/metrics.jsonl`" in alpha and str(toy_root) not in alpha
