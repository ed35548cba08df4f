"""The results store: one JSON file per run, written once, never overwritten.

Layout: `results/<recipe>/<run-id>.json`. A run id starts with the UTC time, so a listing is in
chronological order, and ends with random hex, so two runs started in the same second differ.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from reprolab import atomic, paths


class SplitInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dataset: str
    name: str
    samples: int
    fingerprint: str


class Provenance(BaseModel):
    model_config = ConfigDict(extra="allow")
    git_commit: str | None
    git_dirty: bool | None
    data_hashes: dict[str, str] = Field(default_factory=dict)
    packages: dict[str, str] = Field(default_factory=dict)
    device: str
    world_size: int = 1
    hardware: dict[str, Any] = Field(default_factory=dict)


class RunResult(BaseModel):
    """Everything needed to trust, compare and rerun one run."""

    model_config = ConfigDict(extra="forbid")
    run_id: str
    recipe: str
    paper: str
    benchmark: str
    profile: Literal["full", "tiny"]
    seed: int
    status: Literal["ok", "failed"]
    config: dict[str, Any]
    metrics: dict[str, float] = Field(default_factory=dict)
    history: list[dict[str, Any]] = Field(default_factory=list, description="per-epoch metrics")
    error: str | None = None
    split: SplitInfo | None = None
    provenance: Provenance
    started_at: str
    wall_time_s: float
    log_path: str | None = None


def new_run_id(seed: int, now: datetime | None = None) -> str:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-s{seed}-{secrets.token_hex(3)}"


class ResultsStore:
    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root is not None else paths.results_dir()

    def path_of(self, recipe: str, run_id: str) -> Path:
        return self.root / recipe / f"{run_id}.json"

    def write(self, result: RunResult) -> Path:
        """Write atomically; an existing result with the same id raises FileExistsError."""
        path = self.path_of(result.recipe, result.run_id)
        try:
            return atomic.write_json(path, result.model_dump(mode="json"), overwrite=False)
        except FileExistsError:
            raise FileExistsError(f"{path}: a result with run id {result.run_id} already exists") from None

    def read(self, path: Path) -> RunResult:
        try:
            return RunResult.model_validate(json.loads(Path(path).read_text()))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not valid JSON ({error}); move it away or delete it") from None
        except ValidationError as error:
            first = error.errors()[0]
            key = ".".join(str(p) for p in first["loc"])
            raise ValueError(f"{path}: key `{key}`: {first['msg']}") from None

    def runs(self, recipe: str | None = None) -> list[RunResult]:
        pattern = f"{recipe}/*.json" if recipe else "*/*.json"
        return [self.read(p) for p in sorted(self.root.glob(pattern))]
