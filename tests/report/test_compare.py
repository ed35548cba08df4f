"""Verdicts: every kind, tolerance edges, lower-is-better metrics, row verdicts."""

from __future__ import annotations

import math

import pytest

from reprolab.registry import Benchmark, PublishedRow
from reprolab.report.aggregate import aggregate_runs
from reprolab.report.compare import Verdict, _numbers, compare_number, judge, row_verdict

HIGHER = Benchmark(id="toy-val", dataset="toy", task="image-classification", eval_split="val",
                   metrics=["top1", "top5"])
LOWER = Benchmark(id="toy-dist", dataset="toy", task="retrieval", eval_split="test",
                  metrics=["dist@1"], lower_is_better=["dist@1"])


def _row(recipe="r", metrics=None, tol=1.0, benchmark="toy-val"):
    return PublishedRow(recipe=recipe, benchmark=benchmark, metrics=metrics or {"top1": 50.0},
                        source="paper Table 1", verified=True, tolerance={"abs": tol})


def _compare(row, runs, metric="top1", bench=HIGHER, recipe_exists=True):
    return compare_number("alpha", 0, row, metric, row.metrics[metric], bench, recipe_exists,
                          runs, aggregate_runs(runs))


@pytest.mark.parametrize(("mean", "published", "lower", "expected"), [
    (50.9, 50.0, False, Verdict.WITHIN),
    (49.0, 50.0, False, Verdict.WITHIN),   # exactly at the tolerance is within
    (52.6, 51.6, False, Verdict.WITHIN),   # float noise (1.0000000000000071) does not flip it
    (51.2, 50.0, False, Verdict.ABOVE),
    (48.7, 50.0, False, Verdict.BELOW),
    (8.7, 10.0, True, Verdict.ABOVE),      # lower distance is better
    (11.3, 10.0, True, Verdict.BELOW),
])
def test_judge(mean, published, lower, expected):
    assert judge(mean, published, 1.0, lower) is expected


def test_within_with_delta_and_interval(make_run):
    runs = [make_run("r", s, {"top1": v}) for s, v in enumerate([50.2, 49.6, 50.5])]
    c = _compare(_row(), runs)
    assert c.verdict is Verdict.WITHIN
    assert c.delta == pytest.approx(0.1, abs=1e-12)
    assert c.obtained.n == 3 and c.runs_ok == 3 and c.runs_failed == 0
    assert c.interval_overlaps_band is True


def test_below_and_interval_that_misses_the_band(make_run):
    runs = [make_run("r", s, {"top1": v}) for s, v in enumerate([45.0, 45.1, 44.9])]
    c = _compare(_row(), runs)
    assert c.verdict is Verdict.BELOW and c.delta == pytest.approx(-5.0)
    assert c.interval_overlaps_band is False


def test_lower_is_better_benchmark_flips_above(make_run):
    row = _row(metrics={"dist@1": 10.0}, tol=0.5, benchmark="toy-dist")
    c = _compare(row, [make_run("r", 0, {"dist@1": 9.0})], metric="dist@1", bench=LOWER)
    assert c.lower_is_better and c.verdict is Verdict.ABOVE and c.delta == -1.0
    assert c.interval_overlaps_band is None  # n = 1: no interval


def test_failed_runs_give_failed_with_the_latest_error(make_run):
    runs = [make_run("r", 0, status="failed", error="old error"),
            make_run("r", 1, status="failed", error="RuntimeError: CUDA out of memory\ntraceback")]
    c = _compare(_row(), runs)
    assert c.verdict is Verdict.FAILED and c.runs_failed == 2
    assert c.error.startswith("RuntimeError: CUDA out of memory")


def test_success_beside_a_failure_is_compared_and_keeps_the_error(make_run):
    runs = [make_run("r", 0, {"top1": 50.0}), make_run("r", 1, status="failed", error="killed")]
    c = _compare(_row(), runs)
    assert c.verdict is Verdict.WITHIN and (c.runs_ok, c.runs_failed) == (1, 1) and c.error == "killed"


