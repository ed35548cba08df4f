"""`reprolab reproduce PAPER`: every recipe of a paper, from data to report, by calling the CLI.

This is what `nox -s reproduce-<paper>` runs. It only sequences the other commands:
`data fetch` and `data prepare` for each dataset a recipe reads, `train` and `evaluate` for each
seed (`run-stages` for a recipe with `stages:`), then `report`. In the full profile it never
starts a download on its own: missing data stops the run with the dataset named and the commands to get it, unless `--fetch` is given.
"""

from __future__ import annotations

import argparse
import sys

from reprolab import paths
from reprolab.config import PROFILES, resolve, resolved_config
from reprolab.errors import MissingDataError, UsageError
from reprolab.names import unknown_name
from reprolab.registry import Registry, load_registry
from reprolab.results import new_run_id


def _cli(*argv: str) -> int:
    from reprolab.cli import main

    print(f"\n$ reprolab {' '.join(argv)}", flush=True)
    return main(list(argv))


def _missing_data_message(reg: Registry, dataset_id: str) -> str:
    card = reg.datasets[dataset_id]
    lines = [f"dataset {dataset_id} ({card.name}) is not prepared for the full profile."]
    if card.manual is not None:
        lines.append(f"  It needs a manual download: {card.manual.page}")
        lines.append(f"  {card.manual.steps}")
        lines.append(f"  Place the files in datasets/{dataset_id}/{card.manual.place_in}/, then run:")
    else:
        lines.append("  Get it with:")
    lines.append(f"    reprolab data fetch {dataset_id} && reprolab data prepare {dataset_id}")
    lines.append("  (or pass --fetch to let this command do it; or --profile tiny for the fixtures)")
    return "\n".join(lines)


def _ensure_data(reg: Registry, dataset_id: str, profile: str, fetch: bool) -> int:
    from reprolab.data.layout import DatasetLayout

    if profile == "full" and not fetch:
        if not DatasetLayout(dataset_id, "full", reg.root).prepared_splits():
            raise MissingDataError(_missing_data_message(reg, dataset_id))
        return 0
    return _cli("data", "fetch", dataset_id, "--profile", profile) or _cli(
        "data", "prepare", dataset_id, "--profile", profile
    )


def _check(recipe, profile: str, overrides: list[str]) -> None:
    """A usage error (a bad override, key or value) in any recipe stops the whole command now,
    before a download, a run directory or a result exists."""
    from reprolab.errors import NotBuiltError
    from reprolab.tasks import build_task

    if recipe.stages:
        from reprolab.pipeline.resolve import load_chain
        from reprolab.pipeline.run import check_stages

        check_stages(load_chain(recipe.id, profile, overrides)[1])
        return
    try:
        build_task(resolved_config(recipe.id, profile, overrides))
    except NotBuiltError:
        pass  # not a usage error: its train step fails and says so, the other recipes still run


def _run(args: argparse.Namespace) -> int:
    reg = load_registry()
    if args.all:
        recipes = sorted(reg.recipes.values(), key=lambda r: r.id)
    elif args.paper:
        reg.paper(args.paper)
        recipes = sorted(reg.recipes_of_paper(args.paper), key=lambda r: r.id)
    else:
        raise KeyError("name a paper (e.g. `reprolab reproduce selfy`) or pass --all")
    if args.recipe:
        selection, recipes = recipes, [r for r in recipes if r.id in set(args.recipe)]
        missing = set(args.recipe) - {r.id for r in recipes}
        if missing:
            raise unknown_name("recipe", sorted(missing)[0], [r.id for r in selection],
                               where=f"{args.paper or 'the selection'}: ")
    if not recipes:
        print(f"reprolab: no recipes for {args.paper} yet", file=sys.stderr)
        return 1
    if args.seeds is not None and args.seeds < 1:
        raise UsageError(f"--seeds {args.seeds}: run at least one seed of each recipe")
    for recipe in recipes:
        _check(recipe, args.profile, args.overrides)

    failures: list[str] = []
    prepared: set[str] = set()
    for recipe in recipes:
        # With the command-line overrides, so that `seeds=[3]` decides which seeds run (the
        # `stages.*` ones belong to the chain, checked above, not to the recipe-level keys).
        recipe_level = [o for o in args.overrides if not o.lstrip("+").startswith("stages.")]
        config = resolve(recipe, args.profile, recipe_level)
        # The profile decides what is read: the tiny profile trains from scratch, without weights.
        needed = [reg.benchmarks[recipe.benchmark].dataset, *config["data"].get("extra_datasets", [])]
        for dataset_id in needed:
            if dataset_id not in prepared:
                code = _ensure_data(reg, dataset_id, args.profile, args.fetch)
                if code != 0:
                    # Stop the chain: no training on missing data, and no report rewritten from
                    # whatever runs happen to be on disk.
                    print(f"\nreprolab reproduce: stopped at {recipe.id}: data {dataset_id} is not "
                          "ready (see above); nothing was trained and no report was written",
                          file=sys.stderr)
                    return code
                prepared.add(dataset_id)
        else:
            seeds = config["seeds"]
            for seed in seeds[: args.seeds] if args.seeds else seeds:
                if recipe.stages:  # a chain of runs (reprolab.pipeline): its last stage is the result
                    code = _cli("run-stages", recipe.id, "--profile", args.profile, "--seed", str(seed),
                                *args.overrides)
                else:
                    run_dir = paths.runs_dir() / recipe.id / new_run_id(seed)
                    code = _cli("train", recipe.id, "--profile", args.profile, "--seed", str(seed),
                                "--out", str(run_dir), *args.overrides)
                    if code == 0:
                        code = _cli("evaluate", str(run_dir))
                if code != 0:
                    failures.append(f"{recipe.id} seed {seed}")

    report_out = paths.reports_dir(profile=args.profile)
    papers = sorted({r.paper for r in recipes})
    if _cli("report", *papers, "--profile", args.profile) != 0:
        failures.append("report")
    if failures:
        print("\nreprolab reproduce: failed: " + "; ".join(failures), file=sys.stderr)
        return 1
    print(f"\nreprolab reproduce: done; reports in {report_out}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "reproduce", help="run every recipe of a paper from data to report",
        description="Fetch and prepare the data, train and evaluate each recipe for each seed, "
                    "then write the paper's report. The tiny profile runs on the embedded fixtures.")
    p.add_argument("paper", nargs="?", help="paper id (see `reprolab list papers`)")
    p.add_argument("--all", action="store_true", help="every recipe of every paper")
    p.add_argument("--recipe", action="append", help="only this recipe (repeatable)")
    p.add_argument("--profile", choices=PROFILES, default="full")
    p.add_argument("--seeds", type=int, default=None, help="run only the first N seeds of each recipe")
    p.add_argument("--fetch", action="store_true",
                   help="full profile: download and prepare missing datasets instead of stopping")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="passed on to `reprolab train`")
    p.set_defaults(handler=_run)
