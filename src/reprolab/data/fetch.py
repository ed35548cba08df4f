"""Download and verify a dataset's sources: resume, retry, checksum, move into place atomically.

A file's identity is its checksum (sha256 and/or md5 on the card's `Source`): any URL, any
mirror, or a copy the user placed by hand in the raw folder is accepted when its hash matches.
`unpinned` sources (no published checksum) are checked by size only, with a warning.

Per source, `fetch_source`:
1. accepts a file already in `raw/` (or the card's manual `place_in` folder) if it verifies; a
   file that does not verify is moved to the quarantine folder;
2. otherwise tries each URL in turn (HTTP(S) with `Range` resume and retries with backoff,
   `file://` URLs and plain paths by copy) into `.state/partial/`;
3. verifies the finished download, then renames it into `raw/` (atomic); a mismatch is moved to
   `.state/quarantine/` so that nothing wrong is ever in place.

Manual sources (behind a registration) that are missing raise `MissingDataError` naming the
page, the files and the folder to put them in. Verification is remembered in a small stamp
(`.state/verified/<file>.json`, keyed on size and mtime) so status and re-fetch need not rehash.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.client import HTTPException
from pathlib import Path

from reprolab import atomic
from reprolab.data.layout import CHECKSUMS_FILE, DatasetLayout, Profile
from reprolab.data.locks import exclusive
from reprolab.errors import StepFailedError
from reprolab.registry import DatasetCard, Source

CHUNK = 1 << 20
RETRIES = 5
BACKOFF_S = 1.0
TIMEOUT_S = 60.0
USER_AGENT = "reprolab-fetch/0.1"
_HTML_PREFIXES = (b"<!doctype html", b"<html", b"<head", b"<?xml version")


class FetchError(StepFailedError):
    """A source could not be obtained; the message says which file, from where, and why."""


class ChecksumError(FetchError):
    """The bytes do not match the card's checksum or size (the file was quarantined)."""


class HtmlPageError(FetchError):
    """An HTML page arrived where a data file was expected (a login wall or a quota page)."""


class SourceUnavailableError(FetchError):
    """The URL answered 404/403/... or could not be reached after every retry."""


class UnpinnedSourceWarning(UserWarning):
    """A source has no published checksum, so only its size was checked."""


# ----------------------------------------------------------------------------- verification


@dataclass(frozen=True)
class Verification:
    ok: bool
    method: str  # "sha256", "md5", "sha256+md5", "size", "none"
    problem: str = ""
    digests: dict[str, str] = field(default_factory=dict)


def file_digests(path: Path, names: Iterable[str] = ("sha256",)) -> dict[str, str]:
    """Hex digests of a file, computed in one pass."""
    hashers = {name: hashlib.new(name) for name in names}
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            for hasher in hashers.values():
                hasher.update(chunk)
    return {name: hasher.hexdigest() for name, hasher in hashers.items()}


def verify_file(path: Path, source: Source) -> Verification:
    """Check size, then sha256/md5 as the card pins them. Unpinned: size only, with a warning."""
    size = path.stat().st_size
    if source.size is not None and size != source.size:
        return Verification(False, "size", f"size {size:,} bytes, expected {source.size:,}")
    pinned = [name for name in ("sha256", "md5") if getattr(source, name)]
    if not pinned:
        warnings.warn(
            f"{source.filename}: no checksum is published ({source.unpinned}); "
            + ("checked its size only" if source.size is not None else "nothing could be checked"),
            UnpinnedSourceWarning, stacklevel=2,
        )
        return Verification(True, "size" if source.size is not None else "none")
    digests = file_digests(path, pinned)
    for name in pinned:
        if digests[name] != getattr(source, name):
            return Verification(False, name, f"{name} {digests[name]}, expected {getattr(source, name)}",
                                digests)
    return Verification(True, "+".join(pinned), digests=digests)


def _stamp_path(layout: DatasetLayout, source: Source) -> Path:
    return layout.stamps / f"{source.filename}.json"


def _pins(source: Source) -> dict[str, object]:
    return {"size": source.size, "sha256": source.sha256, "md5": source.md5}


def write_stamp(layout: DatasetLayout, source: Source, result: Verification) -> None:
    stat = layout.raw_file(source.filename).stat()
    atomic.write_json(_stamp_path(layout, source), {
        "filename": source.filename, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
        "pins": _pins(source), "method": result.method, "digests": result.digests,
        "verified_at": datetime.now(UTC).isoformat(timespec="seconds"),
    })


