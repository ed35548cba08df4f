"""The error types of reprolab and the exit code each maps to.

The library raises these; the CLI (reprolab.cli) turns them into a message and an exit code.
Every message names the file, key or dataset at fault and says what to do.

    0 success   1 a run or step failed   2 bad usage (command line, recipe keys or values)
    3 invalid registry files   4 data missing (fetch or place it first)
"""

from __future__ import annotations

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_REGISTRY, EXIT_MISSING_DATA = 0, 1, 2, 3, 4


class ReprolabError(Exception):
    """Base of the errors the CLI reports as one line (no traceback)."""

    exit_code = EXIT_FAILED


class UsageError(ReprolabError, ValueError):
    """A command-line value, recipe key or override is wrong; nothing has run yet."""

    exit_code = EXIT_USAGE


class ConfigError(UsageError):
    """An override, profile or recipe block cannot be applied; the message names the key."""


class InvalidRegistryError(ReprolabError, ValueError):
    """A registry YAML file (card, benchmark, paper, published table, recipe) is invalid."""

    exit_code = EXIT_REGISTRY


class MissingDataError(ReprolabError, RuntimeError):
    """A step needs data or weights that are not fetched or prepared; the message says how."""

    exit_code = EXIT_MISSING_DATA


class StepFailedError(ReprolabError, RuntimeError):
    """A data step (fetch, extract, prepare) failed; what is on disk is left consistent."""

    exit_code = EXIT_FAILED


class NotBuiltError(ReprolabError, NotImplementedError):
    """A part of the project that does not exist yet (a trainer, a preparer): said loudly."""

    exit_code = EXIT_FAILED
