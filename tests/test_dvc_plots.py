"""`dvc plots show`: dvc.yaml names the fields worth plotting, and the page renders offline.

DVC's own page loads vega, vega-lite and vega-embed from a CDN; .dvc/config points it at
.dvc/plots/offline.html (built by .dvc/plots/build.py), which inlines them. The Chromium check
renders a real `dvc plots show` page with the network blocked and looks at the pixels.
"""

from __future__ import annotations

import configparser
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from reprolab.registry import load_registry
from tests.conftest import REPO

DVC = Path(sys.executable).parent / "dvc"
PLOTS_DIR = REPO / ".dvc" / "plots"
CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
needs_dvc = pytest.mark.skipif(not DVC.exists(), reason="dvc is not installed next to this Python")
ENV = {**os.environ, "DVC_NO_ANALYTICS": "1"}


def _history_file(recipe_id: str) -> str:
    return f"metrics/${{profile}}/{recipe_id}-history.json"


def _plots() -> dict[str, dict]:
    return {name: spec for entry in yaml.safe_load((REPO / "dvc.yaml").read_text())["plots"]
            for name, spec in entry.items()}


def test_dvc_plots_name_the_loss_and_the_primary_metric_of_each_recipe():
    # Without y fields DVC plots the history's last column (eval_samples, a constant).
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    reg = load_registry(REPO)
    assert _history_file("${key}") in dvc["stages"]["evaluate"]["do"]["cmd"]
    plots = _plots()
    for recipe_id in params["recipes"]:
        primary = f"eval_{reg.benchmarks[reg.recipe(recipe_id).benchmark].metrics[0]}"
        for field in ("loss", primary):  # one plot each: a loss near 1 and a top-1 near 50 need own axes
            assert plots.pop(f"{recipe_id}/{field}") == {"x": "epoch", "y": {_history_file(recipe_id): field}}
    assert not plots, f"dvc.yaml plots of no params.yaml recipe: {sorted(plots)}"


@pytest.mark.skipif(not DVC.exists(), reason="dvc is not installed next to this Python")
def test_dvc_plots_show_plots_those_fields_from_an_evaluate_history(tmp_path):
    from reprolab.engine.logs import plot_records

    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    subprocess.run([str(DVC), "init", "--no-scm", "-q"], cwd=tmp_path, check=True, env=env)
    for name in ("dvc.yaml", "params.yaml"):
        (tmp_path / name).write_text((REPO / name).read_text())
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    records = [{"epoch": 0, "split": "train", "loss": 1.4, "lr": 0.01, "epoch_time_s": 3.0},
               {"epoch": 1, "split": "train", "loss": 1.1, "lr": 0.01, "epoch_time_s": 3.1,
                "eval_top1": 45.0, "eval_top5": 100.0, "eval_samples": 48.0}]
    for recipe_id in params["recipes"]:
        history = tmp_path / _history_file(recipe_id).replace("${profile}", params["profile"])
        history.parent.mkdir(parents=True, exist_ok=True)
        history.write_text(json.dumps(plot_records(records)))  # what `evaluate --history-out` writes
    done = subprocess.run([str(DVC), "plots", "show", "--json"], cwd=tmp_path, capture_output=True,
                          text=True, env=env)
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert not shown.get("errors"), shown["errors"]
    for name, spec in _plots().items():
        (plot,) = shown["data"][name]
        (field,) = spec["y"].values()
        assert _y_fields(plot["content"]) == {field}, f"{name}: DVC plots other fields than dvc.yaml names"
        assert [v[field] for v in plot["content"]["data"]["values"]] == [r.get(field) for r in records]


def _y_fields(spec) -> set[str]:
    """The fields of every y encoding in a Vega-Lite spec (DVC's templates nest layers)."""
    if isinstance(spec, list):
        return set().union(*map(_y_fields, spec))
    if not isinstance(spec, dict):
        return set()
    found = {spec["y"]["field"]} if isinstance(spec.get("y"), dict) and "field" in spec["y"] else set()
    return found.union(*(_y_fields(v) for k, v in spec.items() if k != "data"))


def _inlined_scripts(html: str) -> dict[str, str]:
    """package@version -> the code build.py inlined (its own lines between the tags)."""
    found = re.findall(r'<script type="text/javascript" data-package="([^"]+)">\n(.*?)\n    </script>',
                       html, flags=re.S)
    return dict(found)


def test_offline_template_inlines_the_pinned_libraries_and_no_cdn():
    html = (PLOTS_DIR / "offline.html").read_text()
    manifest = json.loads((PLOTS_DIR / "vendor.json").read_text())
    scripts = _inlined_scripts(html)
    assert list(scripts) == [f"{p['name']}@{p['version']}" for p in manifest["packages"]]
    for package in manifest["packages"]:
        code = scripts[f"{package['name']}@{package['version']}"]
        assert hashlib.sha256(code.encode()).hexdigest() == package["sha256"], \
            f"offline.html's {package['name']} is not the pinned file: run .dvc/plots/build.py"
        assert (PLOTS_DIR / f"LICENSE-{package['name']}.txt").read_text().startswith("Copyright")
    assert "{plot_divs}" in html          # where DVC puts the plots
    assert "{scripts}" not in html        # where DVC would put its CDN script tags
    assert "<script src" not in html


