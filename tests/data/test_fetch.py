"""Fetch: verified downloads from a local HTTP server, with the faults the real world serves."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import pytest

from reprolab.data.fetch import (
    ChecksumError,
    HtmlPageError,
    SourceUnavailableError,
    UnpinnedSourceWarning,
    fetch_dataset,
    fetch_source,
    is_verified,
    read_checksums,
)
from reprolab.data.layout import DatasetLayout
from reprolab.errors import MissingDataError
from reprolab.registry import DatasetCard

from .conftest import Route, card_of

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB, not HTML-looking
SHA = hashlib.sha256(PAYLOAD).hexdigest()
MD5 = hashlib.md5(PAYLOAD).hexdigest()


def make_card(sources: list[dict], **extra) -> DatasetCard:
    return DatasetCard.model_validate({
        "id": "demo", "name": "Demo", "citation": "n/a", "license": "CC0",
        "homepage": "https://example.org/demo", "sources": sources, **extra,
    })


def fetch(card: DatasetCard, root: Path, **kwargs):
    layout = DatasetLayout("demo", "full", root)
    return fetch_source(card, card.sources[0], layout, retries=kwargs.pop("retries", 3),
                        backoff=0.0, progress=False, **kwargs), layout


def nothing_in_place(layout: DatasetLayout, filename: str) -> bool:
    partial = list(layout.partial.glob("*")) if layout.partial.exists() else []
    return not layout.raw_file(filename).exists() and not partial


def test_download_verifies_sha256_and_md5_and_stamps(checkout, http_server):
    http_server.routes["/demo.bin"] = Route(PAYLOAD)
    card = make_card([{"filename": "demo.bin", "size": len(PAYLOAD), "sha256": SHA, "md5": MD5,
                       "urls": [http_server.url("demo.bin")]}])
    result, layout = fetch(card, checkout)
    assert result.action == "downloaded"
    assert layout.raw_file("demo.bin").read_bytes() == PAYLOAD
    assert is_verified(layout, card.sources[0])
    again, _ = fetch(card, checkout)  # verified stamp: no second download
    assert again.action == "present" and len(http_server.requests) == 1


def test_connection_dropped_mid_file_is_resumed_with_range(checkout, http_server):
    http_server.routes["/demo.bin"] = Route(PAYLOAD, drop_after=300_000)
    card = make_card([{"filename": "demo.bin", "sha256": SHA, "urls": [http_server.url("demo.bin")]}])
    result, layout = fetch(card, checkout)
    assert result.action == "downloaded"
    assert layout.raw_file("demo.bin").read_bytes() == PAYLOAD
    ranges = [r for _, r in http_server.requests]
    assert ranges[0] is None and ranges[1] is not None
    assert 0 < int(ranges[1].removeprefix("bytes=").rstrip("-")) <= 300_000


def test_gave_up_download_resumes_in_the_next_run(checkout, http_server):
    route = Route(PAYLOAD, drop_after=100_000, drops_left=3)  # every attempt of run 1 is cut
    http_server.routes["/demo.bin"] = route
    card = make_card([{"filename": "demo.bin", "sha256": SHA, "urls": [http_server.url("demo.bin")]}])
    layout = DatasetLayout("demo", "full", checkout)
    with pytest.raises(SourceUnavailableError, match="gave up after 3 attempts"):
        fetch(card, checkout, retries=2)
    kept = (layout.partial / "demo.bin.part").stat().st_size
    assert kept >= 100_000 and not layout.raw_file("demo.bin").exists()
    result, _ = fetch(card, checkout)  # run 2: the server behaves; only the rest is sent
    assert result.action == "downloaded" and layout.raw_file("demo.bin").read_bytes() == PAYLOAD
    assert http_server.requests[-1][1] == f"bytes={kept}-"


def test_server_ignoring_range_restarts_cleanly(checkout, http_server):
    http_server.routes["/demo.bin"] = Route(PAYLOAD, drop_after=200_000, honour_range=False)
    card = make_card([{"filename": "demo.bin", "sha256": SHA, "urls": [http_server.url("demo.bin")]}])
    _, layout = fetch(card, checkout)
    assert layout.raw_file("demo.bin").read_bytes() == PAYLOAD


def test_wrong_bytes_are_quarantined_and_nothing_is_in_place(checkout, http_server):
    http_server.routes["/demo.bin"] = Route(PAYLOAD[::-1])
    card = make_card([{"filename": "demo.bin", "sha256": SHA, "urls": [http_server.url("demo.bin")]}])
    layout = DatasetLayout("demo", "full", checkout)
    with pytest.raises(ChecksumError, match="checksum mismatch for demo.bin"):
        fetch(card, checkout)
    assert nothing_in_place(layout, "demo.bin")
    quarantined = [p for p in layout.quarantine.iterdir() if not p.name.endswith(".why.txt")]
    assert len(quarantined) == 1 and quarantined[0].read_bytes() == PAYLOAD[::-1]


def test_html_page_gets_its_own_message(checkout, http_server):
    page = b"<!DOCTYPE html><html><head><title>Sign in</title></head><body>login</body></html>"
    http_server.routes["/demo.tar"] = Route(page, content_type="text/html; charset=utf-8")
    card = make_card([{"filename": "demo.tar", "sha256": SHA, "urls": [http_server.url("demo.tar")]}])
    layout = DatasetLayout("demo", "full", checkout)
    with pytest.raises(HtmlPageError) as error:
        fetch(card, checkout)
    message = str(error.value)
    assert "HTML page" in message and "login wall" in message and "'Sign in'" in message
    assert "mismatch" not in message
    assert nothing_in_place(layout, "demo.tar")


def test_html_without_content_type_is_sniffed(checkout, http_server):
    http_server.routes["/demo.tar"] = Route(b"\n  <html><body>quota exceeded</body></html>")
    card = make_card([{"filename": "demo.tar", "sha256": SHA, "urls": [http_server.url("demo.tar")]}])
    with pytest.raises(HtmlPageError, match="quota"):
        fetch(card, checkout)


def test_404_on_first_source_uses_the_mirror(checkout, http_server):
    http_server.routes["/mirror/demo.bin"] = Route(PAYLOAD)
    card = make_card([{"filename": "demo.bin", "sha256": SHA,
                       "urls": [http_server.url("gone/demo.bin"), http_server.url("mirror/demo.bin")]}])
    result, layout = fetch(card, checkout)
    assert result.origin.endswith("/mirror/demo.bin")
    assert [p for p, _ in http_server.requests] == ["/gone/demo.bin", "/mirror/demo.bin"]


def test_extra_mirror_argument_and_all_sources_failing(checkout, http_server):
    http_server.routes["/m2/demo.bin"] = Route(PAYLOAD)
    card = make_card([{"filename": "demo.bin", "sha256": SHA, "urls": [http_server.url("gone/demo.bin")]}])
    result, _ = fetch(card, checkout, mirrors=[http_server.url("m2")])
    assert result.action == "downloaded"
    card = make_card([{"filename": "other.bin", "sha256": SHA, "urls": [http_server.url("gone/other.bin")]}])
    with pytest.raises(SourceUnavailableError, match="HTTP 404"):
        fetch(card, checkout)


def test_hand_placed_file_is_accepted_by_checksum(checkout):
    card = make_card([{"filename": "demo.bin", "sha256": SHA, "urls": ["https://unreachable.invalid/x"]}])
    layout = DatasetLayout("demo", "full", checkout)
    layout.raw.mkdir(parents=True)
    layout.raw_file("demo.bin").write_bytes(PAYLOAD)
    result, _ = fetch(card, checkout)
    assert result.action == "placed" and is_verified(layout, card.sources[0])


def test_hand_placed_wrong_file_is_quarantined_then_downloaded(checkout, http_server):
    http_server.routes["/demo.bin"] = Route(PAYLOAD)
    card = make_card([{"filename": "demo.bin", "sha256": SHA, "urls": [http_server.url("demo.bin")]}])
    layout = DatasetLayout("demo", "full", checkout)
    layout.raw.mkdir(parents=True)
    layout.raw_file("demo.bin").write_bytes(b"truncated")
    with pytest.warns(UserWarning, match="does not match the card"):
        result, _ = fetch(card, checkout)
    assert result.action == "downloaded" and layout.raw_file("demo.bin").read_bytes() == PAYLOAD
    assert any(p.read_bytes() == b"truncated" for p in layout.quarantine.glob("demo.bin.*[0-9]Z"))


def test_file_url_and_plain_path_sources(checkout, tmp_path):
    src = tmp_path / "elsewhere" / "demo.bin"
    src.parent.mkdir()
    src.write_bytes(PAYLOAD)
    for url in (src.as_uri(), str(src)):
        card = make_card([{"filename": "demo.bin", "md5": MD5, "urls": [url]}])
        layout = DatasetLayout("demo", "full", checkout)
        layout.raw_file("demo.bin").unlink(missing_ok=True)
        result, _ = fetch(card, checkout)
        assert result.action == "downloaded" and layout.raw_file("demo.bin").read_bytes() == PAYLOAD


def test_unpinned_source_checks_size_and_warns(checkout, http_server):
    http_server.routes["/demo.bin"] = Route(PAYLOAD)
    card = make_card([{"filename": "demo.bin", "size": len(PAYLOAD), "unpinned": "no hash published",
                       "urls": [http_server.url("demo.bin")]}])
    with pytest.warns(UnpinnedSourceWarning, match="checked its size only"):
        fetch(card, checkout)
    bad = make_card([{"filename": "short.bin", "size": len(PAYLOAD) + 1, "unpinned": "no hash",
                      "urls": [http_server.url("demo.bin")]}])
    with pytest.raises(ChecksumError, match="size"):
        fetch(bad, checkout)


def test_missing_manual_files_name_page_files_and_folder(checkout):
    card = card_of(checkout, "sthv1")
    with pytest.raises(MissingDataError) as error:
        fetch_dataset(card, "full", root=checkout, progress=False)
    message = str(error.value)
    assert "developer.qualcomm.com/software/ai-datasets/something-something" in message
    for source in card.sources:
        assert source.filename in message
    assert str((checkout / "datasets" / "sthv1" / "full" / "raw").resolve()) in message
    assert "reprolab data fetch sthv1" in message


def test_manual_files_placed_by_hand_are_accepted(checkout):
    """Full profile, manual + unpinned: the files the user placed are taken (size-only checks)."""
    from reprolab.data.fixtures import write_mirror

    card = card_of(checkout, "sthv1")
    raw = DatasetLayout("sthv1", "full", checkout).raw
    write_mirror(card, raw)  # the user "downloaded" the archive and the label files
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnpinnedSourceWarning)
        report = fetch_dataset(card, "full", root=checkout, progress=False)
    assert [f.action for f in report.fetched] == ["placed"] * 4
    assert (report.extracted[0] / "20bn-something-something-v1").is_dir()


def test_tiny_fetch_builds_mirror_and_verifies_checksums(checkout):
    card = card_of(checkout, "sthv1")
    report = fetch_dataset(card, "tiny", root=checkout, progress=False)
    layout = DatasetLayout("sthv1", "tiny", checkout)
    sums = read_checksums(layout.mirror / "SHA256SUMS")
    assert sorted(sums) == sorted(s.filename for s in card.sources)
    for item in report.fetched:
        assert item.action == "downloaded" and item.origin.startswith("file://")
        assert hashlib.sha256(item.path.read_bytes()).hexdigest() == sums[item.source.filename]
    frames = layout.extracted_dir("20bn-something-something-v1.tar") / "20bn-something-something-v1"
    videos = sorted(frames.iterdir())
    assert len(videos) == 96
    assert sorted(p.name for p in videos[0].iterdir()) == [f"{i:05d}.jpg" for i in range(1, 17)]
    # Full and tiny never share files.
    assert not DatasetLayout("sthv1", "full", checkout).raw.exists()


def test_full_profile_from_an_http_mirror_end_to_end(checkout, http_server, tmp_path):
    """The SSv1 fixture served over HTTP as if it were the real site: fetch, extract, prepare."""
    import yaml

    from reprolab.data import open_split
    from reprolab.data.fixtures import write_mirror
    from reprolab.data.prepare import prepare_dataset
    from reprolab.registry import load_card

    card_path = checkout / "datasets" / "sthv1" / "card.yaml"
    site = tmp_path / "site"
    write_mirror(card_of(checkout, "sthv1"), site)
    sums = read_checksums(site / "SHA256SUMS")
    data = yaml.safe_load(card_path.read_text())
    data.pop("manual")
    data["sources"] = [{"filename": s["filename"], "sha256": sums[s["filename"]],
                        "urls": [http_server.url(f"v1/{s['filename']}")],
                        **({"extract": False} if s.get("extract") is False else {})}
                       for s in data["sources"]]
    data["splits"] = {"train": {"samples": 64}, "validation": {"samples": 32}}
    data["expect"] = {"classes": 4}
    card_path.write_text(yaml.safe_dump(data, sort_keys=False))
    for name in sums:
        blob = (site / name).read_bytes()
        http_server.routes[f"/v1/{name}"] = Route(blob, drop_after=len(blob) // 3 if len(blob) > 10_000 else None)
    card = load_card(card_path)
    report = fetch_dataset(card, "full", root=checkout, progress=False, backoff=0.0)
    assert [f.action for f in report.fetched] == ["downloaded"] * 4
    assert sum(1 for _, r in http_server.requests if r) == 1  # the archive resumed once
    prepare_dataset(card, "full", root=checkout, workers=1, progress=False)
    val = open_split("sthv1", "validation", "full", root=checkout)
    assert len(val) == 32 and len(val.classes) == 4
    assert not DatasetLayout("sthv1", "tiny", checkout).base.exists()


def test_concurrent_fetch_of_the_same_dataset_is_refused(checkout):
    from reprolab.data.locks import BusyError, exclusive

    card = card_of(checkout, "sthv1")
    layout = DatasetLayout("sthv1", "tiny", checkout)
    with exclusive(layout.state / "fetch.lock", "a fetch"):  # as another process would hold it
        with pytest.raises(BusyError, match="in progress in another process"):
            fetch_dataset(card, "tiny", root=checkout, progress=False)
    assert fetch_dataset(card, "tiny", root=checkout, progress=False).fetched


def test_fetch_after_a_killed_extraction_cleans_up(checkout):
    import shutil

    card = card_of(checkout, "sthv1")
    fetch_dataset(card, "tiny", root=checkout, progress=False)
    layout = DatasetLayout("sthv1", "tiny", checkout)
    target = layout.extracted_dir("20bn-something-something-v1.tar")
    shutil.rmtree(target)  # as if the extraction had been killed half-way:
    leftover = layout.extracted / f"..{target.name}.new.k1ll3d.extracting"
    (leftover / "20bn-something-something-v1").mkdir(parents=True)
    fetch_dataset(card, "tiny", root=checkout, progress=False)
    assert sorted(p.name for p in layout.extracted.iterdir()) == [target.name]
    assert len(list((target / "20bn-something-something-v1").iterdir())) == 96


def test_tiny_fetch_refuses_a_tampered_mirror(checkout):
    card = card_of(checkout, "sthv1")
    layout = DatasetLayout("sthv1", "tiny", checkout)
    from reprolab.data.fixtures import ensure_mirror

    ensure_mirror(card, layout)
    with open(layout.mirror / "something-something-v1-train.csv", "a") as handle:
        handle.write("1;Moving something up\n")
    with pytest.raises(ChecksumError, match="something-something-v1-train.csv"):
        fetch_dataset(card, "tiny", root=checkout, progress=False)
    assert not layout.raw_file("something-something-v1-train.csv").exists()
