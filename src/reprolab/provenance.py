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


def dvc_data_hashes(root: Path, datasets: list[str]) -> dict[str, str]:
    """The hashes `dvc.lock` recorded for the prepared outputs of these datasets, where present."""
    lock = root / "dvc.lock"
    if not lock.is_file():
        return {}
    stages = (yaml.safe_load(lock.read_text()) or {}).get("stages", {})
    hashes = {}
    for dataset in datasets:
        for out in stages.get(f"prepare@{dataset}", {}).get("outs", []):
            if "md5" in out:
                hashes[f"{dataset}:{out['path']}"] = out["md5"]
    return hashes
