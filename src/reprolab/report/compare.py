"""One verdict per published number: does the aggregate of a recipe's runs match it?

Rules (also printed in every report):
- `within`: the mean over successful full-profile runs differs from the published value by at
  most the row's tolerance (absolute points): |mean - published| <= tol.
- `above` / `below`: better / worse than published by more than the tolerance. "Better" is
  higher, except for metrics a benchmark lists under `lower_is_better`, where it is lower.
- The 95% Student-t interval of the mean (n >= 2) is reported beside the verdict but does not
  change it; `interval_overlaps_band` says whether it reaches [published - tol, published + tol],
  i.e. whether a miss could still be seed noise.
- `failed`: every full-profile run of the recipe failed; the latest error is shown.
- `not measured`: full runs succeeded but none recorded this metric.
- `tiny only`: only tiny-profile runs exist. They are shown, never compared.
- `no published number`: the paper's value for the row is not recorded (`unavailable:` in
  published.yaml says why, e.g. it is only plotted); obtained values are still shown. A row whose
  metrics are listed with null values has a number in the paper that is not transcribed yet: it
  reads "no published number (not transcribed)".
- `not run`: the recipe exists but has no run. `no recipe yet`: the row names no recipe (or one
  that does not exist; `reprolab report --check` flags that).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import pandas as pd

from reprolab.registry import Benchmark, PublishedRow
from reprolab.report.inputs import PaperInputs
from reprolab.results import RunResult

# Float noise must not flip a verdict at exactly the tolerance (e.g. 52.6 - 51.6).
_EPS = 1e-9


class Verdict(StrEnum):
    WITHIN = "within"
    ABOVE = "above"
    BELOW = "below"
    NOT_MEASURED = "not measured"
    FAILED = "failed"
    TINY_ONLY = "tiny only"
    NOT_RUN = "not run"
    NO_RECIPE = "no recipe yet"
    NO_NUMBER = "no published number"


# A row with several metrics takes the first of its metrics' verdicts in this order.
ROW_PRIORITY = (
    Verdict.FAILED, Verdict.BELOW, Verdict.ABOVE, Verdict.NOT_MEASURED, Verdict.WITHIN,
    Verdict.NO_NUMBER, Verdict.TINY_ONLY, Verdict.NOT_RUN, Verdict.NO_RECIPE,
)


@dataclass(frozen=True)
class Obtained:
    profile: str
    mean: float
    std: float
    n: int
    ci_low: float
    ci_high: float
    run_ids: tuple[str, ...]
    reruns: int = 0  # older runs of a seed that also has a later run: not counted in n


@dataclass(frozen=True)
class Comparison:
    """One published number beside what the runs of its recipe obtained."""

    paper: str
    row: int  # index of the row in published.yaml
    benchmark: str
    split: str  # the benchmark's evaluation split ("" when the benchmark file is missing)
    setting: dict[str, Any]
    metric: str
    published: float
    tolerance: float
    lower_is_better: bool
    source: str
    verified: bool
    note: str
    recipe: str | None
    verdict: Verdict
    obtained: Obtained | None = None  # full profile when compared, tiny for `tiny only`
    runs_ok: int = 0
    runs_failed: int = 0
    error: str | None = None
    not_transcribed: bool = False  # the paper has the number; published.yaml does not yet

    @property
    def delta(self) -> float:
        """Obtained mean minus published value (NaN when nothing was compared)."""
        if self.obtained is None or self.obtained.profile != "full":
            return math.nan
        return self.obtained.mean - self.published

    @property
    def interval_overlaps_band(self) -> bool | None:
        if self.obtained is None or self.obtained.profile != "full" or math.isnan(self.obtained.ci_low):
            return None
        return (self.obtained.ci_low <= self.published + self.tolerance + _EPS
                and self.obtained.ci_high >= self.published - self.tolerance - _EPS)


def judge(mean: float, published: float, tolerance: float, lower_is_better: bool) -> Verdict:
    delta = mean - published
    if abs(delta) <= tolerance + _EPS:
        return Verdict.WITHIN
    better = delta < 0 if lower_is_better else delta > 0
    return Verdict.ABOVE if better else Verdict.BELOW


def _obtained(aggregates: pd.DataFrame, recipe: str, profile: str, metric: str) -> Obtained | None:
    hit = aggregates[(aggregates["recipe"] == recipe) & (aggregates["profile"] == profile)
                     & (aggregates["metric"] == metric)]
    if hit.empty:
        return None
    first = hit.iloc[0]
    return Obtained(profile=profile, mean=float(first["mean"]), std=float(first["std"]),
                    n=int(first["n"]), ci_low=float(first["ci_low"]), ci_high=float(first["ci_high"]),
                    run_ids=tuple(first["run_ids"]), reruns=int(first.get("reruns", 0)))


def _latest_error(runs: list[RunResult]) -> str:
    latest = max(runs, key=lambda run: run.run_id)
    return latest.error or "failed without an error message"


def compare_number(
    paper: str, index: int, row: PublishedRow, metric: str, value: float,
    benchmark: Benchmark | None, recipe_exists: bool,
    runs: list[RunResult], aggregates: pd.DataFrame,
) -> Comparison:
    base = dict(
        paper=paper, row=index, benchmark=row.benchmark, split=", ".join(benchmark.eval_splits) if benchmark else "",
        setting=dict(row.setting), metric=metric,
        published=math.nan if value is None else float(value), tolerance=row.tolerance.abs,
        lower_is_better=benchmark is not None and metric in benchmark.lower_is_better,
        source=row.source, verified=row.verified, note=row.note, recipe=row.recipe,
        not_transcribed=row.not_transcribed,
    )
    if row.recipe is None:
        return Comparison(**base, verdict=Verdict.NO_RECIPE)
    if not recipe_exists:
        return Comparison(**base, verdict=Verdict.NO_RECIPE,
                          error=f"recipe {row.recipe!r} does not exist yet")
    full = [run for run in runs if run.profile == "full"]
    full_ok = [run for run in full if run.status == "ok"]
    full_failed = [run for run in full if run.status == "failed"]
    counts = dict(runs_ok=len(full_ok), runs_failed=len(full_failed))
    if full_ok:
        obtained = _obtained(aggregates, row.recipe, "full", metric)
        if obtained is None:
            return Comparison(**base, verdict=Verdict.NOT_MEASURED, **counts,
                              error=f"no successful run recorded metric {metric!r}")
        verdict = (Verdict.NO_NUMBER if value is None or math.isnan(value)
                   else judge(obtained.mean, float(value), row.tolerance.abs, base["lower_is_better"]))
        error = _latest_error(full_failed) if full_failed else None
        return Comparison(**base, verdict=verdict, obtained=obtained, error=error, **counts)
    if full_failed:
        return Comparison(**base, verdict=Verdict.FAILED, error=_latest_error(full_failed), **counts)
    tiny = [run for run in runs if run.profile == "tiny"]
    if tiny:
        tiny_ok = [run for run in tiny if run.status == "ok"]
        tiny_failed = [run for run in tiny if run.status == "failed"]
        tiny_counts = dict(runs_ok=len(tiny_ok), runs_failed=len(tiny_failed))
        if not tiny_ok:
            return Comparison(**base, verdict=Verdict.FAILED, **tiny_counts,
                              error=f"tiny profile: {_latest_error(tiny_failed)}")
        return Comparison(**base, verdict=Verdict.TINY_ONLY, **tiny_counts,
                          obtained=_obtained(aggregates, row.recipe, "tiny", metric))
    return Comparison(**base, verdict=Verdict.NO_NUMBER if value is None or math.isnan(value) else Verdict.NOT_RUN)


def _numbers(row: PublishedRow, benchmark: Benchmark | None) -> list[tuple[str, float]]:
    """The row's published numbers; a row without numbers stands for its benchmark's metrics."""
    if row.unavailable is None:
        return list(row.metrics.items())
    if row.metrics:  # null values: the metrics the paper reports, not transcribed
        return [(metric, math.nan) for metric in row.metrics]
    return [(metric, math.nan) for metric in (benchmark.metrics if benchmark else ["—"])]


def compare_paper(
    paper: PaperInputs, benchmarks: dict[str, Benchmark], recipes: set[str],
    runs: list[RunResult], aggregates: pd.DataFrame,
) -> list[Comparison]:
    """Every published number of a paper, in published.yaml order (row, then metric)."""
    by_recipe: dict[str, list[RunResult]] = {}
    for run in runs:
        by_recipe.setdefault(run.recipe, []).append(run)
    return [
        compare_number(paper.paper.id, index, row, metric, value, benchmarks.get(row.benchmark),
                       row.recipe in recipes, by_recipe.get(row.recipe or "", []), aggregates)
        for index, row in enumerate(paper.rows)
        for metric, value in _numbers(row, benchmarks.get(row.benchmark))
    ]


def row_verdict(comparisons: list[Comparison]) -> Verdict:
    """The verdict of a whole published row: its metrics' verdicts, the worst first."""
    present = {c.verdict for c in comparisons}
    return next(verdict for verdict in ROW_PRIORITY if verdict in present)


