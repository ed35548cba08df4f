"""Load the YAML registries into typed models, with errors that name the file and the key."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from reprolab import paths
from reprolab.errors import InvalidRegistryError
from reprolab.names import unknown_name
from reprolab.registry.models import Benchmark, DatasetCard, Paper, PublishedRow, Recipe

M = TypeVar("M", bound=BaseModel)


class RegistryError(InvalidRegistryError):
    """A registry file is missing, unreadable or invalid. The message names the file and key."""

    def __init__(self, path: Path | str, problems: list[str]):
        self.path = Path(path)
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{self.path}:\n{lines}")


def read_yaml(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return yaml.safe_load(handle)
    except FileNotFoundError:
        raise RegistryError(path, ["file not found"]) from None
    except yaml.YAMLError as error:
        raise RegistryError(path, [f"not valid YAML: {error}"]) from None


def _describe(error: dict[str, Any]) -> str:
    key = ".".join(str(part) for part in error["loc"]) or "(top level)"
    message = error["msg"]
    if error["type"] == "extra_forbidden":
        return f"key `{key}`: unknown key (check its spelling against the schema)"
    if error["type"] == "missing":
        return f"key `{key}`: required but missing"
    got = error.get("input")
    shown = "" if isinstance(got, dict | list) else f" (got {got!r})"
    return f"key `{key}`: {message}{shown}"


def validate(model: type[M], data: Any, path: Path, prefix: str = "") -> M:
    if not isinstance(data, dict):
        raise RegistryError(path, [f"{prefix or 'top level'}: expected a mapping, got {type(data).__name__}"])
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems = [_describe(e) for e in error.errors()]
        if prefix:
            problems = [f"{prefix}: {p}" for p in problems]
        raise RegistryError(path, problems) from None


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Return base with override merged in; nested mappings merge, everything else replaces."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_card(path: Path) -> DatasetCard:
    card = validate(DatasetCard, read_yaml(path), path)
    if card.id != path.parent.name:
        raise RegistryError(path, [f"key `id`: {card.id!r} must equal its folder name {path.parent.name!r}"])
    return card


def load_benchmark(path: Path) -> Benchmark:
    bench = validate(Benchmark, read_yaml(path), path)
    if bench.id != path.stem:
        raise RegistryError(path, [f"key `id`: {bench.id!r} must equal the file name {path.stem!r}"])
    return bench


def load_paper(path: Path) -> Paper:
    paper = validate(Paper, read_yaml(path), path)
    if paper.id != path.parent.name:
        raise RegistryError(path, [f"key `id`: {paper.id!r} must equal its folder name {path.parent.name!r}"])
    return paper


def load_published(path: Path) -> list[PublishedRow]:
    data = read_yaml(path)
    if data is None:
        return []
    if not isinstance(data, list):
        raise RegistryError(path, [f"top level: expected a list of rows, got {type(data).__name__}"])
    return [validate(PublishedRow, row, path, prefix=f"row {i}") for i, row in enumerate(data)]


def _raw_recipe(path: Path, chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read a recipe file with its `base:` chain merged in (base first, the file on top)."""
    if path in chain:
        cycle = " -> ".join(p.name for p in (*chain, path))
        raise RegistryError(path, [f"key `base`: bases form a cycle ({cycle})"])
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise RegistryError(path, ["top level: expected a mapping"])
    base_name = data.pop("base", None)
    if base_name is None:
        return data
    if not isinstance(base_name, str):
        raise RegistryError(path, [f"key `base`: expected a file name, got {base_name!r}"])
    base_path = path.parent / base_name
    if not base_path.is_file():
        raise RegistryError(path, [f"key `base`: {base_name!r} not found next to this file"])
    return deep_merge(_raw_recipe(base_path, (*chain, path)), data)


def load_recipe(path: Path) -> Recipe:
    """Load `reproductions/<paper>/recipes/<id>.yaml`; the id and paper come from its path."""
    data = _raw_recipe(path)
    for key, derived in (("id", path.stem), ("paper", path.parent.parent.name)):
        if key in data and data[key] != derived:
            raise RegistryError(path, [f"key `{key}`: {data[key]!r} must equal {derived!r} (from the path)"])
        data[key] = derived
    return validate(Recipe, data, path)


def recipe_files(root: Path) -> list[Path]:
    """Runnable recipes: files starting with `_` are bases, not rows."""
    return sorted(
        p for p in paths.reproductions_dir(root).glob("*/recipes/*.yaml") if not p.name.startswith("_")
    )


@dataclass
class Registry:
    """Every registry file of the checkout, loaded and cross-checked."""

    root: Path
    datasets: dict[str, DatasetCard] = field(default_factory=dict)
    benchmarks: dict[str, Benchmark] = field(default_factory=dict)
    papers: dict[str, Paper] = field(default_factory=dict)
    published: dict[str, list[PublishedRow]] = field(default_factory=dict)
    recipes: dict[str, Recipe] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict, repr=False)

    def recipe(self, recipe_id: str) -> Recipe:
        if recipe_id not in self.recipes:
            raise unknown_name("recipe", recipe_id, self.recipes, listing="reprolab list recipes")
        return self.recipes[recipe_id]

    def paper(self, paper_id: str) -> Paper:
        if paper_id not in self.papers:
            raise unknown_name("paper", paper_id, self.papers, listing="reprolab list papers")
        return self.papers[paper_id]

    def dataset(self, dataset_id: str) -> DatasetCard:
        if dataset_id not in self.datasets:
            raise unknown_name("dataset card", dataset_id, self.datasets, listing="reprolab list datasets")
        return self.datasets[dataset_id]

    def datasets_of_recipe(self, recipe_id: str) -> list[str]:
        bench = self.benchmarks[self.recipe(recipe_id).benchmark]
        extra = self.recipe(recipe_id).data.get("extra_datasets", [])
        return [bench.dataset, *extra]

    def recipes_of_paper(self, paper_id: str) -> list[Recipe]:
        return [r for r in self.recipes.values() if r.paper == paper_id]


