"""Metric logs, and progress bars on the main process only.

`metrics.jsonl` gets one JSON line per epoch (`{"epoch": 3, "split": "train", "loss": ...,
"eval_top1": ...}`), appended and flushed as the run goes (pandas `read_json(lines=True)` reads
it). DVC's plots read JSON arrays, not JSON lines, so the same records are also kept as one array
in `history.json` (rewritten atomically each epoch): `dvc plots show runs/<r>/history.json -x epoch`.
DVC fails a whole plot when one record lacks a plotted field, so that array gives every record every
field (null where an epoch was not evaluated: `optim.eval_every` > 1).
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


HISTORY_ARRAY = "history.json"


def plot_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`records` with the fields of all of them in each (null where absent), in first-seen order."""
    fields = list(dict.fromkeys(k for r in records for k in r))
    return [{k: r.get(k) for k in fields} for r in records]


class JsonlLog:
    def __init__(self, path: Path, enabled: bool = True, array_name: str = HISTORY_ARRAY):
        self.path = Path(path)
        self.array_path = self.path.with_name(array_name)
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
        atomic.write_json(self.array_path, plot_records(self.read()))

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
        atomic.write_json(self.array_path, plot_records(kept))


def progress(iterable, *, enabled: bool, total: int | None = None, desc: str = ""):
    """A tqdm bar on the main process; the bare iterable elsewhere (and when disabled)."""
    if not enabled or os.environ.get("REPROLAB_NO_PROGRESS"):
        return iterable
    return tqdm(iterable, total=total, desc=desc, leave=False, dynamic_ncols=True)
