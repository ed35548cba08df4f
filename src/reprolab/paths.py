"""Where the project's registries and generated files live.

The root is the checkout that holds `reproductions/` and `datasets/`. It is found from
`REPROLAB_ROOT`, else by walking up from the working directory, else next to the installed
package (an editable install in `src/`).
"""

from __future__ import annotations

import os
from pathlib import Path

_MARKERS = ("reproductions", "datasets", "pyproject.toml")


def _is_root(path: Path) -> bool:
    return all((path / marker).exists() for marker in _MARKERS)


def project_root() -> Path:
    env = os.environ.get("REPROLAB_ROOT")
    if env:
        root = Path(env).resolve()
        if not _is_root(root):
            raise FileNotFoundError(
                f"REPROLAB_ROOT={env} is not a reprolab checkout "
                f"(expected {', '.join(_MARKERS)} inside it)"
            )
        return root
    cwd = Path.cwd().resolve()
    for candidate in (cwd, *cwd.parents):
        if _is_root(candidate):
            return candidate
    package_checkout = Path(__file__).resolve().parents[2]
    if _is_root(package_checkout):
        return package_checkout
    raise FileNotFoundError(
        "cannot find the reprolab checkout: run from inside it or set REPROLAB_ROOT"
    )


def datasets_dir(root: Path | None = None) -> Path:
    return (root or project_root()) / "datasets"


def benchmarks_dir(root: Path | None = None) -> Path:
    return (root or project_root()) / "benchmarks"


def reproductions_dir(root: Path | None = None) -> Path:
    return (root or project_root()) / "reproductions"


def results_dir(root: Path | None = None) -> Path:
    return (root or project_root()) / "results"


def runs_dir(root: Path | None = None) -> Path:
    return (root or project_root()) / "runs"


def reports_dir(root: Path | None = None, profile: str = "full") -> Path:
    """reports/ for the full profile; tiny-profile reports live apart, in reports/tiny/."""
    reports = (root or project_root()) / "reports"
    return reports if profile == "full" else reports / profile


def checkout_relative(path: Path | str, root: Path | None = None) -> str:
    """`path` relative to the checkout, as results record paths (no machine path in a report);
    a path outside the checkout stays as it is."""
    base = (root or project_root()).resolve()
    absolute = Path(path).resolve()
    return absolute.relative_to(base).as_posix() if absolute.is_relative_to(base) else str(path)


def in_checkout(path: Path | str, root: Path | None = None) -> Path:
    """A path recorded relative to the checkout (see checkout_relative), as a usable path."""
    path = Path(path)
    return path if path.is_absolute() else (root or project_root()) / path