def load_registry(root: Path | None = None) -> Registry:
    """Load every card, benchmark, paper, published table and recipe; check cross-references.

    All problems of all files are gathered first, so one run shows every typo.
    """
    root = root or paths.project_root()
    reg = Registry(root=root)
    problems: list[RegistryError] = []

    def attempt(loader, path):
        try:
            return loader(path)
        except RegistryError as error:
            problems.append(error)
            return None

    for path in sorted(paths.datasets_dir(root).glob("*/card.yaml")):
        if card := attempt(load_card, path):
            reg.datasets[card.id] = card
            reg.files[f"dataset:{card.id}"] = path
    for path in sorted(paths.benchmarks_dir(root).glob("*.yaml")):
        if bench := attempt(load_benchmark, path):
            reg.benchmarks[bench.id] = bench
            reg.files[f"benchmark:{bench.id}"] = path
    for path in sorted(paths.reproductions_dir(root).glob("*/paper.yaml")):
        if paper := attempt(load_paper, path):
            reg.papers[paper.id] = paper
            reg.files[f"paper:{paper.id}"] = path
    for path in sorted(paths.reproductions_dir(root).glob("*/published.yaml")):
        rows = attempt(load_published, path)
        if rows is not None:
            reg.published[path.parent.name] = rows
            reg.files[f"published:{path.parent.name}"] = path
    for path in recipe_files(root):
        if recipe := attempt(load_recipe, path):
            reg.recipes[recipe.id] = recipe
            reg.files[f"recipe:{recipe.id}"] = path

    problems.extend(_cross_check(reg))
    if problems:
        raise RegistryErrors(problems)
    return reg


class RegistryErrors(InvalidRegistryError):
    """Several registry files are invalid; each entry names its file and keys."""

    def __init__(self, errors: list[RegistryError]):
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


def _cross_check(reg: Registry) -> list[RegistryError]:
    errors: list[RegistryError] = []
    for bench in reg.benchmarks.values():
        path = reg.files[f"benchmark:{bench.id}"]
        card = reg.datasets.get(bench.dataset)
        if card is None:
            errors.append(RegistryError(path, [
                f"key `dataset`: no dataset card {bench.dataset!r} (expected datasets/{bench.dataset}/card.yaml)"
            ]))
            continue
        for key, splits in (("train_split", [bench.train_split] if bench.train_split else []),
                            ("eval_split", bench.eval_splits)):
            unknown = [s for s in splits if card.splits and s not in card.splits]
            if unknown:
                errors.append(RegistryError(path, [
                    f"key `{key}`: {unknown[0]!r} is not a split of dataset {card.id!r} "
                    f"(its card has: {', '.join(card.splits)})"
                ]))
    for recipe in reg.recipes.values():
        path = reg.files[f"recipe:{recipe.id}"]
        if recipe.benchmark not in reg.benchmarks:
            errors.append(RegistryError(path, [
                f"key `benchmark`: no benchmark {recipe.benchmark!r} (expected benchmarks/{recipe.benchmark}.yaml)"
            ]))
        if recipe.paper not in reg.papers:
            errors.append(RegistryError(path, [
                f"paper folder {recipe.paper!r} has no paper.yaml"
            ]))
        for extra in recipe.data.get("extra_datasets", []):
            if extra not in reg.datasets:
                errors.append(RegistryError(path, [f"key `data.extra_datasets`: no dataset card {extra!r}"]))
    for paper_id, rows in reg.published.items():
        path = reg.files[f"published:{paper_id}"]
        if paper_id not in reg.papers:
            errors.append(RegistryError(path, [f"paper folder {paper_id!r} has no paper.yaml"]))
        for i, row in enumerate(rows):
            if row.benchmark not in reg.benchmarks:
                errors.append(RegistryError(path, [
                    f"row {i}: key `benchmark`: no benchmark {row.benchmark!r}"
                ]))
            if row.recipe is not None:
                recipe = reg.recipes.get(row.recipe)
                if recipe is None or recipe.paper != paper_id:
                    errors.append(RegistryError(path, [
                        f"row {i}: key `recipe`: no recipe {row.recipe!r} in reproductions/{paper_id}/recipes/"
                    ]))
                elif recipe.benchmark != row.benchmark:
                    errors.append(RegistryError(path, [
                        f"row {i}: key `benchmark`: {row.benchmark!r} but recipe {row.recipe!r} "
                        f"runs {recipe.benchmark!r}"
                    ]))
            bench = reg.benchmarks.get(row.benchmark)
            if bench is not None:
                unknown = set(row.metrics) - set(bench.metrics)
                if unknown:
                    errors.append(RegistryError(path, [
                        f"row {i}: key `metrics`: {sorted(unknown)} are not metrics of benchmark "
                        f"{bench.id!r} ({bench.metrics})"
                    ]))
    return errors
