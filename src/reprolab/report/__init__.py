"""Reports: published numbers beside obtained ones, with verdicts, provenance and figures.

The flow is `inputs` (registry files and run results) -> `aggregate` (seeds -> mean, std, n,
95% t-interval) -> `compare` (one verdict per published number) -> `render` (markdown, CSV) and
`figures` (PNG). `check` lists inconsistencies between published tables and recipes;
`reprolab report` (reprolab.cli.report) drives them.
"""

from reprolab.report.aggregate import aggregate_runs, runs_frame
from reprolab.report.check import Problem, check_consistency
from reprolab.report.compare import Comparison, Verdict, compare_paper, row_verdict
from reprolab.report.inputs import PaperInputs, ReportInputs, load_inputs, load_runs
from reprolab.report.render import write_reports

__all__ = [
    "Comparison",
    "PaperInputs",
    "Problem",
    "ReportInputs",
    "Verdict",
    "aggregate_runs",
    "check_consistency",
    "compare_paper",
    "load_inputs",
    "load_runs",
    "row_verdict",
    "runs_frame",
    "write_reports",
]