CSV_COLUMNS = [
    "paper", "row", "benchmark", "split", "setting", "metric", "published", "tolerance", "lower_is_better",
    "verified", "source", "recipe", "verdict", "profile", "mean", "std", "n", "ci_low", "ci_high",
    "delta", "interval_overlaps_band", "runs_ok", "runs_failed", "error",
]


def comparisons_frame(comparisons: list[Comparison]) -> pd.DataFrame:
    """Numeric export: one row per published number."""
    records = []
    for c in comparisons:
        o = c.obtained
        records.append({
            "paper": c.paper, "row": c.row, "benchmark": c.benchmark, "split": c.split,
            "setting": "; ".join(f"{k}={v}" for k, v in c.setting.items()),
            "metric": c.metric, "published": c.published, "tolerance": c.tolerance,
            "lower_is_better": c.lower_is_better, "verified": c.verified, "source": c.source,
            "recipe": c.recipe or "", "verdict": str(c.verdict),
            "profile": o.profile if o else "", "mean": o.mean if o else math.nan,
            "std": o.std if o else math.nan, "n": o.n if o else 0,
            "ci_low": o.ci_low if o else math.nan, "ci_high": o.ci_high if o else math.nan,
            "delta": c.delta, "interval_overlaps_band": c.interval_overlaps_band,
            "runs_ok": c.runs_ok, "runs_failed": c.runs_failed, "error": c.error or "",
        })
    return pd.DataFrame.from_records(records, columns=CSV_COLUMNS)
