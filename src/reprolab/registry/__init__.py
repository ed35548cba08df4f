"""The registries: dataset cards, benchmarks, papers, published numbers and recipes, as typed data."""

from reprolab.registry.loader import (
    Registry,
    RegistryError,
    RegistryErrors,
    deep_merge,
    load_benchmark,
    load_card,
    load_paper,
    load_published,
    load_recipe,
    load_registry,
)
from reprolab.registry.models import (
    Benchmark,
    DatasetCard,
    Paper,
    PublishedRow,
    Recipe,
    Source,
)

__all__ = [
    "Benchmark",
    "DatasetCard",
    "Paper",
    "PublishedRow",
    "Recipe",
    "Registry",
    "RegistryError",
    "RegistryErrors",
    "Source",
    "deep_merge",
    "load_benchmark",
    "load_card",
    "load_paper",
    "load_published",
    "load_recipe",
    "load_registry",
]
