"""One lookup type for everything a recipe names: models, backbones, losses, tasks, label spaces.

A catalog maps a name to the function or class that builds it; entries are registered where they
are defined, with a decorator, so a reader goes from a recipe's `name:` to the code in one grep:

    MODELS = Catalog("model")

    @MODELS.register
    def selfy_tsm_resnet50(**kwargs) -> TSN: ...

    MODELS.names()                      # every name, sorted (tests parametrise over it)
    MODELS.get("selfy_tsm_resnet50")    # the builder; an unknown name says "did you mean ..."
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar, overload

from reprolab.names import UnknownNameError, unknown_name

__all__ = ["Catalog", "UnknownNameError"]

T = TypeVar("T")


class Catalog(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}

    @overload
    def register(self, entry: T, /) -> T: ...
    @overload
    def register(self, *, name: str) -> Callable[[T], T]: ...

    def register(self, entry: T | None = None, /, *, name: str | None = None):
        """Register `entry` under its own `__name__`, or under `name=`."""

        def add(item: T) -> T:
            key = name or item.__name__
            if key in self._entries:
                raise ValueError(f"{self.kind} {key!r} is registered twice")
            self._entries[key] = item
            return item

        return add(entry) if entry is not None else add

    def get(self, name: str) -> T:
        if name not in self._entries:
            raise unknown_name(self.kind, name, self._entries)
        return self._entries[name]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)
