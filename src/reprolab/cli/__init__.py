"""The `reprolab` command: one entry point, one subcommand per step of the flow.

A thin layer over the library: each module of this package registers its subcommands through a
`register(subparsers)` function (listed in COMMAND_MODULES) and its handlers call library
functions. Handlers import heavy libraries (torch, datasets) themselves, so `reprolab --help`
stays fast. The library raises reprolab.errors types; `main` turns them into one line and an
exit code: 0 success, 1 a run or step failed, 2 bad usage, 3 invalid registry files, 4 data
missing (fetch or place it first). Nothing outside this package imports it.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from reprolab import __version__
from reprolab.errors import (  # noqa: F401  (re-exported: the exit codes of the command)
    EXIT_FAILED,
    EXIT_MISSING_DATA,
    EXIT_OK,
    EXIT_REGISTRY,
    EXIT_USAGE,
    MissingDataError,
    ReprolabError,
)

COMMAND_MODULES: tuple[str, ...] = (
    "reprolab.cli.registry",
    "reprolab.cli.data",
    "reprolab.cli.runs",
    "reprolab.cli.stages",
    "reprolab.cli.report",
    "reprolab.cli.reproduce",
)


class _Parser(argparse.ArgumentParser):
    """argparse with a "did you mean" for a mistyped command or choice (reprolab.names)."""

    def _check_value(self, action: argparse.Action, value: object) -> None:
        if action.choices is not None and value not in action.choices:
            from reprolab.names import hint

            raise argparse.ArgumentError(action, f"invalid choice: {value!r}; {hint(value, action.choices)}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="reprolab",
        description="Reproduce ten computer-vision papers: data, training, evaluation, reports.",
    )
    parser.add_argument("--version", action="version", version=f"reprolab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

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
    except ReprolabError as error:
        prefix = "invalid registry file(s):\n" if error.exit_code == EXIT_REGISTRY else ""
        print(f"reprolab: {prefix}{error}", file=sys.stderr)
        return error.exit_code
    except KeyError as error:  # an unknown name on the command line (recipe, paper, dataset)
        print(f"reprolab: {error.args[0] if error.args else error}", file=sys.stderr)
        return EXIT_USAGE
    except FileNotFoundError as error:
        print(f"reprolab: {error}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
