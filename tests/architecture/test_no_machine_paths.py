"""No path of a development machine in the repository: sources are cited by their public name."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Absolute home, scratch and workspace folders of the machines this project is developed on.
MACHINE_PATH = re.compile(r"(?<![\w.])/(?:work|root|home|tmp)/[\w.-]")


def _tracked_text_files() -> list[Path]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: the tracked files are unknown")
    names = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True,
                           capture_output=True).stdout.decode().split("\0")
    return [ROOT / n for n in names if n and (ROOT / n).is_file()]


def test_no_tracked_file_names_a_machine_path():
    found = []
    for path in _tracked_text_files():
        data = path.read_bytes()
        if b"\0" in data[:8192]:  # binary (reference tensors, images)
            continue
        for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
            if MACHINE_PATH.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:120]}")
    assert not found, "machine paths in tracked files (cite public names instead):\n" + "\n".join(found)
