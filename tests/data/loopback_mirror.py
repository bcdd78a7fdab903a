"""A download server on 127.0.0.1 for the fetcher's tests: it honours Range requests, records every request and can
drop a connection mid-file; and mirrors of the real data sets laid out as upstream is."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from contextlib import contextmanager
from functools import partial
from pathlib import Path

from visionaudit.data.fetch import IMAGENET_SAMPLE, OBSERVERS

UPSTREAM = "stimuli/style-transfer-preprocessed-512"
OBSERVERS_FOLDER = "raw-data/style-transfer-512-nomask-experiment"
FILES = ["airplane/airplane1-bicycle2.png", "bear/bear1-airplane3.png", "cat/cat1-bird1.png", "dog/dog1-bear1.png"]


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder; answers ``Range: bytes=N-`` with 206 so resumption can be tested. Every request is
    recorded (path, Range); a path in ``drop`` has its first full answer cut after half its bytes."""

    ranges: list[str] = []
    requests: list[tuple[str, str | None]] = []
    drop: set[str] = set()

    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):
        path = Path(self.translate_path(self.path))
        rng = self.headers.get("Range")
        type(self).requests.append((self.path, rng))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        if rng:
            type(self).ranges.append(rng)
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(data):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            data = data[start:]
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.path in type(self).drop:
            type(self).drop.discard(self.path)
            self.wfile.write(data[: len(data) // 2])  # the connection drops mid-file
            self.close_connection = True
            return
        self.wfile.write(data)


@contextmanager
def serving(root: Path):
    """``root`` on 127.0.0.1 (a free port) while the block runs; yields the base URL."""
    RangeHandler.ranges, RangeHandler.requests, RangeHandler.drop = [], [], set()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(RangeHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed): a connection there is refused at once."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def two_of_everything(tmp_path: Path, shared_data: Path) -> tuple[Path, Path]:
    """A mirror laid out as the two upstream repositories (stimuli under their folders, the ImageNet sample at
    the top), two files per data set, and a manifest for them. The ImageNet files are ../shared's resized copies,
    so their entry is a substitute manifest built from them (as the README's VISIONAUDIT_FETCH_MANIFEST allows)."""
    root = tmp_path / "mirror"
    manifest: dict = {}
    upstream = {"cue-conflict": UPSTREAM, "edges": "stimuli/edges", "filled-silhouettes": "stimuli/filled-silhouettes",
                IMAGENET_SAMPLE: "", OBSERVERS: OBSERVERS_FOLDER}
    for name, folder in upstream.items():
        files = sorted(p for p in (shared_data / name).rglob("*") if p.is_file())[:2]
        entry = manifest[name] = {"upstream": folder, "files": {}}
        for p in files:
            rel = p.relative_to(shared_data / name).as_posix()
            (root / folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / folder / rel).write_bytes(p.read_bytes())
            entry["files"][rel] = {"sha256": sha(p), "size": p.stat().st_size}
    path = tmp_path / "substitute-manifest.json"
    path.write_text(json.dumps(manifest))
    return root, path
