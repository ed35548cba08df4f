"""Prepare: raw (fetched and extracted) data -> shards + one manifest per split.

A dataset's preparer is the module `reprolab.data.prepare.<id>` (dashes become underscores) with
two functions and two optional constants:

```python
SHARD_SIZE = 128          # samples per shard (optional)
VERSION = 1               # bump when encode() changes its output (optional)

def plan(ctx: PrepareContext) -> list[SplitPlan]:
    '''Read labels/lists from ctx.extracted_dir(...) / ctx.raw_file(...); return each split's
    classes and samples (SampleSpec: id, label, source, extra) in a deterministic order.'''

def encode(spec: SampleSpec, options: dict) -> dict:
    '''Runs in a worker process: read spec.source, return the payload, e.g. {"frames": [jpeg
    bytes, ...]} for a video or {"image": bytes} for an image. Must be a module-level function.'''

def default_options(ctx: PrepareContext) -> dict:   # optional
    '''Encoding settings per profile (e.g. resize); `--option`-style overrides win. They are part
    of the plan: changing them rewrites the shards.'''
```

The engine (`prepare_dataset`) runs encode over a process pool, shard by shard, writes every
shard atomically and skips shards already written for the same plan (a killed prepare resumes),
checks counts against the card (the card's `tiny:` block in the tiny profile: `tiny.classes`
and `tiny.splits.<split>`), checks that splits are disjoint, and writes the manifest and the
info JSON with the content fingerprint.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from reprolab import atomic
from reprolab.data.layout import DatasetLayout, Profile
from reprolab.data.locks import exclusive
from reprolab.data.manifest import split_fingerprint, write_manifest, write_split_info
from reprolab.data.shards import read_shard_table, shard_name, write_shard
from reprolab.errors import StepFailedError
from reprolab.registry import DatasetCard

DEFAULT_SHARD_SIZE = 128
FAIL_AT_SHARD_ENV = "REPROLAB_PREPARE_FAIL_AT_SHARD"  # test hook: "<split>:<k>" raises in shard k


class PrepareError(StepFailedError):
    """Prepared data would be wrong (counts, overlap, duplicates); nothing was put in place."""


@dataclass(frozen=True)
class SampleSpec:
    id: str
    label: int                     # index into the split's classes; -1: no single label
    source: Any                    # picklable: what encode() reads (a folder, a file, ...)
    extra: dict[str, Any] = field(default_factory=dict)  # scalar manifest columns


@dataclass
class SplitPlan:
    name: str
    classes: list[str] | None
    samples: list[SampleSpec]


@dataclass(frozen=True)
class PrepareContext:
    card: DatasetCard
    layout: DatasetLayout
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def profile(self) -> Profile:
        return self.layout.profile

    def raw_file(self, filename: str) -> Path:
        path = self.layout.raw_file(filename)
        if not path.is_file():
            raise _missing(self, f"{path} is not fetched")
        return path

    def extracted_dir(self, archive_filename: str) -> Path:
        path = self.layout.extracted_dir(archive_filename)
        if not path.is_dir():
            raise _missing(self, f"{path} does not exist ({archive_filename} is not fetched and "
                                 "extracted)")
        return path


def _missing(ctx: PrepareContext, what: str) -> Exception:
    from reprolab.errors import MissingDataError

    flag = "" if ctx.profile == "full" else f" --profile {ctx.profile}"
    return MissingDataError(f"{ctx.card.id}: {what}. Run: reprolab data fetch {ctx.card.id}{flag}")


def preparer_module(dataset_id: str):
    name = f"reprolab.data.prepare.{dataset_id.replace('-', '_')}"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name != name:
            raise
        raise NotImplementedError(f"{dataset_id}: no preparer yet (expected module {name} with "
                                  "plan() and encode())") from None


# ----------------------------------------------------------------------------- workers


@dataclass
class _ShardJob:
    module: str
    split: str
    index: int
    path: Path
    specs: list[SampleSpec]
    options: dict[str, Any]


def _run_shard(job: _ShardJob) -> tuple[int, list[bytes], list[int], bool]:
    """Encode and write one shard (or read back a finished one). Returns digests and frame counts."""
    if job.path.is_file():
        try:
            table = read_shard_table(job.path)
            ids = table.column("id").to_pylist()
        except Exception:  # unreadable (e.g. damaged on disk): build it again
            table, ids = None, None
        if ids == [s.id for s in job.specs]:
            frames = (table.column("frames").combine_chunks().value_lengths().to_pylist()
                      if "frames" in table.column_names else [1] * len(ids))
            return job.index, table.column("sha256").to_pylist(), frames, False
    hook = os.environ.get(FAIL_AT_SHARD_ENV)
    if hook and hook in (f"{job.split}:{job.index}", str(job.index)):
        raise RuntimeError(f"test hook {FAIL_AT_SHARD_ENV}={hook}: failing shard {job.index}")
    encode: Callable = importlib.import_module(job.module).encode
    payloads = []
    for spec in job.specs:
        try:
            payloads.append(encode(spec, job.options))
        except Exception as error:
            raise PrepareError(f"sample {spec.id!r} ({spec.source}): {type(error).__name__}: {error}") from error
    digests = write_shard(job.path, [s.id for s in job.specs], [s.label for s in job.specs], payloads)
    frames = [len(p["frames"]) if "frames" in p else 1 for p in payloads]
    return job.index, digests, frames, True


def _plan_hash(plan: SplitPlan, shard_size: int, options: dict[str, Any], version: int) -> str:
    data = json.dumps({"classes": plan.classes, "shard_size": shard_size, "options": options,
                       "version": version,
                       "samples": [[s.id, s.label, s.extra] for s in plan.samples]},
                      sort_keys=True, default=str)
    return hashlib.sha256(data.encode()).hexdigest()


# ----------------------------------------------------------------------------- checks


def _expected(card: DatasetCard, profile: Profile, split: str) -> tuple[int | None, int | None, str]:
    """(samples, classes, where) the card expects for a split."""
    if profile == "tiny":
        splits = card.tiny.get("splits") or {}
        return splits.get(split), card.tiny.get("classes"), f"tiny.splits.{split} / tiny.classes"
    spec = card.splits.get(split)
    classes = spec.classes if spec is not None and isinstance(spec.classes, int) else card.expect.classes
    return (spec.samples if spec else None), classes, f"splits.{split}"


def check_plans(card: DatasetCard, profile: Profile, plans: list[SplitPlan], *,
                allow_count_mismatch: bool = False) -> list[str]:
    """Duplicates and overlaps raise; count mismatches raise unless allowed (then warn)."""
    problems, seen = [], {}
    for plan in plans:
        ids = [s.id for s in plan.samples]
        if len(set(ids)) != len(ids):
            dupes = sorted({i for i in ids if ids.count(i) > 1})[:5]
            raise PrepareError(f"{card.id}/{plan.name}: duplicate sample ids {dupes}")
        for other, other_ids in seen.items():
            overlap = sorted(set(ids) & other_ids)
            if overlap:
                raise PrepareError(f"{card.id}: splits {other!r} and {plan.name!r} share "
                                   f"{len(overlap)} sample ids, e.g. {overlap[:5]}")
        seen[plan.name] = set(ids)
        if plan.classes is not None:
            bad = [s.id for s in plan.samples if not 0 <= s.label < len(plan.classes)]
            if bad:
                raise PrepareError(f"{card.id}/{plan.name}: labels out of range for {bad[:5]}")
        samples, classes, where = _expected(card, profile, plan.name)
        if samples is not None and samples != len(ids):
            problems.append(f"{plan.name}: {len(ids)} samples, the card expects {samples} "
                            f"(datasets/{card.id}/card.yaml key {where})")
        if classes is not None and plan.classes is not None and classes != len(plan.classes):
            problems.append(f"{plan.name}: {len(plan.classes)} classes, the card expects {classes}")
    if problems:
        message = f"{card.id} ({profile}): counts differ from the card:\n  " + "\n  ".join(problems)
        if not allow_count_mismatch:
            raise PrepareError(message + "\n(fix the data or the card; --allow-count-mismatch "
                                         "prepares anyway and records the difference)")
        warnings.warn(message, stacklevel=2)
    return problems


# ----------------------------------------------------------------------------- engine


@dataclass
class SplitReport:
    split: str
    samples: int
    shards: int
    shards_written: int
    fingerprint: str


def prepare_dataset(card: DatasetCard, profile: Profile = "full", *, root: Path | None = None,
                    workers: int | None = None, splits: list[str] | None = None,
                    shard_size: int | None = None, allow_count_mismatch: bool = False,
                    progress: bool = True, options: dict[str, Any] | None = None
                    ) -> list[SplitReport]:
    """Prepare every split of a dataset (or `splits`) into manifests and shards; see the module doc.

    `workers`: processes (default: all CPU cores; 1 runs in this process). One prepare per
    dataset and profile at a time (BusyError otherwise).
    """
    layout = DatasetLayout(card.id, profile, root)
    with exclusive(layout.state / "prepare.lock", f"prepare of {card.id} ({profile})"):
        return _prepare(card, layout, workers=workers, splits=splits, shard_size=shard_size,
                        allow_count_mismatch=allow_count_mismatch, progress=progress,
                        options=options)


def _prepare(card: DatasetCard, layout: DatasetLayout, *, workers: int | None,
             splits: list[str] | None, shard_size: int | None, allow_count_mismatch: bool,
             progress: bool, options: dict[str, Any] | None) -> list[SplitReport]:
    from tqdm.auto import tqdm

    profile = layout.profile
    module = preparer_module(card.id)
    defaults = module.default_options(PrepareContext(card, layout)) \
        if hasattr(module, "default_options") else {}
    ctx = PrepareContext(card, layout, {**defaults, **(options or {})})
    plans = module.plan(ctx)
    if splits:
        unknown = set(splits) - {p.name for p in plans}
        if unknown:
            from reprolab.names import unknown_name

            raise unknown_name("split", sorted(unknown)[0], [p.name for p in plans], where=f"{card.id}: ")
    problems = check_plans(card, profile, plans, allow_count_mismatch=allow_count_mismatch)
    plans = [p for p in plans if not splits or p.name in splits]
    shard_size = shard_size or getattr(module, "SHARD_SIZE", DEFAULT_SHARD_SIZE)
    version = getattr(module, "VERSION", 1)
    workers = max(1, workers or os.cpu_count() or 1)

    reports = []
    for plan in plans:
        shards_dir = layout.shards_dir(plan.name)
        plan_id = _plan_hash(plan, shard_size, ctx.options, version)
        plan_file = shards_dir / "plan.json"
        if shards_dir.exists():
            try:
                same = json.loads(plan_file.read_text()).get("plan") == plan_id
            except (OSError, ValueError):
                same = False
            if not same:  # shards of another plan (other data, options or code): start over
                shutil.rmtree(shards_dir)
        for stale in (layout.manifest(plan.name), layout.split_info(plan.name)):
            stale.unlink(missing_ok=True)
        shards_dir.mkdir(parents=True, exist_ok=True)
        for leftover in shards_dir.glob(".*.tmp"):  # from a process killed mid-write
            leftover.unlink()
        atomic.write_json(plan_file, {"plan": plan_id, "samples": len(plan.samples),
                                      "shard_size": shard_size})
        jobs = [_ShardJob(module.__name__, plan.name, k, shards_dir / shard_name(k),
                          plan.samples[start:start + shard_size], ctx.options)
                for k, start in enumerate(range(0, len(plan.samples), shard_size))]
        with tqdm(total=len(plan.samples), desc=f"prepare {card.id}/{plan.name}", unit="sample",
                  disable=not progress) as bar:
            results, written = _run_jobs(jobs, workers, bar)
        reports.append(_finish_split(card, layout, plan, jobs, results, written, problems,
                                     ctx.options))
    return reports


def _run_jobs(jobs: list[_ShardJob], workers: int, bar) -> tuple[dict[int, tuple[list[bytes], list[int]]], int]:
    """Run the shard jobs (in a spawn-context process pool unless workers == 1).

    On the first failure the pending jobs are cancelled and the error re-raised; shards that
    finished stay on disk for the next run.
    """
    results: dict[int, tuple[list[bytes], list[int]]] = {}
    written = 0

    def collect(result: tuple[int, list[bytes], list[int], bool]) -> None:
        nonlocal written
        index, digests, frames, did_write = result
        results[index] = (digests, frames)
        written += did_write
        bar.update(len(digests))

    if workers == 1 or len(jobs) == 1:
        for job in jobs:
            collect(_run_shard(job))
        return results, written
    # spawn, not fork: workers must not inherit the parent's threads (tqdm, pyarrow, torch).
    with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(_run_shard, job) for job in jobs]
        for future in as_completed(futures):
            if future.exception() is not None:
                for other in futures:
                    other.cancel()
                raise future.exception()
            collect(future.result())
    return results, written


def _finish_split(card, layout, plan, jobs, results, written, problems, options) -> SplitReport:
    digests: list[bytes] = []
    columns: dict[str, list[Any]] = {"id": [], "label": [], "shard": [], "row": [], "sha256": [],
                                     "num_frames": []}
    extra_keys = sorted({k for s in plan.samples for k in s.extra})
    for key in extra_keys:
        columns[key] = []
    for job in jobs:
        shard_digests, frames = results[job.index]
        shard_rel = job.path.relative_to(layout.prepared).as_posix()
        for row, (spec, digest, count) in enumerate(zip(job.specs, shard_digests, frames, strict=True)):
            columns["id"].append(spec.id)
            columns["label"].append(spec.label)
            columns["shard"].append(shard_rel)
            columns["row"].append(row)
            columns["sha256"].append(digest.hex())
            columns["num_frames"].append(count)
            for key in extra_keys:
                columns[key].append(spec.extra.get(key))
            digests.append(digest)
    fingerprint = split_fingerprint(digests)
    write_manifest(layout.manifest(plan.name), columns, plan.classes)
    class_counts = None
    if plan.classes is not None:
        counts = [0] * len(plan.classes)
        for label in columns["label"]:
            counts[label] += 1
        class_counts = dict(zip(plan.classes, counts, strict=True))
    write_split_info(layout.split_info(plan.name), {
        "dataset": card.id, "profile": layout.profile, "split": plan.name,
        "samples": len(plan.samples), "classes": plan.classes,
        "num_classes": len(plan.classes) if plan.classes is not None else None,
        "class_counts": class_counts, "frames": sum(columns["num_frames"]),
        "shards": len(jobs), "fingerprint": fingerprint, "options": options,
        "count_problems": [p for p in problems if p.startswith(f"{plan.name}:")],
        "prepared_at": datetime.now(UTC).isoformat(timespec="seconds"),
    })
    return SplitReport(plan.name, len(plan.samples), len(jobs), written, fingerprint)


__all__ = ["PrepareContext", "PrepareError", "SampleSpec", "SplitPlan", "SplitReport",
           "check_plans", "prepare_dataset", "preparer_module"]
