"""Where a run came from: code version, data identity, software and hardware."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

PACKAGES = (
    "reprolab", "torch", "torchvision", "numpy", "pandas", "pyarrow", "datasets", "av",
    "torchmetrics", "pytorch-metric-learning", "timm", "dvc",
)


def git_state(root: Path) -> dict[str, Any]:
    """Commit and dirty flag of the checkout; `None` values outside a git repository."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    versions = {"python": sys.version.split()[0]}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def hardware(device: str | None = None) -> dict[str, Any]:
    info: dict[str, Any] = {"platform": platform.platform(), "machine": platform.machine()}
    try:
        import torch
    except ImportError:
        return info
    info["cpu_threads"] = torch.get_num_threads()
    if device and device.startswith("cuda") and torch.cuda.is_available():
        index = torch.device(device).index or 0
        info["gpu"] = torch.cuda.get_device_name(index)
        info["gpu_count"] = torch.cuda.device_count()
        info["cuda"] = torch.version.cuda
    return info


def data_hashes(root: Path, config: dict[str, Any], splits: dict[str, str] | None = None) -> dict[str, str]:
    """Content hashes of the data a run of `config` read.

    - `<dataset>/<profile>/<split>`: the manifest fingerprint of each prepared split the task
      opened (`splits`, from Task.splits_read: sha256 over the samples' ids, labels and bytes);
    - `<weights card>/<file>`: the sha256 of each weights file of a `weights` card the run
      fetched with its data (`data.extra_datasets`), as its fetch verified it;
    - `dvc:<path>`: the md5 DVC recorded for those folders and files, from dvc.lock or a
      `<path>.dvc` file, where DVC tracks them.
    """
    from reprolab.data.layout import DatasetLayout

    hashes = dict(sorted((splits or {}).items()))
    profile = config.get("profile", "full")
    dataset = (config.get("data") or {}).get("dataset") or (config.get("benchmark_spec") or {}).get("dataset")
    tracked = []
    for dataset_id in [d for d in [dataset, *config.get("data", {}).get("extra_datasets", [])] if d]:
        layout = DatasetLayout(dataset_id, profile, root)
        if layout.prepared.is_dir():
            tracked.append(layout.prepared)
        weights = _weights_hashes(root, dataset_id)
        if weights:
            hashes.update(weights)
            tracked.append(DatasetLayout(dataset_id, "full", root).raw)
    dvc = _dvc_md5s(root)
    for path in tracked:
        relative = path.relative_to(root).as_posix()
        if relative in dvc:
            hashes[f"dvc:{relative}"] = dvc[relative]
    return hashes


def _weights_hashes(root: Path, card_id: str) -> dict[str, str]:
    """sha256 of the fetched files of a `weights` card: from its verification stamp when that
    recorded one, else computed (weights cards whose publisher gives no checksum)."""
    from reprolab.data.fetch import file_digests, is_verified
    from reprolab.data.layout import DatasetLayout
    from reprolab.registry import load_card

    layout = DatasetLayout(card_id, "full", root)
    if not layout.card_path.is_file():
        return {}
    card = load_card(layout.card_path)
    if card.kind != "weights":
        return {}
    hashes = {}
    for source in card.sources:
        path = layout.raw_file(source.filename)
        if not path.is_file():
            continue
        digest = source.sha256 if is_verified(layout, source) else None
        hashes[f"{card_id}/{source.filename}"] = "sha256:" + (digest or file_digests(path)["sha256"])
    return hashes


def _dvc_md5s(root: Path) -> dict[str, str]:
    """path -> md5 of every output dvc.lock records, and of every `<path>.dvc` file's outputs."""
    found: dict[str, str] = {}
    lock = root / "dvc.lock"
    if lock.is_file():
        for stage in ((yaml.safe_load(lock.read_text()) or {}).get("stages") or {}).values():
            for out in stage.get("outs", []):
                if "md5" in out:
                    found[out["path"]] = f"md5:{out['md5']}"
    for dvc_file in sorted(root.glob("datasets/*/*/*.dvc")):
        for out in (yaml.safe_load(dvc_file.read_text()) or {}).get("outs", []):
            if "md5" in out:
                path = (dvc_file.parent / out["path"]).relative_to(root).as_posix()
                found[path] = f"md5:{out['md5']}"
    return found