def is_verified(layout: DatasetLayout, source: Source) -> bool:
    """True if `raw/<file>` was verified against the card's current pins and is unchanged since."""
    path, stamp_path = layout.raw_file(source.filename), _stamp_path(layout, source)
    if not path.is_file() or not stamp_path.is_file():
        return False
    try:
        stamp = json.loads(stamp_path.read_text())
    except (OSError, ValueError):
        return False
    stat = path.stat()
    return (stamp.get("size") == stat.st_size and stamp.get("mtime_ns") == stat.st_mtime_ns
            and stamp.get("pins") == _pins(source))


def quarantine(layout: DatasetLayout, path: Path, reason: str) -> Path:
    """Move a bad file out of the way (kept for inspection, never read by a later stage)."""
    layout.quarantine.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    name = path.name.removesuffix(".part")
    target = layout.quarantine / f"{name}.{stamp}"
    os.replace(path, target)
    (layout.quarantine / f"{target.name}.why.txt").write_text(reason + "\n")
    return target


# ----------------------------------------------------------------------------- transfers


def _local_path(url: str) -> Path | None:
    """The path of a `file://` URL or a plain path; None for network URLs."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "file":
        return Path(urllib.request.url2pathname(parsed.path))
    return Path(url) if not parsed.scheme else None


def _progress(total: int | None, initial: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="B", unit_scale=True,
                unit_divisor=1024, disable=not enabled, leave=False)


def _looks_like_html(head: bytes) -> bool:
    return head.lstrip()[:20].lower().startswith(_HTML_PREFIXES)


def _html_error(url: str, filename: str, head: bytes) -> HtmlPageError:
    text = head.decode("utf-8", "replace")
    title = ""
    lower = text.lower()
    if "<title>" in lower:
        start = lower.index("<title>") + 7
        title = text[start: lower.find("</title>", start)].strip()[:120]
    hint = f" (page title: {title!r})" if title else ""
    return HtmlPageError(
        f"{url} returned an HTML page instead of {filename}{hint}: most likely a login wall, a "
        "licence page or a download-quota page. Open the URL in a browser, accept or sign in, "
        "then download the file by hand into the raw folder (its checksum is what counts)."
    )


def _copy_local(src: Path, part: Path, filename: str, progress: bool) -> None:
    if not src.is_file():
        raise SourceUnavailableError(f"{src}: no such file")
    with open(src, "rb") as head_handle:
        head = head_handle.read(512)
    if _looks_like_html(head) and not filename.lower().endswith((".html", ".htm", ".xml")):
        raise _html_error(str(src), filename, head)
    total = src.stat().st_size
    with open(src, "rb") as inp, open(part, "wb") as out, \
            _progress(total, 0, filename, progress) as bar:
        while chunk := inp.read(CHUNK):
            out.write(chunk)
            bar.update(len(chunk))


def _download_http(url: str, part: Path, source: Source, *, retries: int, backoff: float,
                   timeout: float, progress: bool) -> None:
    """Download into `part`, resuming what is there with a Range request after each failure."""
    failures: list[str] = []
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        offset = part.stat().st_size if part.exists() else 0
        if source.size is not None and offset > source.size:
            part.unlink()
            offset = 0
        headers = {"User-Agent": USER_AGENT}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        request = urllib.request.Request(url, headers=headers)
        try:
            response = urllib.request.urlopen(request, timeout=timeout)
        except urllib.error.HTTPError as error:
            if error.code == 416 and offset:  # nothing left to send: the part file is complete
                return
            if error.code in (400, 401, 403, 404, 410):
                raise SourceUnavailableError(f"{url}: HTTP {error.code} {error.reason}") from None
            failures.append(f"HTTP {error.code} {error.reason}")
            continue
        except (urllib.error.URLError, OSError, HTTPException) as error:
            failures.append(f"{type(error).__name__}: {getattr(error, 'reason', error)}")
            continue
        with response:
            if offset and response.status != 206:  # the server ignored Range: start again
                offset = 0
            mode = "ab" if offset else "wb"
            length = response.headers.get("Content-Length")
            total = offset + int(length) if length is not None else source.size
            content_type = response.headers.get("Content-Type", "")
            try:
                head = response.read(512) if not offset else b""
                wants_html = source.filename.lower().endswith((".html", ".htm"))
                if not offset and not wants_html and ("text/html" in content_type or _looks_like_html(head)):
                    raise _html_error(url, source.filename, head + response.read(4096))
                with open(part, mode) as out, _progress(total, offset, source.filename, progress) as bar:
                    out.write(head)
                    bar.update(len(head))
                    while chunk := response.read(CHUNK):
                        out.write(chunk)
                        bar.update(len(chunk))
            except HtmlPageError:
                raise
            except (OSError, HTTPException) as error:  # dropped mid-file: keep the part, resume
                failures.append(f"{type(error).__name__} after {part.stat().st_size if part.exists() else 0:,} bytes")
                continue
        got = part.stat().st_size if part.exists() else 0
        if total is not None and got < total:
            failures.append(f"connection closed after {got:,} of {total:,} bytes")
            continue
        return
    raise SourceUnavailableError(
        f"{url}: gave up after {retries + 1} attempts ({'; '.join(failures[-3:])})"
    )


# ----------------------------------------------------------------------------- fetch


@dataclass
class FetchedSource:
    source: Source
    path: Path
    action: str  # "present" (already verified), "placed" (hand-placed, verified), "downloaded"
    origin: str = ""


def _missing_manual(card: DatasetCard, layout: DatasetLayout, missing: list[Source]) -> Exception:
    from reprolab.errors import MissingDataError

    manual = card.manual
    folder = (layout.dataset_dir / manual.place_in) if manual else layout.raw
    files = "\n".join(f"    {s.filename}" for s in missing)
    steps = f"\n  steps: {manual.steps}" if manual else ""
    page = manual.page if manual else card.homepage
    return MissingDataError(
        f"{card.id}: {len(missing)} file(s) must be downloaded by hand (registration required).\n"
        f"  page: {page}{steps}\n  files:\n{files}\n  put them in: {folder.resolve()}\n"
        f"  then run: reprolab data fetch {card.id}"
    )


def _candidates(card: DatasetCard, layout: DatasetLayout, source: Source) -> list[Path]:
    paths = [layout.raw_file(source.filename)]
    if card.manual is not None and layout.profile == "full":
        placed = layout.dataset_dir / card.manual.place_in / source.filename
        if placed != paths[0]:
            paths.append(placed)
    return paths


def fetch_source(card: DatasetCard, source: Source, layout: DatasetLayout, *,
                 mirrors: Iterable[str] = (), retries: int = RETRIES, backoff: float = BACKOFF_S,
                 timeout: float = TIMEOUT_S, progress: bool = True) -> FetchedSource:
    """Make `raw/<source.filename>` exist and verify; see the module docstring for the steps.

    `mirrors` are extra base URLs or folders tried after the card's URLs (the file name is
    appended). Raises MissingDataError for a missing manual file, ChecksumError, HtmlPageError or
    SourceUnavailableError otherwise; whatever it raises, nothing unverified is left in `raw/`.
    """
    target = layout.raw_file(source.filename)
    if is_verified(layout, source):
        return FetchedSource(source, target, "present")
    for candidate in _candidates(card, layout, source):
        if not candidate.is_file():
            continue
        result = verify_file(candidate, source)
        if result.ok:
            if candidate != target:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(candidate, target)
            write_stamp(layout, source, result)
            return FetchedSource(source, target, "placed", str(candidate))
        moved = quarantine(layout, candidate, f"{candidate}: {result.problem}")
        warnings.warn(f"{candidate} does not match the card ({result.problem}); moved to {moved}",
                      stacklevel=2)
        if source.manual:
            raise ChecksumError(
                f"{card.id}: {candidate} does not match the card ({result.problem}). It was moved to "
                f"{moved}. Download {source.filename} again from {card.manual.page if card.manual else card.homepage}."
            )
    if source.manual and not source.urls:
        raise _missing_manual(card, layout, [source])

    urls = [*source.urls, *(m.rstrip("/") + "/" + source.filename for m in mirrors)]
    if not urls:
        raise SourceUnavailableError(f"{card.id}: {source.filename} has no URL to fetch from")
    layout.partial.mkdir(parents=True, exist_ok=True)
    part = layout.partial / f"{source.filename}.part"
    errors: list[FetchError] = []
    for url in urls:
        local = _local_path(url)
        try:
            if local is not None:
                _copy_local(local, part, source.filename, progress)
            else:
                _download_http(url, part, source, retries=retries, backoff=backoff,
                               timeout=timeout, progress=progress)
        except FetchError as error:
            errors.append(error)
            if isinstance(error, HtmlPageError):
                part.unlink(missing_ok=True)
            continue
        result = verify_file(part, source)
        if not result.ok:
            moved = quarantine(layout, part, f"from {url}: {result.problem}")
            errors.append(ChecksumError(
                f"{url}: checksum mismatch for {source.filename} ({result.problem}); the download "
                f"was moved to {moved} and nothing was put in place"
            ))
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(part, target)
        write_stamp(layout, source, result)
        return FetchedSource(source, target, "downloaded", url)
    # Prefer the most telling failure: wrong bytes or an HTML page over "not found".
    for kind in (ChecksumError, HtmlPageError, SourceUnavailableError, FetchError):
        chosen = [e for e in errors if isinstance(e, kind)]
        if chosen:
            detail = "\n  ".join(str(e) for e in errors)
            raise kind(f"{card.id}: could not fetch {source.filename}:\n  {detail}")
    raise FetchError(f"{card.id}: could not fetch {source.filename}")


def tiny_sources(card: DatasetCard, layout: DatasetLayout) -> list[Source]:
    """The card's sources as the tiny profile sees them: same names, served by the fixture mirror.

    The checksums come from the mirror's SHA256SUMS, written by the fixture generator.
    """
    sums_path = layout.mirror / CHECKSUMS_FILE
    sums = read_checksums(sums_path)
    sources = []
    for source in card.sources:
        if source.filename not in sums:
            raise FetchError(
                f"{sums_path}: the fixture generator of {card.id} wrote no {source.filename}; "
                "delete the mirror folder to regenerate it"
            )
        sources.append(Source(filename=source.filename, sha256=sums[source.filename],
                              urls=[(layout.mirror / source.filename).resolve().as_uri()],
                              extract=source.extract))
    return sources


def read_checksums(path: Path) -> dict[str, str]:
    """Parse a `sha256sum` file: `<hex>  <filename>` per line."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no checksum file")
    sums = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        digest, _, name = line.partition("  ")
        if len(digest) != 64 or not name:
            raise FetchError(f"{path}:{number}: expected `<sha256>  <filename>`, got {line!r}")
        sums[name.lstrip("*")] = digest.lower()
    return sums


