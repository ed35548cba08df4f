"""One writer at a time: an advisory lock per download or per prepared split.

`flock` locks die with their process, so a killed fetch or prepare never leaves a stale lock.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from reprolab.errors import StepFailedError


class BusyError(StepFailedError):
    """Another process holds the lock (it is fetching or preparing the same thing)."""


@contextmanager
def exclusive(lock_path: Path, what: str) -> Iterator[None]:
    """Hold an exclusive lock on `lock_path` for the block, or raise BusyError at once."""
    lock_path = Path(lock_path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BusyError(f"{what} is in progress in another process (lock {lock_path}); wait "
                            "for it to finish and run the command again") from None
        yield
    finally:
        os.close(fd)  # releases the lock
