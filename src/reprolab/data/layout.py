"""Where a dataset's files live, per profile: the one place that knows the folder layout.

```
datasets/<id>/card.yaml                    the card (committed)
datasets/<id>/<profile>/                   profile = full (the real data) or tiny (fixtures)
    raw/                                   downloads and hand-placed files (DVC output of fetch)
    extracted/<archive stem>/              unpacked archives, one folder each
    prepared/                              manifests and shards (DVC output of prepare)
        <split>.parquet                    manifest: one row per sample
        <split>.json                       counts, classes, content fingerprint
        shards/<split>/<nnnnn>.arrow       encoded frames/images, random access by row
    .state/                                partial downloads, quarantine, verification stamps,
                                           locks (bookkeeping, never read by training)
    .browse/                               media files written for the FiftyOne viewer
    mirror/                                tiny only: fixture archives + SHA256SUMS, the local
                                           "download site" that tiny fetch reads through file://
```
Tiny and full never overwrite each other; both trees are git-ignored (only card.yaml is committed).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from reprolab import paths

Profile = Literal["full", "tiny"]
PROFILES: tuple[Profile, ...] = ("full", "tiny")
CHECKSUMS_FILE = "SHA256SUMS"


@dataclass(frozen=True)
class DatasetLayout:
    """The folders of one dataset in one profile."""

    dataset_id: str
    profile: Profile = "full"
    root: Path | None = None  # the checkout; None: paths.project_root()

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"unknown profile {self.profile!r}; expected one of {PROFILES}")
        if self.root is not None and not isinstance(self.root, Path):
            object.__setattr__(self, "root", Path(self.root))

    @property
    def dataset_dir(self) -> Path:
        """datasets/<id>: holds card.yaml; manual `place_in` folders are relative to it."""
        return paths.datasets_dir(self.root) / self.dataset_id

    @property
    def card_path(self) -> Path:
        return self.dataset_dir / "card.yaml"

    @property
    def base(self) -> Path:
        """The profile's own tree: datasets/<id>/full or datasets/<id>/tiny."""
        return self.dataset_dir / self.profile

    @property
    def raw(self) -> Path:
        return self.base / "raw"

    @property
    def extracted(self) -> Path:
        return self.base / "extracted"

    @property
    def prepared(self) -> Path:
        return self.base / "prepared"

    @property
    def mirror(self) -> Path:
        """Tiny profile only: where the fixture generator writes the raw archives."""
        if self.profile != "tiny":
            raise ValueError("only the tiny profile has a fixture mirror")
        return self.base / "mirror"

    @property
    def state(self) -> Path:
        """Bookkeeping: partial downloads, quarantine, verification stamps, locks."""
        return self.base / ".state"

    @property
    def partial(self) -> Path:
        return self.state / "partial"

    @property
    def quarantine(self) -> Path:
        return self.state / "quarantine"

    @property
    def stamps(self) -> Path:
        return self.state / "verified"

    def raw_file(self, filename: str) -> Path:
        return self.raw / filename

    def extracted_dir(self, archive_filename: str) -> Path:
        return self.extracted / archive_stem(archive_filename)

    def manifest(self, split: str) -> Path:
        return self.prepared / f"{split}.parquet"

    def split_info(self, split: str) -> Path:
        return self.prepared / f"{split}.json"

    def shards_dir(self, split: str) -> Path:
        return self.prepared / "shards" / split

    def prepared_splits(self) -> list[str]:
        """Splits whose manifest and info file are both written (the info file is written last)."""
        if not self.prepared.is_dir():
            return []
        return sorted(p.stem for p in self.prepared.glob("*.json") if self.manifest(p.stem).is_file())


_ARCHIVE_SUFFIXES = (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".tar", ".zip", ".rar", ".7z")


def archive_stem(filename: str) -> str:
    """`20bn-something-something-v1.tar` -> `20bn-something-something-v1`; unknown suffixes stay."""
    for suffix in _ARCHIVE_SUFFIXES:
        if filename.lower().endswith(suffix) and len(filename) > len(suffix):
            return filename[: -len(suffix)]
    return filename


def folder_size(path: Path) -> int:
    """Bytes under `path` (0 if absent); symlinks are not followed."""
    if not path.exists():
        return 0
    if path.is_file():
        return path.stat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