def test_tiny_runs_are_shown_but_never_compared(make_run):
    runs = [make_run("r", 0, {"top1": 30.0}, profile="tiny"), make_run("r", 1, {"top1": 34.0}, profile="tiny")]
    c = _compare(_row(), runs)
    assert c.verdict is Verdict.TINY_ONLY
    assert c.obtained.profile == "tiny" and c.obtained.mean == 32.0
    assert math.isnan(c.delta) and c.interval_overlaps_band is None


def test_full_runs_win_over_tiny_runs(make_run):
    runs = [make_run("r", 0, {"top1": 30.0}, profile="tiny"), make_run("r", 1, {"top1": 50.5})]
    c = _compare(_row(), runs)
    assert c.verdict is Verdict.WITHIN and c.obtained.profile == "full" and c.obtained.mean == 50.5


def test_failed_tiny_only_is_failed_and_says_tiny(make_run):
    c = _compare(_row(), [make_run("r", 0, profile="tiny", status="failed", error="shape mismatch")])
    assert c.verdict is Verdict.FAILED and c.error == "tiny profile: shape mismatch"


def test_not_run_no_recipe_missing_recipe_and_not_measured(make_run):
    assert _compare(_row(), []).verdict is Verdict.NOT_RUN
    assert _compare(_row(recipe=None), []).verdict is Verdict.NO_RECIPE
    missing = _compare(_row(recipe="ghost"), [], recipe_exists=False)
    assert missing.verdict is Verdict.NO_RECIPE and "ghost" in missing.error
    c = _compare(_row(metrics={"top1": 50.0, "top5": 80.0}), [make_run("r", 0, {"top1": 50.0})], metric="top5")
    assert c.verdict is Verdict.NOT_MEASURED and "top5" in c.error


def test_row_verdict_takes_the_worst_metric():
    def c(verdict):
        return type("C", (), {"verdict": verdict})()

    assert row_verdict([c(Verdict.WITHIN), c(Verdict.BELOW), c(Verdict.ABOVE)]) is Verdict.BELOW
    assert row_verdict([c(Verdict.WITHIN), c(Verdict.ABOVE)]) is Verdict.ABOVE
    assert row_verdict([c(Verdict.WITHIN), c(Verdict.WITHIN)]) is Verdict.WITHIN
    assert row_verdict([c(Verdict.NOT_RUN)]) is Verdict.NOT_RUN


def test_null_values_are_numbers_not_transcribed(make_run):
    """A row listing its metrics with null values (URIE's tables: images on the project page) is
    compared as "no published number", marked not transcribed, and obtained values are kept."""
    from reprolab.report.render import format_verdict

    row = PublishedRow(recipe="r", benchmark="toy-val", metrics={"top1": None, "top5": None},
                       unavailable="paper Table 1 is an image; not read here", source="paper Table 1",
                       verified=False)
    assert row.not_transcribed
    assert [metric for metric, _ in _numbers(row, HIGHER)] == ["top1", "top5"]
    c = compare_number("alpha", 0, row, "top1", None, HIGHER, True,
                       [make_run("r", 0, {"top1": 61.0})], aggregate_runs([make_run("r", 0, {"top1": 61.0})]))
    assert c.verdict is Verdict.NO_NUMBER and c.not_transcribed and math.isnan(c.published)
    assert c.obtained.mean == pytest.approx(61.0) and math.isnan(c.delta)
    assert format_verdict(c) == "**no published number** (not transcribed)"
    not_run = compare_number("alpha", 0, row, "top5", None, HIGHER, True, [], aggregate_runs([]))
    assert not_run.verdict is Verdict.NO_NUMBER and format_verdict(not_run).endswith("(not transcribed)")
    plotted = PublishedRow(recipe="r", benchmark="toy-val", unavailable="only plotted", source="paper Fig. 2",
                           verified=False)
    assert not plotted.not_transcribed


def test_null_values_need_a_reason_and_no_numbers_beside_them():
    with pytest.raises(ValueError, match="null value needs `unavailable"):
        PublishedRow(benchmark="toy-val", metrics={"top1": None}, source="paper Table 1", verified=False)
    with pytest.raises(ValueError, match="must not also give `metrics` values"):
        PublishedRow(benchmark="toy-val", metrics={"top1": None, "top5": 80.0}, unavailable="partly read",
                     source="paper Table 1", verified=False)
