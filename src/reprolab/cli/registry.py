"""`reprolab list`, `reprolab check` and `reprolab config`: what the registries hold."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

import yaml
from tabulate import tabulate

from reprolab.cli.options import add_profile_and_overrides
from reprolab.config import resolve
from reprolab.errors import EXIT_OK
from reprolab.registry import Registry, load_registry


def _list(args: argparse.Namespace) -> int:
    reg = load_registry()
    rows, headers = _LISTINGS[args.what](reg)
    if args.json:
        print(json.dumps([dict(zip(headers, r, strict=True)) for r in rows], indent=2))
    else:
        # disable_numparse: ids such as arXiv 1904.09626 or 1701.00352 are names, not numbers.
        print(tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)
              if rows else f"no {args.what}")
    return EXIT_OK


_LISTINGS: dict[str, Callable[[Registry], tuple[list[list], list[str]]]] = {
    "datasets": lambda reg: (
        [[c.id, c.name, c.modality, c.expect.samples, c.license] for c in reg.datasets.values()],
        ["id", "name", "modality", "samples", "license"],
    ),
    "benchmarks": lambda reg: (
        [[b.id, b.dataset, b.task, ", ".join(b.eval_splits), ", ".join(b.metrics)] for b in reg.benchmarks.values()],
        ["id", "dataset", "task", "eval split", "metrics"],
    ),
    "papers": lambda reg: (
        [[p.id, p.short, p.arxiv, p.venue, len(reg.recipes_of_paper(p.id)), len(reg.published.get(p.id, []))]
         for p in reg.papers.values()],
        ["id", "short", "arXiv", "venue", "recipes", "published rows"],
    ),
    "recipes": lambda reg: (
        [[r.id, r.paper, r.benchmark, r.task, r.title] for r in reg.recipes.values()],
        ["id", "paper", "benchmark", "task", "reproduces"],
    ),
}


def _check(args: argparse.Namespace) -> int:
    from reprolab.pipeline.resolve import check_stages
    from reprolab.tasks import check_recipes

    reg = load_registry()
    rows = sum(len(v) for v in reg.published.values())
    resolved = check_recipes(reg) + check_stages(reg)
    print(
        f"registries valid: {len(reg.datasets)} datasets, {len(reg.benchmarks)} benchmarks, "
        f"{len(reg.papers)} papers, {rows} published rows, {len(reg.recipes)} recipes "
        f"({resolved} recipe configurations resolved and type-checked)"
    )
    return EXIT_OK


def _config(args: argparse.Namespace) -> int:
    reg = load_registry()
    config = resolve(reg.recipe(args.recipe), args.profile, args.overrides)
    print(yaml.safe_dump(config, sort_keys=False), end="")
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list datasets, benchmarks, papers or recipes",
                       description="List what the registries hold.")
    p.add_argument("what", choices=sorted(_LISTINGS))
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=_list)

    p = sub.add_parser("check", help="validate every registry file",
                       description="Load and cross-check every card, benchmark, paper, published "
                                   "table and recipe; exit 3 naming each bad file and key.")
    p.set_defaults(handler=_check)

    p = sub.add_parser("config", help="print a recipe's resolved configuration",
                       description="Print the configuration a run of RECIPE would use.")
    p.add_argument("recipe")
    add_profile_and_overrides(p)
    p.set_defaults(handler=_config)
