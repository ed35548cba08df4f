"""Seed aggregation against hand-computed values."""

from __future__ import annotations

import math

import pytest

from reprolab.report.aggregate import aggregate_runs, t_interval

# Student-t quantiles t(0.975, df) from standard tables.
T975_DF1 = 12.706204736174698
T975_DF2 = 4.302652729749464


def _one(frame, recipe, metric, profile="full"):
    hit = frame[(frame.recipe == recipe) & (frame.metric == metric) & (frame.profile == profile)]
    assert len(hit) == 1
    return hit.iloc[0]


def test_three_seeds_mean_std_and_t_interval(make_run):
    runs = [make_run("a", s, {"top1": v}) for s, v in enumerate([50.2, 49.6, 50.5])]
    row = _one(aggregate_runs(runs), "a", "top1")
    # mean = 150.3 / 3; deviations 0.1, -0.5, 0.4 -> sum of squares 0.42 -> var 0.21 (ddof 1)
    std = math.sqrt(0.21)
    half = T975_DF2 * std / math.sqrt(3)
    assert row["n"] == 3
    assert row["mean"] == pytest.approx(50.1, abs=1e-12)
    assert row["std"] == pytest.approx(0.458257569495584, abs=1e-12)
    assert row["ci_low"] == pytest.approx(50.1 - half, abs=1e-9)
    assert row["ci_high"] == pytest.approx(50.1 + half, abs=1e-9)
    assert half == pytest.approx(1.138375, abs=1e-6)
    assert row["run_ids"] == tuple(sorted(r.run_id for r in runs))


def test_two_seeds_interval_uses_one_degree_of_freedom(make_run):
    runs = [make_run("b", 0, {"top1": 57.0}), make_run("b", 1, {"top1": 58.0})]
    row = _one(aggregate_runs(runs), "b", "top1")
    # std = sqrt(0.5); half = 12.7062 * sqrt(0.5) / sqrt(2) = 12.7062 / 2
    assert row["std"] == pytest.approx(math.sqrt(0.5), abs=1e-12)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((57.5 - T975_DF1 / 2, 57.5 + T975_DF1 / 2), abs=1e-9)


def test_single_run_has_no_std_and_no_interval(make_run):
    row = _one(aggregate_runs([make_run("c", 0, {"top1": 9.0})]), "c", "top1")
    assert row["n"] == 1 and row["mean"] == 9.0
    assert math.isnan(row["std"]) and math.isnan(row["ci_low"]) and math.isnan(row["ci_high"])
    assert all(math.isnan(x) for x in t_interval(9.0, float("nan"), 1))


def test_failed_runs_are_left_out_and_profiles_kept_apart(make_run):
    runs = [
        make_run("d", 0, {"top1": 40.0}),
        make_run("d", 1, {"top1": 99.0}, status="failed", error="boom"),
        make_run("d", 2, {"top1": 10.0}, profile="tiny"),
        make_run("d", 3, {"top1": 20.0}, profile="tiny"),
    ]
    frame = aggregate_runs(runs)
    full = _one(frame, "d", "top1")
    tiny = _one(frame, "d", "top1", profile="tiny")
    assert (full["n"], full["mean"]) == (1, 40.0)
    assert (tiny["n"], tiny["mean"]) == (2, 15.0)


def test_no_runs_gives_an_empty_table_with_columns():
    frame = aggregate_runs([])
    assert frame.empty and {"mean", "std", "n", "ci_low", "ci_high"} <= set(frame.columns)


def test_reruns_of_one_seed_count_once_and_the_latest_wins(make_run):
    # three runs of seed 0 (e.g. `reproduce` run three times) are one sample, not n=3 with std 0
    runs = [make_run("c", 0, {"top1": v}, run_id=f"2021010{day}T000000Z-s0-c",
                     started_at=f"2021-01-0{day}T00:00:00+00:00")
            for day, v in [(1, 60.0), (3, 68.75), (2, 64.0)]]
    row = _one(aggregate_runs(runs), "c", "top1")
    assert row["n"] == 1 and row["reruns"] == 2
    assert row["mean"] == 68.75 and math.isnan(row["std"]) and math.isnan(row["ci_low"])
    # a second seed makes n=2; the interval counts distinct seeds only
    runs.append(make_run("c", 1, {"top1": 70.75}))
    row = _one(aggregate_runs(runs), "c", "top1")
    assert row["n"] == 2 and row["reruns"] == 2
    assert row["mean"] == pytest.approx(69.75) and row["std"] == pytest.approx(math.sqrt(2.0))
