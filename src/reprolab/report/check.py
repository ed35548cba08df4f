"""`reprolab report --check`: published tables and recipes must describe the same rows.

Problems, each with the file to fix:
- a registry file that does not load (a published number without `source` fails here);
- a published row that names a recipe that does not exist (rows with `recipe: null` are fine);
- a recipe that no published row names;
- a number whose source is blank or a placeholder, or `verified: true` with a source that does
  not cite the paper itself;
- a row whose benchmark does not exist, or a metric its benchmark does not define.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from reprolab.report.inputs import ReportInputs

_PLACEHOLDER = re.compile(r"^\W*(todo|tbd|fixme|unknown|none|n/?a|\?+)\W*$", re.IGNORECASE)


@dataclass(frozen=True, order=True)
class Problem:
    path: Path
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def check_consistency(inputs: ReportInputs) -> list[Problem]:
    """Every inconsistency, sorted by file; paths are relative to the checkout root."""
    problems = [Problem(error.path, "; ".join(error.problems)) for error in inputs.errors]
    named: set[str] = set()
    for paper_id, paper in inputs.papers.items():
        path = paper.published_path
        for index, row in enumerate(paper.rows):
            where = f"row {index} ({row.benchmark})"
            if row.recipe is not None:
                named.add(row.recipe)
                recipe = inputs.recipes.get(row.recipe)
                if recipe is None:
                    problems.append(Problem(path, (
                        f"{where}: recipe {row.recipe!r} does not exist "
                        f"(expected reproductions/{paper_id}/recipes/{row.recipe}.yaml, or `recipe: null`)"
                    )))
                elif recipe.paper != paper_id:
                    problems.append(Problem(path, (
                        f"{where}: recipe {row.recipe!r} belongs to paper {recipe.paper!r}, not {paper_id!r}"
                    )))
            if not row.source.strip() or _PLACEHOLDER.match(row.source):
                problems.append(Problem(path, (
                    f"{where}: numbers {sorted(row.metrics)} have no source (got {row.source!r}); "
                    "name the table, README commit or secondary source they come from"
                )))
            elif row.verified and "paper" not in row.source.lower():
                problems.append(Problem(path, (
                    f"{where}: `verified: true` but the source {row.source!r} does not cite the paper; "
                    "verified means checked against the paper itself"
                )))
            bench = inputs.benchmarks.get(row.benchmark)
            if bench is None:
                problems.append(Problem(path, (
                    f"{where}: benchmark {row.benchmark!r} does not exist (expected benchmarks/{row.benchmark}.yaml)"
                )))
            else:
                unknown = sorted(set(row.metrics) - set(bench.metrics))
                if unknown:
                    problems.append(Problem(path, (
                        f"{where}: metrics {unknown} are not metrics of benchmark {bench.id!r} {bench.metrics}"
                    )))
    for recipe_id, recipe in inputs.recipes.items():
        if recipe_id not in named:
            problems.append(Problem(inputs.recipe_paths[recipe_id], (
                f"recipe {recipe_id!r} has no published row: name it as `recipe:` of a row in "
                f"reproductions/{recipe.paper}/published.yaml"
            )))
    return sorted(Problem(_relative(p.path, inputs.root), p.message) for p in problems)


def _relative(path: Path, root: Path) -> Path:
    try:
        return Path(path).resolve().relative_to(root.resolve())
    except ValueError:
        return Path(path)
