"""Metric logs as JSON lines, and progress bars on the main process only.

`metrics.jsonl` gets one object per epoch (`{"epoch": 3, "split": "train", "loss": ...}`) and one
per evaluation; `dvc plots show runs/<r>/metrics.jsonl` and pandas `read_json(lines=True)` read it.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from reprolab import atomic


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class JsonlLog:
    def __init__(self, path: Path, enabled: bool = True):
        self.path = Path(path)
        self.enabled = enabled
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        line = json.dumps({k: _plain(v) for k, v in record.items()}, sort_keys=False)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def read(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def truncate_after(self, epoch: int) -> None:
        """Drop records of epochs >= `epoch` (a resumed run rewrites them)."""
        if not self.enabled or not self.path.is_file():
            return
        kept = [r for r in self.read() if int(r.get("epoch", -1)) < epoch]
        atomic.write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))


def progress(iterable, *, enabled: bool, total: int | None = None, desc: str = ""):
    """A tqdm bar on the main process; the bare iterable elsewhere (and when disabled)."""
    if not enabled or os.environ.get("REPROLAB_NO_PROGRESS"):
        return iterable
    return tqdm(iterable, total=total, desc=desc, leave=False, dynamic_ncols=True)
