"""Fixtures for the dataset manager: a scratch checkout, prepared tiny splits, a local HTTP server."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from reprolab.registry import load_card

REPO = Path(__file__).resolve().parents[2]


def make_checkout(root: Path, dataset_ids: tuple[str, ...] = ("sthv1", "sthv2")) -> Path:
    """A minimal checkout holding only the given dataset cards (enough for load_registry)."""
    for name in ("reproductions", "benchmarks"):
        (root / name).mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text("[project]\nname = 'scratch'\n")
    for dataset_id in dataset_ids:
        (root / "datasets" / dataset_id).mkdir(parents=True, exist_ok=True)
        card = yaml.safe_load((REPO / "datasets" / dataset_id / "card.yaml").read_text())
        if dataset_id == "sthv1":
            # These tests check the data machinery, not learning: they use the small SSv1 fixture
            # (24 + 8 videos per class, 16 frames) instead of the card's larger, training-sized one.
            card["tiny"].update(videos_per_class=24, validation_per_class=8, frames=16,
                                splits={"train": 64, "validation": 32})
        (root / "datasets" / dataset_id / "card.yaml").write_text(yaml.safe_dump(card, sort_keys=False))
    return root


def card_of(root: Path, dataset_id: str):
    return load_card(root / "datasets" / dataset_id / "card.yaml")


@pytest.fixture
def checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_checkout(tmp_path / "checkout")
    monkeypatch.setenv("REPROLAB_ROOT", str(root))
    return root


@pytest.fixture(scope="session")
def prepared_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkout with tiny sthv1 fetched and prepared, shared read-only by the tests."""
    from reprolab.data.fetch import fetch_dataset
    from reprolab.data.prepare import prepare_dataset

    root = make_checkout(tmp_path_factory.mktemp("prepared") / "checkout", ("sthv1",))
    card = card_of(root, "sthv1")
    fetch_dataset(card, "tiny", root=root, progress=False)
    prepare_dataset(card, "tiny", root=root, workers=1, progress=False)
    return root


# ----------------------------------------------------------------------------- HTTP server


@dataclass
class Route:
    data: bytes = b""
    status: int = 200
    content_type: str = "application/octet-stream"
    drop_after: int | None = None    # first request: send this many bytes, then cut the connection
    honour_range: bool = True
    drops_left: int = 1


@dataclass
class FileServer:
    base_url: str
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range header)

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"


@pytest.fixture
def http_server():
    """An HTTP server on 127.0.0.1 serving `server.routes`, with Range and fault injection."""
    state = FileServer(base_url="")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # keep test output clean
            pass

        def do_GET(self):  # noqa: N802 (http.server's naming)
            range_header = self.headers.get("Range")
            state.requests.append((self.path, range_header))
            route = state.routes.get(self.path)
            if route is None or route.status == 404:
                body = b"<html><body>404 Not Found</body></html>"
                self.send_response(404)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            data, start = route.data, 0
            if range_header and route.honour_range:
                start = int(range_header.removeprefix("bytes=").split("-")[0])
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(route.status)
            body = data[start:]
            self.send_header("Content-Type", route.content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if route.drop_after is not None and route.drops_left > 0:
                route.drops_left -= 1
                self.wfile.write(body[: route.drop_after])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)  # cut mid-file
                return
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
