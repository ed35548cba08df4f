"""Safe extraction: escaping members are refused (tar, zip, rar) and a failure leaves nothing."""

from __future__ import annotations

import io
import shutil
import stat
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path

import pytest

from reprolab.data.extract import (
    ExtractionError,
    UnsafeArchiveError,
    archive_kind,
    extract_archive,
)


def make_tar(path: Path, members: list[tuple[str, bytes | str | None]], mode: str = "w:gz") -> Path:
    """members: (name, bytes) files, (name, None) folders, (name, "->target") symlinks."""
    with tarfile.open(path, mode) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif isinstance(data, str):
                info.type, info.linkname = tarfile.SYMTYPE, data.removeprefix("->")
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


def make_zip(path: Path, members: list[tuple[str, bytes]], symlinks: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members:
            info = zipfile.ZipInfo(name)  # ZipInfo keeps `..` (writestr(name) would too)
            zf.writestr(info, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return path


def _rar_header(kind: int, flags: int, body: bytes) -> bytes:
    rest = struct.pack("<BHH", kind, flags, 7 + len(body)) + body
    return struct.pack("<H", zlib.crc32(rest) & 0xFFFF) + rest


def make_rar(path: Path, members: list[tuple[str, bytes]]) -> Path:
    """A RAR 4 archive of stored (uncompressed) files, written byte by byte: no `rar` tool needed."""
    out = b"Rar!\x1a\x07\x00" + _rar_header(0x73, 0, b"\0" * 6)
    for name, data in members:
        encoded = name.encode()
        body = struct.pack("<IIBIIBBHI", len(data), len(data), 3, zlib.crc32(data), 0x4A000000,
                           20, 0x30, len(encoded), 0o100644) + encoded
        out += _rar_header(0x74, 0x8000, body) + data
    path.write_bytes(out + _rar_header(0x7B, 0x4000, b""))
    return path


GOOD = [("root", None), ("root/a.txt", b"alpha"), ("root/sub", None), ("root/sub/b.txt", b"beta")]


def assert_nothing_left(target: Path) -> None:
    assert not target.exists()
    assert not [p for p in target.parent.iterdir() if p.name.startswith(f".{target.name}")]


@pytest.mark.parametrize("mode", ["w", "w:gz", "w:bz2", "w:xz"])
def test_tar_any_compression_is_extracted(tmp_path, mode):
    archive = make_tar(tmp_path / "data.tar", GOOD, mode)  # the name says .tar; the bytes decide
    assert archive_kind(archive) == "tar"
    out = extract_archive(archive, tmp_path / "out", progress=False)
    assert (out / "root/sub/b.txt").read_bytes() == b"beta"


def test_tar_inside_link_is_allowed(tmp_path):
    archive = make_tar(tmp_path / "t.tgz", [*GOOD, ("root/link", "->sub/b.txt")])
    out = extract_archive(archive, tmp_path / "out", progress=False)
    assert (out / "root/link").read_bytes() == b"beta"


@pytest.mark.parametrize("bad", [
    ("../evil.txt", b"x"),
    ("root/../../evil.txt", b"x"),
    ("/etc/evil.txt", b"x"),
    ("root/out", "->../../outside"),
    ("root/abs", "->/etc/passwd"),
])
def test_tar_escaping_member_is_refused_and_nothing_left(tmp_path, bad):
    archive = make_tar(tmp_path / "t.tar.gz", [*GOOD, bad])
    with pytest.raises(UnsafeArchiveError, match="archive refused") as error:
        extract_archive(archive, tmp_path / "out", progress=False)
    assert repr(bad[0]) in str(error.value)
    assert_nothing_left(tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path.parent / "evil.txt").exists()


def test_zip_extracts_and_refuses_dotdot_and_links_out(tmp_path):
    good = make_zip(tmp_path / "good.zip", [("root/a.txt", b"alpha")])
    assert (extract_archive(good, tmp_path / "out", progress=False) / "root/a.txt").read_bytes() == b"alpha"
    bad = make_zip(tmp_path / "bad.zip", [("root/a.txt", b"alpha"), ("../evil.txt", b"x")])
    with pytest.raises(UnsafeArchiveError, match="'../evil.txt'"):
        extract_archive(bad, tmp_path / "out2", progress=False)
    assert_nothing_left(tmp_path / "out2")
    link = make_zip(tmp_path / "link.zip", [("root/a.txt", b"alpha")], {"root/l": "../../x"})
    with pytest.raises(UnsafeArchiveError, match="points outside"):
        extract_archive(link, tmp_path / "out3", progress=False)
    assert_nothing_left(tmp_path / "out3")


def test_rar_extracts_and_refuses_dotdot(tmp_path):
    good = make_rar(tmp_path / "good.rar", [("root/a.txt", b"alpha"), ("root/sub/b.txt", b"beta")])
    assert archive_kind(good) == "rar"
    out = extract_archive(good, tmp_path / "out", progress=False)
    assert (out / "root/sub/b.txt").read_bytes() == b"beta"
    bad = make_rar(tmp_path / "bad.rar", [("root/a.txt", b"alpha"), ("../evil.txt", b"x")])
    with pytest.raises(UnsafeArchiveError, match="'../evil.txt'"):
        extract_archive(bad, tmp_path / "out2", progress=False)
    assert_nothing_left(tmp_path / "out2")


def test_rar_tool_is_available_for_compressed_members():
    """Compressed RAR members (HMDB-51, UCF-101) need unrar, unar or bsdtar on the system."""
    if not any(shutil.which(tool) for tool in ("unrar", "unar", "bsdtar")):
        pytest.skip("no RAR tool installed (Debian: apt-get install -y unar); compressed RAR "
                    "members cannot be extracted here")
    import rarfile

    rarfile.tool_setup()  # raises RarCannotExec if none of the tools works


def test_truncated_archive_fails_cleanly(tmp_path):
    archive = make_tar(tmp_path / "t.tar.gz", [*GOOD, ("root/big.bin", bytes(200_000))])
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])
    with pytest.raises(ExtractionError, match="nothing was left behind"):
        extract_archive(archive, tmp_path / "out", progress=False)
    assert_nothing_left(tmp_path / "out")


def test_not_an_archive_and_existing_target(tmp_path):
    plain = tmp_path / "labels.csv"
    plain.write_text("1;a\n")
    with pytest.raises(ExtractionError, match="not a tar, zip or rar"):
        extract_archive(plain, tmp_path / "out", progress=False)
    (tmp_path / "exists").mkdir()
    archive = make_tar(tmp_path / "t.tar", GOOD)
    with pytest.raises(FileExistsError):
        extract_archive(archive, tmp_path / "exists", progress=False)
