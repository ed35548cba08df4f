"""`reprolab report [PAPER ...]`: write the reports; `--check`: list registry inconsistencies."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from reprolab import paths
from reprolab.config import PROFILES
from reprolab.errors import UsageError


def _report(args: argparse.Namespace) -> int:
    from reprolab.report.check import check_consistency
    from reprolab.report.inputs import load_inputs, load_runs
    from reprolab.report.render import write_reports

    root = paths.project_root()
    if args.check:
        inputs = load_inputs(root, strict=False)
        for paper_id in args.papers:
            inputs.paper(paper_id)
        problems = check_consistency(inputs)
        if args.papers:  # only the problems in these papers' folders
            keep = {Path("reproductions") / paper_id for paper_id in args.papers}
            problems = [p for p in problems if keep & set(p.path.parents)]
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print(f"reprolab report --check: {len(problems)} problem(s)", file=sys.stderr)
            return 1
        rows = sum(len(p.rows) for p in inputs.papers.values())
        print(f"published tables and recipes agree: {len(inputs.papers)} papers, {rows} published rows, "
              f"{len(inputs.recipes)} recipes")
        return 0

    out_dir = args.out or paths.reports_dir(root, args.profile)
    # The checkout's report folders are one per profile: tiny runs never land in reports/.
    for profile in PROFILES:
        if profile != args.profile and out_dir.resolve() == paths.reports_dir(root, profile).resolve():
            raise UsageError(f"--out {out_dir} holds the {profile}-profile reports; the "
                             f"{args.profile}-profile reports go to {paths.reports_dir(root, args.profile)} "
                             "(leave --out out)")
    inputs = load_inputs(root)
    runs, unreadable = load_runs(args.results or paths.results_dir(root))
    written = write_reports(inputs, runs, unreadable, out_dir, args.papers or None, args.profile)
    for path in unreadable:
        print(f"reprolab report: skipped unreadable result {path.path}: {path.error}", file=sys.stderr)
    shown = sum(run.profile == args.profile for run in runs)
    print(f"wrote {len(written)} files under {out_dir} ({shown} {args.profile}-profile runs of "
          f"{len(runs)} read)")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report", help="write reports/<paper>.md and reports/index.md",
        description="Compare run results with the published numbers: writes one markdown report, "
                    "CSV and figures per paper and the scoreboard reports/index.md, from the "
                    "full-profile runs; --profile tiny writes the tiny-profile runs to "
                    "reports/tiny/ instead. With --check, only list inconsistencies between "
                    "published tables and recipes (exit 1 if any).",
    )
    parser.add_argument("papers", nargs="*", metavar="PAPER", help="paper ids (default: all papers)")
    parser.add_argument("--check", action="store_true",
                        help="fail when a published row names a missing recipe, a recipe has no "
                             "published row, or a number has no source")
    parser.add_argument("--results", type=Path, default=None,
                        help="folder of run results (default: <root>/results)")
    parser.add_argument("--profile", choices=PROFILES, default="full",
                        help="which runs to report: full (into reports/) or tiny (into reports/tiny/)")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder to write reports into (default: <root>/reports for the full "
                             "profile, <root>/reports/tiny for the tiny one)")
    parser.set_defaults(handler=_report)
