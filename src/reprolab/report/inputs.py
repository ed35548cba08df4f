"""What a report reads: papers, published tables, benchmarks and recipes, and the run results.

Reports do not need the dataset cards, so this reads the registry files one by one with the
typed loaders instead of `load_registry()` (which also insists that every card exists): a report
of what is published and what has run is useful before the data side is complete. An invalid
file still fails, naming the file and the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from reprolab import paths
from reprolab.names import unknown_name
from reprolab.registry import (
    Benchmark,
    Paper,
    PublishedRow,
    Recipe,
    RegistryError,
    RegistryErrors,
    load_benchmark,
    load_paper,
    load_published,
    load_recipe,
)
from reprolab.registry.loader import recipe_files
from reprolab.results import ResultsStore, RunResult, latest_attempts


@dataclass(frozen=True)
class PaperInputs:
    paper: Paper
    rows: tuple[PublishedRow, ...]
    folder: Path
    notes: str | None  # reproductions/<paper>/NOTES.md, when it exists

    @property
    def published_path(self) -> Path:
        return self.folder / "published.yaml"


@dataclass
class ReportInputs:
    root: Path
    papers: dict[str, PaperInputs] = field(default_factory=dict)
    benchmarks: dict[str, Benchmark] = field(default_factory=dict)
    recipes: dict[str, Recipe] = field(default_factory=dict)
    recipe_paths: dict[str, Path] = field(default_factory=dict)
    errors: list[RegistryError] = field(default_factory=list)

    def paper(self, paper_id: str) -> PaperInputs:
        if paper_id not in self.papers:
            raise unknown_name("paper", paper_id, self.papers, listing="reprolab list papers")
        return self.papers[paper_id]


def load_inputs(root: Path | None = None, *, strict: bool = True) -> ReportInputs:
    """Load every paper, published table, benchmark and recipe under `root`.

    With `strict`, invalid files raise RegistryErrors (every bad file listed); otherwise they are
    collected in `.errors` and left out, which is what `reprolab report --check` wants.
    """
    root = root or paths.project_root()
    inputs = ReportInputs(root=root)

    def attempt(loader, path):
        try:
            return loader(path)
        except RegistryError as error:
            inputs.errors.append(error)
            return None

    for path in sorted(paths.benchmarks_dir(root).glob("*.yaml")):
        if bench := attempt(load_benchmark, path):
            inputs.benchmarks[bench.id] = bench
    for folder in sorted(p for p in paths.reproductions_dir(root).iterdir() if p.is_dir()):
        if not (folder / "paper.yaml").is_file():
            inputs.errors.append(RegistryError(folder / "paper.yaml", [
                "file not found (every folder under reproductions/ is a paper and needs one)"
            ]))
            continue
        paper = attempt(load_paper, folder / "paper.yaml")
        published = folder / "published.yaml"
        if not published.is_file():
            inputs.errors.append(RegistryError(published, [
                "file not found (write `[]` with a comment when no number is known yet)"
            ]))
            continue
        rows = attempt(load_published, published)
        if paper is not None and rows is not None:
            notes = folder / "NOTES.md"
            inputs.papers[paper.id] = PaperInputs(
                paper=paper, rows=tuple(rows), folder=folder,
                notes=notes.read_text(encoding="utf-8") if notes.is_file() else None,
            )
    for path in recipe_files(root):
        if recipe := attempt(load_recipe, path):
            inputs.recipes[recipe.id] = recipe
            inputs.recipe_paths[recipe.id] = path
    if strict and inputs.errors:
        raise RegistryErrors(inputs.errors)
    return inputs


@dataclass(frozen=True)
class UnreadableResult:
    path: Path
    error: str


def load_runs(results_dir: Path | None = None) -> tuple[list[RunResult], list[UnreadableResult]]:
    """The latest attempt of every run under `results_dir`, sorted by recipe and run id.

    A corrupt or invalid result file does not stop the report: it is returned separately so the
    report can name it.
    """
    store = ResultsStore(results_dir)
    runs, unreadable = [], []
    for path in sorted(store.root.glob("*/*.json")):
        try:
            runs.append(store.read(path))
        except ValueError as error:
            message = str(error).removeprefix(f"{path}: ")  # the path is reported separately
            unreadable.append(UnreadableResult(path=path, error=message))
    return latest_attempts(runs), unreadable
