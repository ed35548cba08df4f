"""Peak resident memory of this process over a block of code, for the CPU rows of the benchmarks
(benchmarks/perf/*.py, tests/perf/*.py): `with PeakRSS() as peak: ...; peak.extra_mib`."""

from __future__ import annotations

import os
import threading


class PeakRSS:
    """Peak resident memory above the level at entry, sampled from /proc every 5 ms (a
    short-lived peak between two samples is missed; the allocator's reuse of memory freed before
    entry makes the figure approximate)."""

    def __init__(self):
        self.page = os.sysconf("SC_PAGE_SIZE")

    def _rss(self) -> int:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * self.page

    def __enter__(self) -> PeakRSS:
        self.base = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._rss())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())

    @property
    def extra_mib(self) -> float:
        return (max(self.peak, self._rss()) - self.base) / 2**20
