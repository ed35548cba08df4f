"""The `reprolab` command: one entry point, one subcommand per step of the flow.

Feature packages add their subcommands through a `register(subparsers)` function in their
`commands` module (listed in COMMAND_MODULES). Handlers import heavy libraries (torch,
datasets) themselves, so `reprolab --help` stays fast.

Exit codes: 0 success, 1 a run or step failed, 2 bad usage, 3 invalid registry files,
4 data missing (fetch or place it first).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable

import yaml
from tabulate import tabulate

from reprolab import __version__
from reprolab.config import PROFILES, ConfigError, resolve
from reprolab.registry import Registry, RegistryError, RegistryErrors, load_registry

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_REGISTRY, EXIT_MISSING_DATA = 0, 1, 2, 3, 4

COMMAND_MODULES: tuple[str, ...] = (
    "reprolab.data.commands",
    "reprolab.engine.commands",
    "reprolab.pipeline.commands",
    "reprolab.report.commands",
    "reprolab.reproduce",
)


class MissingDataError(RuntimeError):
    """A step needs data that is not fetched or prepared; the message says how to get it."""


def _list(args: argparse.Namespace) -> int:
    reg = load_registry()
    rows, headers = _LISTINGS[args.what](reg)
    if args.json:
        print(json.dumps([dict(zip(headers, r, strict=True)) for r in rows], indent=2))
    else:
        print(tabulate(rows, headers=headers, tablefmt="github") if rows else f"no {args.what}")
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
    reg = load_registry()
    rows = sum(len(v) for v in reg.published.values())
    print(
        f"registries valid: {len(reg.datasets)} datasets, {len(reg.benchmarks)} benchmarks, "
        f"{len(reg.papers)} papers, {rows} published rows, {len(reg.recipes)} recipes"
    )
    return EXIT_OK


def _config(args: argparse.Namespace) -> int:
    reg = load_registry()
    config = resolve(reg.recipe(args.recipe), args.profile, args.overrides)
    print(yaml.safe_dump(config, sort_keys=False), end="")
    return EXIT_OK


def add_profile_and_overrides(parser: argparse.ArgumentParser) -> None:
    """The options every command that resolves a recipe takes."""
    parser.add_argument("--profile", choices=PROFILES, default="full",
                        help="full: the paper's setting on the real data; tiny: the same code on fixtures")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="override a recipe key, e.g. optim.lr=0.02 (+key=value adds a key)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reprolab",
        description="Reproduce ten computer-vision papers: data, training, evaluation, reports.",
    )
    parser.add_argument("--version", action="version", version=f"reprolab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

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

    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            # Only a feature that is absent is skipped; a broken import inside it still raises.
            if error.name is None or not (module_name + ".").startswith(error.name + "."):
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    # Overrides may follow options (`config R --profile tiny optim.lr=0.1`), which argparse's
    # subparsers cannot intermix: collect the leftover key=value words here.
    args, extra = parser.parse_known_args(argv)
    if extra:
        if hasattr(args, "overrides") and all("=" in e and not e.startswith("-") for e in extra):
            args.overrides = [*args.overrides, *extra]
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return int(args.handler(args) or EXIT_OK)
    except (RegistryError, RegistryErrors) as error:
        print(f"reprolab: invalid registry file(s):\n{error}", file=sys.stderr)
        return EXIT_REGISTRY
    except MissingDataError as error:
        print(f"reprolab: {error}", file=sys.stderr)
        return EXIT_MISSING_DATA
    except (ConfigError, KeyError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"reprolab: {message}", file=sys.stderr)
        return EXIT_USAGE
    except FileNotFoundError as error:
        print(f"reprolab: {error}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
