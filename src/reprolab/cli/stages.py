"""`reprolab run-stage`, `reprolab run-stages` and `reprolab stages resolve|dvc|show`: the CLI over reprolab.pipeline.

    reprolab run-stage <recipe> <stage> [--profile tiny] [--seed N] [--device cpu] [key=value ...]
    reprolab run-stages <recipe> [--from STAGE] [--profile tiny] [--seed N] [key=value ...]
    reprolab stages resolve <recipe> [--profile tiny] [key=value ...]   write the stage specs
    reprolab stages dvc <recipe> [--profile tiny] [key=value ...]       write the chain's dvc.yaml
    reprolab stages show <recipe> [--profile tiny] [key=value ...]      which stages are done

`key=value` overrides apply to every task stage (optim.epochs=1); `stages.<stage>.<key>=value`
to one stage (stages.pseudo-labels.options.min_score=0.5). The commands given the same profile,
seed and overrides resolve the same chain: `dvc repro pipelines/<recipe>/<profile>/dvc.yaml`
runs exactly what `reprolab run-stages` runs.
"""

from __future__ import annotations

import argparse
import os
import sys

from reprolab.cli.options import add_profile_and_overrides
from reprolab.errors import EXIT_FAILED, EXIT_OK
from reprolab.names import unknown_name


def _common(parser: argparse.ArgumentParser, *, runs: bool) -> None:
    parser.add_argument("--seed", type=int, default=None, help="default: the recipe's first seed")
    if runs:
        parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
        parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_profile_and_overrides(parser)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "run-stage", help="run one stage of a multi-stage recipe",
        description="Run STAGE of RECIPE's `stages:` chain (a task run or an inference step) into "
                    "runs/<recipe>/<profile>/stages/<stage>/. The stages it reads must be done.")
    p.add_argument("recipe")
    p.add_argument("stage")
    _common(p, runs=True)
    p.set_defaults(handler=_run_stage)

    p = subparsers.add_parser(
        "run-stages", help="run a multi-stage recipe's whole chain",
        description="Write the stage specs, then run every stage of RECIPE in order; the last "
                    "stage's result is the recipe's result in results/<recipe>/.")
    p.add_argument("recipe")
    p.add_argument("--from", dest="start", metavar="STAGE", default=None,
                   help="start at STAGE (the stages before it must be done and current)")
    _common(p, runs=True)
    p.set_defaults(handler=_run_stages)

    p = subparsers.add_parser(
        "stages", help="resolve a multi-stage recipe, write its dvc.yaml, show its state",
        description="Tools for recipes with `stages:` (see reprolab.pipeline).")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    q = actions.add_parser("resolve", help="write each stage's resolved spec (what DVC hashes)",
                           description="Write runs/<recipe>/<profile>/specs/<stage>.yaml.")
    q.add_argument("recipe")
    _common(q, runs=False)
    q.set_defaults(handler=_resolve)
    q = actions.add_parser("dvc", help="write the chain as DVC stages",
                           description="Write pipelines/<recipe>/<profile>/dvc.yaml: a `resolve` "
                                       "stage, then one DVC stage per recipe stage.")
    q.add_argument("recipe")
    _common(q, runs=False)
    q.set_defaults(handler=_dvc)
    q = actions.add_parser("show", help="list the stages: kind, inputs, state, run id")
    q.add_argument("recipe")
    _common(q, runs=False)
    q.set_defaults(handler=_show)


def _run(args: argparse.Namespace, stage: str) -> int:
    from reprolab.pipeline.run import StageFailed, run_stage

    try:
        run_stage(args.recipe, stage, profile=args.profile, overrides=args.overrides, seed=args.seed,
                  device=args.device, show_progress=not args.no_progress)
    except StageFailed as error:
        print(f"reprolab: {error}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _run_stage(args: argparse.Namespace) -> int:
    if args.no_progress:
        os.environ["REPROLAB_NO_PROGRESS"] = "1"
    return _run(args, args.stage)


def _run_stages(args: argparse.Namespace) -> int:
    from reprolab.pipeline.resolve import load_chain, write_specs
    from reprolab.pipeline.run import check_stages

    if args.no_progress:
        os.environ["REPROLAB_NO_PROGRESS"] = "1"
    _, specs, layout = load_chain(args.recipe, args.profile, args.overrides, args.seed)
    names = list(specs)
    if args.start is not None and args.start not in specs:
        raise unknown_name("stage", args.start, names, where=f"--from: recipe {args.recipe}: ")
    check_stages(specs, args.device)  # a bad key or value: exit 2 before anything is written
    write_specs(specs, layout)
    for name in names[names.index(args.start) if args.start else 0:]:
        print(f"\n== {args.recipe}: stage {name} ({specs[name]['stage']['kind']})", flush=True)
        code = _run(args, name)
        if code != EXIT_OK:
            return code
    print(f"\n{args.recipe}: {len(names)} stages done in {layout.relative(layout.base / 'stages')}")
    return EXIT_OK


def _resolve(args: argparse.Namespace) -> int:
    from reprolab.pipeline.resolve import load_chain, write_specs

    _, specs, layout = load_chain(args.recipe, args.profile, args.overrides, args.seed)
    for path in write_specs(specs, layout):
        print(layout.relative(path))
    return EXIT_OK


def _dvc(args: argparse.Namespace) -> int:
    from reprolab.pipeline.dvc import write_dvc_yaml

    path = write_dvc_yaml(args.recipe, args.profile, args.overrides, args.seed)
    print(f"wrote {path}\nrun: dvc repro {path}")
    return EXIT_OK


def _show(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from reprolab.pipeline.resolve import load_chain
    from reprolab.pipeline.run import read_record, stage_state

    _, specs, layout = load_chain(args.recipe, args.profile, args.overrides, args.seed)
    rows = []
    for name, spec in specs.items():
        state, why = stage_state(specs, layout, name)
        what = spec["stage"].get("infer") or spec.get("task")
        rows.append([name, spec["stage"]["kind"], what, ", ".join(spec["stage"]["inputs"]) or "-",
                     f"{state}: {why}" if state == "stale" else state,
                     (read_record(layout, name) or {}).get("run_id", "")])
    print(tabulate(rows, headers=["stage", "kind", "runs", "reads", "state", "run id"],
                   tablefmt="github"))
    return EXIT_OK