def write_checksums(folder: Path, filenames: Iterable[str]) -> Path:
    lines = [f"{file_digests(folder / name)['sha256']}  {name}" for name in sorted(filenames)]
    return atomic.write_text(folder / CHECKSUMS_FILE, "\n".join(lines) + "\n")


def sources_for(card: DatasetCard, layout: DatasetLayout) -> list[Source]:
    """The sources fetch works on in this profile (the tiny profile reads the fixture mirror)."""
    if layout.profile == "tiny":
        return tiny_sources(card, layout)
    return list(card.sources)


@dataclass
class FetchReport:
    dataset: str
    profile: Profile
    fetched: list[FetchedSource]
    extracted: list[Path]


def fetch_dataset(card: DatasetCard, profile: Profile = "full", *, root: Path | None = None,
                  mirrors: Iterable[str] = (), extract: bool = True, progress: bool = True,
                  retries: int = RETRIES, backoff: float = BACKOFF_S) -> FetchReport:
    """Fetch (and unpack) every source of a card. Tiny: build the fixture mirror first if absent.

    Missing manual files are reported together in one MissingDataError, after every other
    source has been fetched. One fetch per dataset and profile at a time (BusyError otherwise).
    """
    layout = DatasetLayout(card.id, profile, root)
    with exclusive(layout.state / "fetch.lock", f"fetch of {card.id} ({profile})"):
        return _fetch_dataset(card, layout, mirrors=mirrors, extract=extract, progress=progress,
                              retries=retries, backoff=backoff)


def _fetch_dataset(card: DatasetCard, layout: DatasetLayout, *, mirrors: Iterable[str],
                   extract: bool, progress: bool, retries: int, backoff: float) -> FetchReport:
    from reprolab.data.extract import ensure_extracted

    if layout.profile == "tiny":
        from reprolab.data.fixtures import ensure_mirror

        ensure_mirror(card, layout)
    fetched, missing = [], []
    for source in sources_for(card, layout):
        try:
            fetched.append(fetch_source(card, source, layout, mirrors=mirrors, progress=progress,
                                        retries=retries, backoff=backoff))
        except Exception as error:
            from reprolab.errors import MissingDataError

            if isinstance(error, MissingDataError) and source.manual:
                missing.append(source)
                continue
            raise
    if missing:
        raise _missing_manual(card, layout, missing)
    extracted = []
    if extract:
        for item in fetched:
            if item.source.extract:
                extracted.append(ensure_extracted(layout, item.source, progress=progress))
    shutil.rmtree(layout.partial, ignore_errors=True)
    return FetchReport(card.id, layout.profile, fetched, extracted)
