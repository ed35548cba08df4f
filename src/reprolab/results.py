"""The results store: one JSON file per run attempt, written once, never overwritten or deleted.

Layout: `results/<recipe>/<run-id>.json`, then `<run-id>.attempt2.json`, ... when the same run is
evaluated again (a resumed run after a failure, say): the latest attempt speaks for the run, the
earlier ones stay as its history. A run id starts with the UTC time, so a listing is in
chronological order, and ends with random hex, so two runs started in the same second differ.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import traceback
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


SCHEMA_VERSION = 2  # 2: schema_version, config_hash and attempt recorded


class RunResult(BaseModel):
    """Everything needed to trust, compare and rerun one run."""

    model_config = ConfigDict(extra="forbid")
    schema_version: int = 1  # records written before the field existed are version 1
    run_id: str
    attempt: int = Field(default=1, ge=1, description="1 for the first record of this run id")
    recipe: str
    paper: str
    benchmark: str
    profile: Literal["full", "tiny"]
    seed: int
    status: Literal["ok", "failed"]
    config: dict[str, Any]
    config_hash: str | None = Field(default=None, description="sha256 of the resolved config")
    metrics: dict[str, float] = Field(default_factory=dict)
    chance: dict[str, float] = Field(
        default_factory=dict, description="each metric of a model that knows nothing (random outputs "
                                          "on the same split): the level a result has to clear")
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


def config_hash(config: dict[str, Any]) -> str:
    """Content hash of a resolved config: equal configs, equal hashes, whatever the key order."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


class ResultsStore:
    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root is not None else paths.results_dir()

    def path_of(self, recipe: str, run_id: str, attempt: int = 1) -> Path:
        suffix = "" if attempt == 1 else f".attempt{attempt}"
        return self.root / recipe / f"{run_id}{suffix}.json"

    def attempts(self, recipe: str, run_id: str) -> int:
        """How many records of this run exist."""
        count = 0
        while self.path_of(recipe, run_id, count + 1).is_file():
            count += 1
        return count

    def write(self, result: RunResult) -> Path:
        """Write atomically; an existing record of the same run and attempt raises FileExistsError."""
        path = self.path_of(result.recipe, result.run_id, result.attempt)
        try:
            return atomic.write_json(path, result.model_dump(mode="json"), overwrite=False)
        except FileExistsError:
            raise FileExistsError(f"{path}: a result with run id {result.run_id} (attempt "
                                  f"{result.attempt}) already exists") from None

    def add(self, result: RunResult) -> Path:
        """Record `result` as the next attempt of its run; earlier records are kept."""
        for _ in range(100):  # another writer may claim the same attempt number first
            attempt = self.attempts(result.recipe, result.run_id) + 1
            try:
                return self.write(result.model_copy(update={"attempt": attempt}))
            except FileExistsError:
                continue
        raise FileExistsError(f"{self.root / result.recipe}: could not claim a record for {result.run_id}")

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
        """The latest attempt of every run, in run-id order."""
        pattern = f"{recipe}/*.json" if recipe else "*/*.json"
        return latest_attempts([self.read(p) for p in sorted(self.root.glob(pattern))])


def latest_attempts(results: list[RunResult]) -> list[RunResult]:
    """One result per (recipe, run id): its latest attempt; sorted by recipe and run id."""
    latest: dict[tuple[str, str], RunResult] = {}
    for result in results:
        key = (result.recipe, result.run_id)
        if key not in latest or latest[key].attempt < result.attempt:
            latest[key] = result
    return [latest[key] for key in sorted(latest)]


# --------------------------------------------------------------------------- recording a run


def run_provenance(config: dict[str, Any], device: str, world_size: int,
                   splits: dict[str, str] | None = None, **extra: Any) -> Provenance:
    """Code version, data identity, software and hardware of a run of `config`; `splits` are the
    fingerprints of the prepared splits it read (reprolab.provenance.data_hashes adds weights and
    DVC hashes); `extra` adds keys (a pipeline stage's `stages`: the chain of runs it came from)."""
    from reprolab import provenance

    root = paths.project_root()
    git = provenance.git_state(root)
    return Provenance(
        git_commit=git["commit"], git_dirty=git["dirty"],
        data_hashes=provenance.data_hashes(root, config, splits),
        packages=provenance.package_versions(), device=device, world_size=world_size,
        hardware=provenance.hardware(device), **extra,
    )


def error_text(error: BaseException) -> str:
    """The error and the last frames of its traceback, as a failed record keeps them."""
    return f"{type(error).__name__}: {error}\n" + "".join(traceback.format_tb(error.__traceback__)[-3:])


def run_result(config: dict[str, Any], run: dict[str, Any], *, status: Literal["ok", "failed"],
               device: str, world_size: int, metrics: dict[str, float] | None = None,
               chance: dict[str, float] | None = None, split: SplitInfo | None = None,
               error: BaseException | str | None = None,
               wall_time_s: float = 0.0, history: list[dict[str, Any]] | None = None,
               log_path: str | None = None, provenance: dict[str, Any] | None = None) -> RunResult:
    """The RunResult of one train/evaluate attempt of `run` (its run.json, whose `data_hashes`
    are the split fingerprints its training and evaluation read)."""
    if isinstance(error, BaseException):
        error = error_text(error)
    return RunResult(
        schema_version=SCHEMA_VERSION, run_id=run["run_id"], recipe=config["recipe"],
        paper=config["paper"], benchmark=config["benchmark"], profile=config["profile"],
        seed=int(config["seed"]), status=status, config=config, config_hash=config_hash(config),
        metrics=metrics or {}, chance=chance or {}, history=history or [],
        error=error, split=split,
        provenance=run_provenance(config, device, world_size, run.get("data_hashes"), **(provenance or {})),
        started_at=run["started_at"], wall_time_s=wall_time_s, log_path=log_path,
    )


def record_run(config: dict[str, Any], run: dict[str, Any], *, store: ResultsStore | None = None,
               **fields: Any) -> Path:
    """Add the RunResult of one attempt of `run` to the store (default: results/) and return its path."""
    return (store or ResultsStore()).add(run_result(config, run, **fields))