@pytest.mark.skipif(shutil.which("git") is None or not (REPO / ".git").exists(), reason="not a git checkout")
def test_dvc_plots_output_is_git_ignored_and_the_lock_is_not():
    # DVC refuses to run at all with a git-ignored dvc.lock ("'dvc.lock' is git-ignored").
    paths = ["dvc_plots/index.html", "dvc.lock", "pipelines/some-recipe/tiny/dvc.lock"]
    done = subprocess.run(["git", "check-ignore", *paths], cwd=REPO, capture_output=True, text=True)
    assert done.stdout.split() == paths[:1]


def test_dvc_config_points_plots_at_the_offline_template():
    config = configparser.ConfigParser()
    config.read(REPO / ".dvc" / "config")
    # A relative plots.html_template is relative to the .dvc folder.
    assert config["plots"]["html_template"] == "plots/offline.html"


def _history(epochs: int = 8) -> list[dict]:
    """A training history whose metric rises and whose loss falls; eval_samples stays constant."""
    return [{"epoch": e, "split": "train", "loss": 1.4 - 0.1 * e, "lr": 0.01, "epoch_time_s": 3.0,
             "eval_top1": 30.0 + 5.0 * e, "eval_top5": 100.0, "eval_samples": 48.0} for e in range(epochs)]


def _plots_project(root: Path) -> None:
    """A scratch DVC project with this checkout's dvc.yaml, params, plots config and a history."""
    subprocess.run([str(DVC), "init", "--no-scm", "-q"], cwd=root, check=True, env=ENV)
    shutil.copy(REPO / ".dvc" / "config", root / ".dvc" / "config")
    shutil.copytree(PLOTS_DIR, root / ".dvc" / "plots", dirs_exist_ok=True)
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(REPO / name, root / name)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for recipe_id in params["recipes"]:
        history = root / _history_file(recipe_id).replace("${profile}", params["profile"])
        history.parent.mkdir(parents=True, exist_ok=True)
        history.write_text(json.dumps(_history()))


def _screenshot(page: Path, png: Path, profile: Path) -> np.ndarray:
    # No network: every host resolves to nothing and every http(s) request goes to a dead proxy.
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", "--hide-scrollbars", f"--user-data-dir={profile}",
                    "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND",
                    "--window-size=800,900", "--virtual-time-budget=10000", f"--screenshot={png}",
                    page.as_uri()], check=True, capture_output=True, timeout=120)
    return np.asarray(Image.open(png).convert("RGB")).astype(int)


def _measure(pixels: np.ndarray) -> tuple[float, int]:
    """(fraction of pixels that are not white, rows holding DVC's first line colour #945dd6)."""
    non_blank = float((pixels < 245).any(axis=2).mean())
    line = (np.abs(pixels - np.array([0x94, 0x5D, 0xD6])).max(axis=2) < 40).any(axis=1)
    return non_blank, int(line.sum())


@needs_dvc
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (Debian: apt-get install chromium)")
def test_dvc_plots_show_renders_the_metric_offline_in_chromium(tmp_path):
    from dvc_render.html import PAGE_HTML  # DVC's own page: its scripts come from a CDN

    project = tmp_path / "project"
    project.mkdir()
    _plots_project(project)
    (tmp_path / "cdn.html").write_text(PAGE_HTML)
    for out, extra in (("offline", []), ("cdn", ["--html-template", str(tmp_path / "cdn.html")])):
        done = subprocess.run([str(DVC), "plots", "show", "-o", str(tmp_path / out), *extra], cwd=project,
                              capture_output=True, text=True, env=ENV)
        assert done.returncode == 0, done.stderr
    page = (tmp_path / "offline" / "index.html").read_text()
    assert "<script src" not in page and "cdn" not in page
    specs = [json.loads(s) for s in re.findall(r"var spec = (\{.*?\});\n", page)]
    fields = {field for spec in _plots().values() for field in spec["y"].values()}
    assert specs and set().union(*map(_y_fields, specs)) == fields, "the page plots other fields"
    assert "eval_samples" not in fields

    shot = tmp_path / "offline.png"
    non_blank, line_rows = _measure(_screenshot(tmp_path / "offline" / "index.html", shot, tmp_path / "p1"))
    cdn_non_blank, cdn_line_rows = _measure(_screenshot(tmp_path / "cdn" / "index.html", tmp_path / "cdn.png",
                                                        tmp_path / "p2"))
    print(f"offline page {Image.open(shot).size}: non-blank {non_blank:.2%}, rows with the line colour "
          f"{line_rows}; DVC's CDN page offline: non-blank {cdn_non_blank:.2%}, line rows {cdn_line_rows}")
    assert cdn_non_blank < 0.001, "DVC's CDN page rendered: the network was not blocked, the check proves nothing"
    assert non_blank > 0.01, "the offline page is blank"
    # A rising metric and a falling loss, each over its own axes, cross many rows; a constant
    # series (eval_samples) is a flat line: 24 rows with this page, against 564 for loss and top-1.
    assert line_rows > 150, f"only {line_rows} rows of plotted line"
