"""Seeds -> one number: mean, sample standard deviation, n and a 95% Student-t interval.

Only successful runs contribute, and each seed once: reruns of one seed repeat one sample, so only
the latest run of each (recipe, profile, seed) counts and the others are counted as `reruns`.
The standard deviation is the sample one (ddof=1), undefined
(NaN) for a single run; the interval is mean ± t(0.975, n-1) · std / sqrt(n), only for n >= 2.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import pandas as pd

from reprolab.results import RunResult

RUN_COLUMNS = ["recipe", "paper", "profile", "run_id", "seed", "started_at", "status", "metric", "value"]
AGGREGATE_KEYS = ["recipe", "profile", "metric"]
AGGREGATE_COLUMNS = [*AGGREGATE_KEYS, "mean", "std", "n", "ci_low", "ci_high", "run_ids", "reruns"]


def runs_frame(runs: Iterable[RunResult]) -> pd.DataFrame:
    """One row per (run, metric) of the successful runs; long format, sorted."""
    records = [
        {"recipe": run.recipe, "paper": run.paper, "profile": run.profile, "run_id": run.run_id,
         "seed": run.seed, "started_at": run.started_at, "status": run.status, "metric": metric, "value": float(value)}
        for run in runs if run.status == "ok"
        for metric, value in run.metrics.items()
    ]
    frame = pd.DataFrame.from_records(records, columns=RUN_COLUMNS)
    return frame.sort_values(["recipe", "profile", "metric", "run_id"], ignore_index=True)


def t_interval(mean: float, std: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Two-sided Student-t interval of the mean; NaNs when n < 2."""
    if n < 2 or math.isnan(std):
        return math.nan, math.nan
    from scipy import stats  # imported here: only reports need scipy

    half = float(stats.t.ppf(0.5 + confidence / 2, df=n - 1)) * std / math.sqrt(n)
    return mean - half, mean + half


def aggregate_runs(runs: Iterable[RunResult]) -> pd.DataFrame:
    """Mean, std, n and 95% interval per (recipe, profile, metric) over the successful runs."""
    frame = runs_frame(runs)
    if frame.empty:
        return pd.DataFrame(columns=AGGREGATE_COLUMNS)
    # the latest run of each seed; the earlier ones are reruns of the same sample
    frame = frame.sort_values([*AGGREGATE_KEYS, "seed", "started_at", "run_id"], ignore_index=True)
    latest = ~frame.duplicated([*AGGREGATE_KEYS, "seed"], keep="last")
    reruns = (~latest).groupby([frame[k] for k in AGGREGATE_KEYS]).sum()
    frame = frame[latest]
    grouped = frame.groupby(AGGREGATE_KEYS, sort=True)
    table = grouped["value"].agg(mean="mean", std=lambda v: v.std(ddof=1), n="count").reset_index()
    table["run_ids"] = grouped["run_id"].agg(lambda ids: tuple(sorted(ids))).to_numpy()
    bounds = [t_interval(m, s, int(n)) for m, s, n in zip(table["mean"], table["std"], table["n"], strict=True)]
    table["ci_low"] = [low for low, _ in bounds]
    table["ci_high"] = [high for _, high in bounds]
    table["n"] = table["n"].astype(int)
    table["reruns"] = [int(reruns.get(tuple(key), 0)) for key in table[AGGREGATE_KEYS].itertuples(index=False)]
    return table[AGGREGATE_COLUMNS]
