"""Unknown names on the command line or in a recipe: one message, with a "did you mean" from difflib.

Every lookup of a name a user typed (recipe, paper, dataset, stage, inference step, catalog entry,
override key) raises `unknown_name(...)`, so a typo gets the closest names instead of a dump of
all of them:

    unknown recipe 'sthv1-selfy-tsm-r50-8'; did you mean sthv1-selfy-tsm-r50-8f?
    unknown recipe 'xyz'; 47 known; `reprolab list recipes` shows them
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from reprolab.errors import ConfigError

LIST_ALL_UP_TO = 8  # a short list of names is shown whole when nothing is close


class UnknownNameError(ConfigError, KeyError):
    """A command or recipe names something that does not exist (exit 2: a usage error)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def close_matches(name: object, known: Iterable[str], n: int = 3) -> list[str]:
    return difflib.get_close_matches(str(name), sorted(set(known)), n=n, cutoff=0.6)


def hint(name: object, known: Iterable[str], listing: str | None = None) -> str:
    """`did you mean a, b?`, else the names when there are few, else how many and where to look."""
    known = sorted(set(known))
    close = close_matches(name, known)
    if close:
        return f"did you mean {', '.join(close)}?"
    if not known:
        return "none exist yet"
    if len(known) <= LIST_ALL_UP_TO or listing is None:
        return f"known: {', '.join(known)}"
    return f"{len(known)} known; `{listing}` shows them"


def unknown_name(kind: str, name: object, known: Iterable[str], *, where: str = "",
                 listing: str | None = None) -> UnknownNameError:
    """The error for `name` not among `known` (`where`: e.g. "recipe toy-chain: ")."""
    return UnknownNameError(f"{where}unknown {kind} {name!r}; {hint(name, known, listing)}")
