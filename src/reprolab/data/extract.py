"""Safe, all-or-nothing archive extraction (tar in any compression, zip, rar).

Members that would land outside the target are refused: absolute paths, `..` components, and
symlinks or hard links pointing out. The archive is unpacked into a temporary folder beside the
target and renamed into place only when every member is out, so a failed or refused extraction
leaves nothing behind. The archive kind is read from its bytes, not its name (Something-Something
ships `.tar` files that are gzip-compressed and parts without any suffix).

RAR needs a system tool for compressed members: rarfile uses `unrar`, `unar` or `bsdtar`
(Debian: `apt-get install -y unar`).
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
import tarfile
import tempfile
import zipfile
from pathlib import Path

from reprolab import atomic
from reprolab.data.layout import DatasetLayout
from reprolab.errors import StepFailedError
from reprolab.registry import Source


class ExtractionError(StepFailedError):
    """An archive could not be unpacked; nothing was left in the target folder."""


class UnsafeArchiveError(ExtractionError):
    """A member would be written outside the target folder; the archive was refused."""


def archive_kind(path: Path) -> str | None:
    """'zip', 'rar', 'tar' or None, from the file's content."""
    if zipfile.is_zipfile(path):
        return "zip"
    try:
        import rarfile

        if rarfile.is_rarfile(path):
            return "rar"
    except ImportError:  # rarfile missing: only matters if the file really is a rar
        pass
    if tarfile.is_tarfile(path):
        return "tar"
    return None


def _check_name(archive: Path, name: str) -> str:
    """The member's normalized relative path, or UnsafeArchiveError if it escapes."""
    cleaned = name.replace("\\", "/")
    if cleaned.startswith("/") or (len(cleaned) > 1 and cleaned[1] == ":"):
        raise UnsafeArchiveError(f"{archive}: member {name!r} has an absolute path; archive refused")
    normalized = posixpath.normpath(cleaned)
    if normalized == ".." or normalized.startswith("../") or "/../" in f"/{cleaned}/":
        raise UnsafeArchiveError(f"{archive}: member {name!r} points outside the target (`..`); "
                                 "archive refused")
    return normalized


def _check_link(archive: Path, name: str, link_target: str) -> None:
    """A link inside the archive must resolve to a place inside the target."""
    base = posixpath.dirname(_check_name(archive, name))
    if link_target.startswith("/") or posixpath.normpath(
            posixpath.join(base, link_target)).split("/")[0] == "..":
        raise UnsafeArchiveError(f"{archive}: link {name!r} -> {link_target!r} points outside the "
                                 "target; archive refused")


def _extract_tar(archive: Path, into: Path, bar) -> None:
    with tarfile.open(archive, "r:*") as tar:
        def checked():
            for member in tar:
                _check_name(archive, member.name)
                if member.issym():
                    _check_link(archive, member.name, member.linkname)
                elif member.islnk():
                    _check_name(archive, member.linkname)
                elif not (member.isfile() or member.isdir()):
                    raise UnsafeArchiveError(f"{archive}: member {member.name!r} is a device or "
                                             "fifo; archive refused")
                bar.update(1)
                yield member

        try:
            tar.extractall(into, members=checked(), filter="data")
        except tarfile.FilterError as error:  # second line of defence: the stdlib's own filter
            raise UnsafeArchiveError(f"{archive}: {error}; archive refused") from None


def _zip_symlink_target(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> str | None:
    if stat.S_ISLNK(info.external_attr >> 16):
        return zf.read(info).decode("utf-8", "replace")
    return None


def _extract_zip(archive: Path, into: Path, bar) -> None:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        for info in infos:  # check everything first: the central directory is cheap to read
            _check_name(archive, info.filename)
            link = _zip_symlink_target(zf, info)
            if link is not None:
                _check_link(archive, info.filename, link)
        for info in infos:
            zf.extract(info, into)
            bar.update(1)


def _extract_rar(archive: Path, into: Path, bar) -> None:
    import rarfile

    with rarfile.RarFile(archive) as rf:
        infos = rf.infolist()
        for info in infos:
            _check_name(archive, info.filename)
            if info.is_symlink():
                target = rf.read(info).decode("utf-8", "replace") if not info.file_redir \
                    else info.file_redir[2]
                _check_link(archive, info.filename, target)
        for info in infos:  # written by us, at the checked path, so the tool cannot escape
            path = into / _check_name(archive, info.filename)
            if info.is_dir():
                path.mkdir(parents=True, exist_ok=True)
            elif info.is_symlink():
                path.parent.mkdir(parents=True, exist_ok=True)
                target = info.file_redir[2] if info.file_redir else rf.read(info).decode()
                os.symlink(target, path)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                try:
                    with rf.open(info) as src, open(path, "wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
                except rarfile.RarCannotExec as error:
                    raise ExtractionError(
                        f"{archive}: rar needs a system tool ({error}); install one, e.g. "
                        "`apt-get install -y unar`"
                    ) from None
            bar.update(1)


_EXTRACTORS = {"tar": _extract_tar, "zip": _extract_zip, "rar": _extract_rar}


def extract_archive(archive: Path, target: Path, *, progress: bool = True) -> Path:
    """Unpack `archive` into the folder `target` (created; must not exist yet), all or nothing."""
    from tqdm.auto import tqdm

    archive, target = Path(archive), Path(target)
    if target.exists():
        raise FileExistsError(f"{target} already exists; remove it to extract {archive.name} again")
    kind = archive_kind(archive)
    if kind is None:
        raise ExtractionError(f"{archive}: not a tar, zip or rar archive (set `extract: false` on "
                              "the card's source if it is a plain file)")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".extracting", dir=target.parent))
    try:
        with tqdm(desc=f"extract {archive.name}", unit="file", disable=not progress, leave=False) as bar:
            _EXTRACTORS[kind](archive, tmp, bar)
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; the data is not
        os.replace(tmp, target)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as error:
        raise ExtractionError(f"{archive}: extraction failed ({type(error).__name__}: {error}); "
                              "nothing was left behind") from error
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def ensure_extracted(layout: DatasetLayout, source: Source, *, progress: bool = True) -> Path:
    """`extracted/<archive stem>/`, unpacked from `raw/<file>` unless already done for this file.

    A `.source.json` inside records the raw file's size and mtime: a re-fetched archive is
    unpacked again. Callers hold the dataset's fetch lock, so leftovers of a killed extraction
    can be removed here.
    """
    import json

    archive = layout.raw_file(source.filename)
    target = layout.extracted_dir(source.filename)
    stat_ = archive.stat()
    record = {"archive": source.filename, "size": stat_.st_size, "mtime_ns": stat_.st_mtime_ns}
    marker = target / ".source.json"
    if target.is_dir():
        try:
            if json.loads(marker.read_text()) == record:
                return target
        except (OSError, ValueError):
            pass
        shutil.rmtree(target)
    staging = target.parent / f".{target.name}.new"
    shutil.rmtree(staging, ignore_errors=True)
    for leftover in target.parent.glob(f".{staging.name}.*.extracting"):  # a killed extraction
        shutil.rmtree(leftover, ignore_errors=True)
    extract_archive(archive, staging, progress=progress)
    atomic.write_json(staging / ".source.json", record)
    os.replace(staging, target)
    return target
