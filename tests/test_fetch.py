"""The stimuli fetcher, against a loopback HTTP server that honours Range requests."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from functools import partial
from pathlib import Path

import pytest

from visionaudit.cli import main as cli_main
from visionaudit.fetch import LICENCE, fetch, load_manifest

UPSTREAM = "stimuli/style-transfer-preprocessed-512"
FILES = ["airplane/airplane1-bicycle2.png", "bear/bear1-airplane3.png", "cat/cat1-bird1.png", "dog/dog1-bear1.png"]


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder; answers ``Range: bytes=N-`` with 206 so resumption can be tested."""

    ranges: list[str] = []

    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        rng = self.headers.get("Range")
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
        self.wfile.write(data)


@pytest.fixture
def mirror(tmp_path, shared_data):
    """A mirror of four real stimuli, one of them corrupted, on 127.0.0.1."""
    root = tmp_path / "mirror"
    for rel in FILES:
        dst = root / UPSTREAM / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes((shared_data / "cue-conflict" / rel).read_bytes())
    corrupt = root / UPSTREAM / FILES[2]
    corrupt.write_bytes(corrupt.read_bytes()[:-10] + b"0123456789")
    RangeHandler.ranges = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(RangeHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    manifest = {"cue-conflict": {"upstream": UPSTREAM, "files": {r: load_manifest()["cue-conflict"]["files"][r] for r in FILES}}}
    manifest_path = tmp_path / "manifest.json"
    manifest_path.write_text(json.dumps(manifest))
    yield f"http://127.0.0.1:{server.server_address[1]}", manifest_path
    server.shutdown()


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_fetch_verifies_rejects_and_resumes(tmp_path, mirror, shared_data, capsys):
    url, manifest = mirror
    dest = tmp_path / "data"
    # An interrupted earlier run left half of one file.
    first = dest / "cue-conflict" / (FILES[0] + ".part")
    first.parent.mkdir(parents=True)
    original = (shared_data / "cue-conflict" / FILES[0]).read_bytes()
    first.write_bytes(original[: len(original) // 2])

    code = cli_main(["fetch", "cue-conflict", "--dest", str(dest), "--base-url", url, "--manifest", str(manifest)])
    err = capsys.readouterr()
    assert code == 1  # one file was rejected
    assert "CC BY 4.0" in err.err and LICENCE in err.err
    assert f"rejected: {FILES[2]}" in err.err and "4/4 files" in err.err
    assert RangeHandler.ranges == [f"bytes={len(original) // 2}-"]
    for rel in (FILES[0], FILES[1], FILES[3]):
        assert sha(dest / "cue-conflict" / rel) == sha(shared_data / "cue-conflict" / rel)
    assert not (dest / "cue-conflict" / FILES[2]).exists()
    assert not list(dest.rglob("*.part"))

    # A second run keeps what is verified and only retries the bad file.
    result = fetch("cue-conflict", dest, base_url=url, manifest=json.loads(manifest.read_text()))
    assert sorted(result.kept) == sorted([FILES[0], FILES[1], FILES[3]])
    assert result.rejected == [FILES[2]] and not result.downloaded


def test_fetch_unreachable_server_fails_cleanly(tmp_path, mirror, capsys):
    _, manifest = mirror
    result = fetch("cue-conflict", tmp_path, base_url="http://127.0.0.1:9", manifest=json.loads(manifest.read_text()), retries=0, timeout=2)
    assert sorted(result.failed) == sorted(FILES) and not result.ok
    assert "run the command again to resume" in capsys.readouterr().err


def test_shipped_manifest_matches_the_real_stimuli(shared_data):
    manifest = load_manifest()
    assert {k: len(v["files"]) for k, v in manifest.items()} == {"cue-conflict": 1280, "edges": 160, "filled-silhouettes": 160}
    for name, entry in manifest.items():
        local = {p.relative_to(shared_data / name).as_posix(): sha(p) for p in (shared_data / name).rglob("*.png")}
        assert local == entry["files"], name
