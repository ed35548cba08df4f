"""Command-line options shared by the subcommands that resolve a recipe."""

from __future__ import annotations

import argparse

from reprolab.config import PROFILES


def add_profile_and_overrides(parser: argparse.ArgumentParser) -> None:
    """The options every command that resolves a recipe takes."""
    parser.add_argument("--profile", choices=PROFILES, default="full",
                        help="full: the paper's setting on the real data; tiny: the same code on fixtures")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="override a recipe key, e.g. optim.lr=0.02 (+key=value adds a key)")
