"""Typed schemas of the registry files: dataset cards, benchmarks, papers, published rows, recipes.

Every model forbids unknown keys, so a typo in a YAML file fails validation with its key named
instead of being silently ignored.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from reprolab.registry.stages import Stages

ID_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"
_HEX = re.compile(r"^[0-9a-f]+$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- datasets


class Source(Strict):
    """One file of a dataset. Its identity is its checksum: any URL or a hand-placed copy will do."""

    filename: str
    size: int | None = Field(default=None, ge=0, description="bytes")
    sha256: str | None = None
    md5: str | None = None
    urls: list[str] = Field(default_factory=list)
    manual: bool = Field(default=False, description="behind a login: the user places it by hand")
    unpinned: str | None = Field(
        default=None, description="why no checksum is recorded (then only the size is checked)"
    )
    extract: bool = Field(default=True, description="unpack the archive after download")

    @field_validator("sha256", "md5")
    @classmethod
    def _hex_digest(cls, value: str | None, info) -> str | None:
        if value is None:
            return value
        value = value.lower()
        expected = {"sha256": 64, "md5": 32}[info.field_name]
        if len(value) != expected or not _HEX.match(value):
            raise ValueError(f"expected {expected} hex digits, got {value!r}")
        return value

    @field_validator("filename")
    @classmethod
    def _plain_filename(cls, value: str) -> str:
        if "/" in value or "\\" in value or value in {"", ".", ".."}:
            raise ValueError(f"expected a bare file name, got {value!r}")
        return value

    @model_validator(mode="after")
    def _identity(self) -> Source:
        if not (self.sha256 or self.md5 or self.unpinned):
            raise ValueError(
                f"source {self.filename!r} needs sha256 or md5, or `unpinned: <why>` "
                "when no checksum is published"
            )
        if not self.urls and not self.manual:
            raise ValueError(f"source {self.filename!r} needs urls, or `manual: true`")
        return self


class ManualDownload(Strict):
    """How to obtain files that sit behind a registration or licence page."""

    page: str
    steps: str
    place_in: str = Field(description="folder, relative to the dataset folder, for the files")


class Counts(Strict):
    classes: int | None = Field(default=None, ge=1)
    samples: int | None = Field(default=None, ge=0)


class SplitSpec(Strict):
    classes: int | str | None = None
    samples: int | None = Field(default=None, ge=0)
    note: str = ""


class DatasetCard(Strict):
    id: str = Field(pattern=ID_PATTERN)
    name: str
    kind: Literal["dataset", "weights"] = "dataset"
    modality: Literal["video", "image", "text", "weights", "mixed"] = "image"
    citation: str
    license: str
    homepage: str
    sources: list[Source] = Field(min_length=1)
    manual: ManualDownload | None = None
    expect: Counts = Field(default_factory=Counts)
    splits: dict[str, SplitSpec] = Field(default_factory=dict)
    tiny: dict[str, Any] = Field(default_factory=dict, description="fixture generator settings")
    unverified: list[str] = Field(
        default_factory=list, description="facts on this card not checked against a primary source"
    )
    notes: str = ""

    @model_validator(mode="after")
    def _manual_needs_steps(self) -> DatasetCard:
        if any(s.manual for s in self.sources) and self.manual is None:
            raise ValueError("a source has `manual: true`, so the card needs a `manual:` block")
        return self


# --------------------------------------------------------------------------- benchmarks


class Benchmark(Strict):
    id: str = Field(pattern=ID_PATTERN)
    dataset: str
    task: Literal[
        "video-classification",
        "image-classification",
        "retrieval",
        "semantic-segmentation",
        "instance-segmentation",
        "detection",
        "localization",
        "domain-adaptation",
    ]
    train_split: str | None = None
    eval_split: str | list[str] = Field(
        description="the split evaluated; a list when each task of the protocol evaluates one of them "
                    "(e.g. each Office-31 transfer evaluates its target domain)")
    protocol: dict[str, Any] = Field(default_factory=dict)
    metrics: list[str] = Field(min_length=1)
    lower_is_better: list[str] = Field(default_factory=list)
    description: str = ""

    @property
    def eval_splits(self) -> list[str]:
        return [self.eval_split] if isinstance(self.eval_split, str) else list(self.eval_split)

    @model_validator(mode="after")
    def _lower_is_metric(self) -> Benchmark:
        unknown = set(self.lower_is_better) - set(self.metrics)
        if unknown:
            raise ValueError(f"lower_is_better names metrics not in `metrics`: {sorted(unknown)}")
        return self


# --------------------------------------------------------------------------- papers


class OfficialCode(Strict):
    repo: str = Field(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
    commit: str | None = None
    license: str | None = None


class Paper(Strict):
    id: str = Field(pattern=ID_PATTERN)
    title: str
    short: str = Field(description="short name used in tables, e.g. SELFY")
    arxiv: str = Field(pattern=r"^\d{4}\.\d{4,5}$")
    venue: str
    authors: list[str] = Field(min_length=1)
    official_code: OfficialCode | None = None
    claim: str = Field(description="the claim the paper makes, in one or two sentences")


class Tolerance(Strict):
    abs: float = Field(default=1.0, gt=0, description="points on the metric's own scale")


class PublishedRow(Strict):
    recipe: str | None = Field(default=None, description="null: no recipe yet")
    benchmark: str
    setting: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, float | None] = Field(
        default_factory=dict,
        description="metric -> published value; null: the paper has a number we have not transcribed "
                    "(then `unavailable` says why), so a reader with the paper fills in one value",
    )
    unavailable: str | None = Field(
        default=None,
        description="why the paper's number is not recorded (e.g. only plotted, or not transcribed); "
                    "then metrics is empty or all null",
    )
    source: str = Field(min_length=3)
    verified: bool
    tolerance: Tolerance = Field(default_factory=Tolerance)
    note: str = ""

    @model_validator(mode="after")
    def _numbers_or_reason(self) -> PublishedRow:
        if self.unavailable is None and not self.metrics:
            raise ValueError("a row needs `metrics`, or `unavailable: <why no number is recorded>`")
        if self.unavailable is not None and any(v is not None for v in self.metrics.values()):
            raise ValueError("a row with `unavailable` must not also give `metrics` values "
                             "(null values name the metrics not transcribed)")
        if self.unavailable is None and any(v is None for v in self.metrics.values()):
            raise ValueError("a metric with a null value needs `unavailable: <why it is not transcribed>`")
        return self

    @property
    def not_transcribed(self) -> bool:
        """The paper has numbers for this row, not copied here yet (metrics given with null values)."""
        return bool(self.metrics) and all(v is None for v in self.metrics.values())


# --------------------------------------------------------------------------- recipes


class TinyCheck(Strict):
    """What a recipe's tiny profile must reach on its fixture (asserted by the CI smoke test).

    `at_least` for a metric where higher is better, `at_most` where lower is; for a model that
    learns, the threshold must be on the far side of the chance level that evaluation records
    (`RunResult.chance`). A baseline the paper says cannot solve the task has `learns: false` and
    says `why`. The smoke test prints value, chance, threshold and margin."""

    metric: str = Field(description="a metric the evaluation reports, e.g. top1 or recall@1")
    at_least: float | None = None
    at_most: float | None = None
    learns: bool = True
    why: str | None = Field(default=None, description="required with learns: false")

    @model_validator(mode="after")
    def _one_bound(self) -> TinyCheck:
        if (self.at_least is None) == (self.at_most is None):
            raise ValueError("give exactly one of at_least and at_most")
        if not self.learns and not self.why:
            raise ValueError("learns: false needs `why`: the reason this row is expected not to learn")
        return self


class Recipe(Strict):
    """A runnable reproduction of one published row, after its base files are merged in."""

    id: str = Field(pattern=ID_PATTERN)
    paper: str
    title: str = Field(description="the table row this recipe reproduces")
    task: str = Field(description="the trainer that runs it, e.g. video-classification")
    benchmark: str
    model: dict[str, Any] = Field(default_factory=dict)
    data: dict[str, Any] = Field(default_factory=dict)
    optim: dict[str, Any] = Field(default_factory=dict)
    eval: dict[str, Any] = Field(default_factory=dict)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    tiny: dict[str, Any] = Field(
        default_factory=dict, description="overrides the tiny profile merges over the full recipe"
    )
    stages: Stages = Field(
        default_factory=dict, description="a multi-stage pipeline (reprolab.registry.stages); "
                                          "empty: the recipe is one task run"
    )
    tiny_check: TinyCheck | None = Field(
        default=None, description="the level the tiny profile must reach (tests/test_smoke.py)"
    )
