"""What is fetched, verified and prepared, per dataset card and profile (`reprolab data status`).

Cheap by design: verification is read from the stamps fetch writes (no rehashing), sample counts
from the split info files, sizes from raw/ and prepared/ (extracted/ is a disposable cache).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from reprolab.data.fetch import is_verified, tiny_sources
from reprolab.data.layout import DatasetLayout, Profile, folder_size
from reprolab.data.manifest import read_split_info
from reprolab.registry import DatasetCard

HEADERS = ["dataset", "profile", "fetched", "verified", "prepared", "samples", "size", "license"]


@dataclass
class DatasetStatus:
    dataset: str
    profile: Profile
    sources: int
    fetched: int
    verified: int
    prepared_splits: list[str]
    samples: int
    size_bytes: int
    license: str

    def row(self) -> list[object]:
        return [self.dataset, self.profile, f"{self.fetched}/{self.sources}",
                f"{self.verified}/{self.sources}", ", ".join(self.prepared_splits) or "no",
                self.samples or "", human_size(self.size_bytes) if self.size_bytes else "",
                self.license]


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def dataset_status(card: DatasetCard, profile: Profile, root: Path | None = None) -> DatasetStatus:
    layout = DatasetLayout(card.id, profile, root)
    sources = list(card.sources)
    if profile == "tiny":
        try:
            sources = tiny_sources(card, layout)
        except (OSError, RuntimeError):
            pass  # no mirror yet: nothing fetched, count the card's files
    fetched = sum(layout.raw_file(s.filename).is_file() for s in sources)
    verified = sum(is_verified(layout, s) for s in sources)
    splits = layout.prepared_splits()
    samples = 0
    for split in splits:
        try:
            samples += int(read_split_info(layout.split_info(split)).get("samples") or 0)
        except (OSError, ValueError):
            pass
    size = folder_size(layout.raw) + folder_size(layout.prepared)
    return DatasetStatus(card.id, profile, len(sources), fetched, verified, splits, samples, size,
                         card.license)


def status_table(cards: list[DatasetCard], profiles: tuple[Profile, ...],
                 root: Path | None = None) -> list[DatasetStatus]:
    return [dataset_status(card, profile, root) for card in cards for profile in profiles]
