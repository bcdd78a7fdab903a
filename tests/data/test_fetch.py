"""The data fetcher (stimuli, the labelled ImageNet sample; by hand and on first use by a run), against a
loopback HTTP server that honours Range requests and can corrupt a file or drop a connection."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.terminal_text import said_once
from visionaudit.cli import main as cli_main
from visionaudit.data.fetch import (
    BASE_URL_ENV,
    COMMIT,
    IMAGENET_SAMPLE,
    LICENCE,
    LOCK_FILE,
    MANIFEST_ENV,
    OBSERVERS,
    STIMULI,
    fetch,
    fetch_all,
    file_url,
    load_manifest,
)
from visionaudit.data.image_sets import cue_conflict, labelled_images
from visionaudit.errors import DataError

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
    manifest = {"cue-conflict": {"upstream": UPSTREAM, "files": {r: load_manifest()["cue-conflict"]["files"][r] for r in FILES}}}
    manifest_path = tmp_path / "manifest.json"
    manifest_path.write_text(json.dumps(manifest))
    with serving(root) as url:
        yield url, manifest_path


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
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


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed): a connection there is refused at once."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_fetch_stops_at_an_unreachable_server_and_says_so_once(tmp_path, capsys):
    """Issue 23, item 13: one file tried, the rest not tried (not "4 bad"), and the host named once."""
    url = f"http://127.0.0.1:{_closed_port()}"
    manifest = {"cue-conflict": {"upstream": UPSTREAM, "files": {r: "0" * 64 for r in FILES}},
                "edges": {"upstream": "e", "files": {"a.png": "1" * 64}}}
    results = fetch_all(["cue-conflict", "edges"], tmp_path, base_url=url, manifest=manifest, retries=0, timeout=2)
    first, second = results["cue-conflict"], results["edges"]
    assert first.failed == sorted(FILES)[:1] and first.not_tried == sorted(FILES)[1:] and not first.ok
    assert first.unreachable is not None and first.unreachable.startswith(url.removeprefix("http://"))
    assert second.not_tried == ["a.png"] and second.unreachable == first.unreachable  # the same host: not tried again
    err = capsys.readouterr().err
    assert said_once(err, f"cannot reach {first.unreachable}") and " bad)" not in err, err


def test_a_run_that_cannot_reach_the_server_names_both_fixes_once(tmp_path, monkeypatch):
    from visionaudit.data.provision import provide

    cache = tmp_path / "cache"
    monkeypatch.delenv("VISIONAUDIT_DATA", raising=False)
    monkeypatch.setenv("VISIONAUDIT_CACHE", str(cache))
    monkeypatch.setenv(BASE_URL_ENV, f"http://127.0.0.1:{_closed_port()}")
    problems = provide(None, "imagenet-sample", {"cue-conflict", "edges", "labelled"}, offline=False)
    assert len(problems) == 1, problems
    (problem,) = problems
    assert problem.startswith("cannot reach the download server 127.0.0.1:")
    assert "cue-conflict, edges, imagenet-sample could not be fetched (nothing else was tried)" in problem
    assert "Run on a machine with network access" in problem and "point --audit-data" in problem
    assert "could not be fetched into" not in problem and "of 1000" not in problem


def test_a_dry_run_looks_for_the_data_and_fetches_nothing(tmp_path, monkeypatch):
    """hunt34 (--collect-only): ``provide(fetch=False)`` names what a run would stop on, by existence alone; what the
    run would fetch into the user cache is no problem yet, and nothing is downloaded (the server is unreachable: a
    download would have been a problem)."""
    from visionaudit.data.provision import provide

    cache = tmp_path / "cache"
    monkeypatch.delenv("VISIONAUDIT_DATA", raising=False)
    monkeypatch.setenv("VISIONAUDIT_CACHE", str(cache))
    monkeypatch.setenv(BASE_URL_ENV, f"http://127.0.0.1:{_closed_port()}")
    needs = {"cue-conflict", "labelled"}
    assert provide(None, "imagenet-sample", needs, offline=False, fetch=False) == []
    assert not any(cache.rglob("*.png"))
    offline = provide(None, "imagenet-sample", needs, offline=True, fetch=False)
    assert len(offline) == 2 and all("downloads are off" in p for p in offline), offline
    root = tmp_path / "root"
    assert provide(str(root), "imagenet-sample", needs, offline=False, fetch=False) == [
        f"data directory {root} does not exist. Point --audit-data / VISIONAUDIT_DATA at it, or fetch the data into it: "
        f"python -m visionaudit fetch --all --dest {root}"]
    (root / "cue-conflict").mkdir(parents=True)
    problems = provide(str(root), str(tmp_path / "mine"), needs, offline=False, fetch=False)
    assert len(problems) == 1 and problems[0].startswith(f"labelled images not found at {tmp_path / 'mine'}: point --audit-images")


@pytest.mark.parametrize("rel, why", [("../escape.png", "it holds .."), ("a/../../escape.png", "it holds .."),
                                      ("/tmp/escape.png", "it is absolute"), ("C:/escape.png", "it is absolute"),
                                      ("a\\..\\b.png", "it holds a backslash")])
def test_manifest_paths_outside_the_data_root_are_refused(tmp_path, monkeypatch, rel, why):
    """Issue 23, item 12: through --manifest / VISIONAUDIT_FETCH_MANIFEST, and a manifest handed to fetch()."""
    override = tmp_path / "m.json"
    override.write_text(json.dumps({"edges": {"files": {"ok.png": "0" * 64, rel: "0" * 64}}}))
    monkeypatch.setenv(MANIFEST_ENV, str(override))
    with pytest.raises(DataError) as refused:
        load_manifest()
    assert f"file {rel!r} is refused: {why}" in str(refused.value) and str(override) in str(refused.value)
    dest = tmp_path / "dest"
    with pytest.raises(DataError, match="is refused"):
        fetch("edges", dest, base_url="http://127.0.0.1:9", manifest={"edges": {"files": {rel: "0" * 64}}})
    assert not (tmp_path / "escape.png").exists() and not Path("/tmp/escape.png").exists()


def test_a_data_set_name_that_leaves_the_root_is_refused(tmp_path, monkeypatch, capsys):
    override = tmp_path / "m.json"
    override.write_text(json.dumps({"../up": {"files": {"x.png": "0" * 64}}}))
    assert cli_main(["fetch", "../up", "--dest", str(tmp_path / "d"), "--manifest", str(override)]) != 0  # its code: the exit-code table
    assert "data set name '../up' is refused: it holds .." in capsys.readouterr().err
    assert not (tmp_path / "up").exists()


def test_a_symlink_out_of_the_data_set_is_refused_before_anything_is_written(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "dest" / "edges"
    root.mkdir(parents=True)
    (root / "link").symlink_to(outside, target_is_directory=True)
    manifest = {"edges": {"files": {"a.png": "0" * 64, "link/b.png": "0" * 64}}}
    with pytest.raises(DataError, match=r"file 'link/b.png' is refused: .* through a symlink, outside"):
        fetch("edges", tmp_path / "dest", base_url="http://127.0.0.1:9", manifest=manifest)
    assert list(outside.iterdir()) == [] and not (root / "a.png.part").exists()


@pytest.mark.slow
def test_shipped_manifest_matches_the_real_stimuli(shared_data):
    manifest = load_manifest()
    assert {k: len(manifest[k]["files"]) for k in STIMULI} == {"cue-conflict": 1280, "edges": 160, "filled-silhouettes": 160}
    for name in STIMULI:
        local = {p.relative_to(shared_data / name).as_posix(): sha(p) for p in (shared_data / name).rglob("*.png")}
        assert local == manifest[name]["files"], name
        assert manifest[name]["terms"] == LICENCE


@pytest.mark.slow
def test_shipped_observers_manifest_is_the_upstream_listing_at_the_stimuli_commit(shared_data):
    shipped = json.loads((ROOT / "visionaudit" / "resources" / "texture_vs_shape_raw_manifest.json").read_text())
    assert shipped == json.loads((shared_data / "manifests" / "texture-vs-shape-raw-upstream.json").read_text())
    entry = load_manifest()[OBSERVERS]
    assert len(entry["files"]) == 10 and shipped["commit"] == COMMIT  # the stimuli's pinned commit
    name = "style-transfer-512-nomask-experiment_subject-01_session_1.csv"
    assert file_url(entry, name) == f"https://raw.githubusercontent.com/rgeirhos/texture-vs-shape/{COMMIT}/{OBSERVERS_FOLDER}/{name}"
    # ../shared holds nine of the ten, byte for byte; subject-01 is not there
    local = {p.name: sha(p) for p in (shared_data / OBSERVERS).iterdir()}
    assert len(local) == 9 and name not in local
    assert all(entry["files"][n]["sha256"] == digest for n, digest in local.items())


@pytest.mark.slow
def test_shipped_imagenet_sample_manifest_is_the_upstream_listing(shared_data):
    shipped = json.loads((ROOT / "visionaudit" / "resources" / "imagenet_sample_manifest.json").read_text())
    assert shipped == json.loads((shared_data / "manifests" / "imagenet-sample-upstream.json").read_text())
    entry = load_manifest()[IMAGENET_SAMPLE]
    # One file per ILSVRC-2012 class, named <wnid>_<name> as the labelled-image layout reads it.
    wnids = [line.strip() for line in (shared_data / "imagenet_wnids.txt").read_text().splitlines() if line.strip()]
    assert sorted(name.split("_")[0] for name in entry["files"]) == wnids
    assert sum(f["size"] for f in entry["files"].values()) == 109_576_417  # the README's "110 MB"
    assert file_url(entry, "n01440764_tench.JPEG") == ("https://raw.githubusercontent.com/EliSchwartz/imagenet-sample-images/"
                                                      "bc69043e2862758a1906c6a24a792bb28c6bb2ff/n01440764_tench.JPEG")
    assert "ImageNet terms" in entry["terms"] and "EliSchwartz/imagenet-sample-images" in entry["terms"]
    # The copies in ../shared are resized: none of their hashes is an upstream one, so none can be built from them.
    resized = {sha(p) for p in list((shared_data / "imagenet-sample").iterdir())[:20]}
    assert not resized & {f["sha256"] for f in entry["files"].values()}


@pytest.mark.slow
def test_corrupted_file_is_rejected_and_nothing_valid_looking_is_left(tmp_path, mirror, shared_data, capsys):
    url, manifest = mirror
    dest = tmp_path / "cache"
    result = fetch("cue-conflict", dest, base_url=url, manifest=json.loads(manifest.read_text()))
    err = capsys.readouterr().err
    assert result.rejected == [FILES[2]] and len(result.downloaded) == 3
    assert f"rejected: {FILES[2]} (sha256 " in err and "deleted" in err
    # The set is not in place: it waits, hidden, for the file that failed; no unverified bytes anywhere.
    assert not (dest / "cue-conflict").exists() and not list(dest.rglob("*.part"))
    assert not list(dest.rglob(Path(FILES[2]).name)) and result.path == dest / ".cue-conflict.partial"
    with pytest.raises(DataError, match="cue-conflict stimuli not found"):
        cue_conflict(dest / "cue-conflict")

    # The mirror mended, the next run fetches only that file and puts the set in place.
    (tmp_path / "mirror" / UPSTREAM / FILES[2]).write_bytes((shared_data / "cue-conflict" / FILES[2]).read_bytes())
    again = fetch("cue-conflict", dest, base_url=url, manifest=json.loads(manifest.read_text()))
    assert again.ok and again.downloaded == [FILES[2]] and sorted(again.kept) == sorted(set(FILES) - {FILES[2]})
    assert again.path == dest / "cue-conflict" and not (dest / ".cue-conflict.partial").exists()
    assert len(cue_conflict(dest / "cue-conflict")) == 4
    for rel in FILES:
        assert sha(dest / "cue-conflict" / rel) == sha(shared_data / "cue-conflict" / rel)


@pytest.mark.slow
def test_dropped_connection_mid_file_resumes_with_range(tmp_path, mirror, shared_data, capsys):
    url, manifest = mirror
    (tmp_path / "mirror" / UPSTREAM / FILES[2]).write_bytes((shared_data / "cue-conflict" / FILES[2]).read_bytes())
    path = f"/{UPSTREAM}/{FILES[1]}"
    RangeHandler.drop = {path}
    size = (shared_data / "cue-conflict" / FILES[1]).stat().st_size
    dest = tmp_path / "cache"
    first = fetch("cue-conflict", dest, base_url=url, manifest=json.loads(manifest.read_text()), retries=0)
    assert first.failed == [FILES[1]] and "run the command again to resume" in capsys.readouterr().err
    part = dest / ".cue-conflict.partial" / (FILES[1] + ".part")
    assert part.stat().st_size == size // 2 and not (dest / "cue-conflict").exists()

    second = fetch("cue-conflict", dest, base_url=url, manifest=json.loads(manifest.read_text()))
    assert second.ok and second.downloaded == [FILES[1]]
    assert (path, f"bytes={size // 2}-") in RangeHandler.requests  # resumed, not started over
    assert [r for r in RangeHandler.requests if r[0] == path] == [(path, None), (path, f"bytes={size // 2}-")]
    assert sha(dest / "cue-conflict" / FILES[1]) == sha(shared_data / "cue-conflict" / FILES[1])


def _two_of_everything(tmp_path: Path, shared_data: Path) -> tuple[Path, Path]:
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


@pytest.mark.slow
def test_fetch_all_into_the_cache_from_a_configured_mirror(tmp_path, shared_data, monkeypatch, capsys):
    root, manifest = _two_of_everything(tmp_path, shared_data)
    cache = tmp_path / "cache"
    monkeypatch.setenv("VISIONAUDIT_CACHE", str(cache))
    monkeypatch.setenv(MANIFEST_ENV, str(manifest))
    monkeypatch.delenv("VISIONAUDIT_OFFLINE", raising=False)
    with serving(root) as url:
        monkeypatch.setenv(BASE_URL_ENV, url)
        code = cli_main(["fetch", "--all"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert out.err.count(LICENCE) == 1 and out.err.count("ImageNet terms") == 1  # said once, not per set
    assert out.err.count("Human observers' trial-by-trial decisions") == 1
    for name in (*STIMULI, IMAGENET_SAMPLE, OBSERVERS):
        assert len([p for p in (cache / name).rglob("*") if p.is_file()]) == 2, name
        assert f"{name}: 2 downloaded, 0 already there, 0 rejected, 0 failed -> {cache / name}" in out.out
    assert labelled_images(cache / IMAGENET_SAMPLE).labels == (0, 1)  # tench, goldfish: class indices 0 and 1
    # the observers' files at their place in the stimuli's repository (a mirror keeps its layout)
    assert all(r[0].startswith(f"/{OBSERVERS_FOLDER}/") for r in RangeHandler.requests if r[0].endswith(".csv"))
    assert len(RangeHandler.requests) == 10


def test_manifest_override_replaces_files_and_keeps_the_rest(tmp_path, monkeypatch):
    override = tmp_path / "m.json"
    override.write_text(json.dumps({"edges": {"files": {"a/b.png": "0" * 64}}, "mine": {"files": {"x.png": "1" * 64}}}))
    monkeypatch.setenv(MANIFEST_ENV, str(override))
    manifest = load_manifest()
    assert manifest["edges"]["files"] == {"a/b.png": "0" * 64} and manifest["edges"]["terms"] == LICENCE
    assert file_url(manifest["edges"], "a/b.png") == f"https://raw.githubusercontent.com/rgeirhos/texture-vs-shape/{COMMIT}/stimuli/edges/a/b.png"
    assert len(manifest["cue-conflict"]["files"]) == 1280  # not named in the override: shipped
    assert file_url(manifest["mine"], "x.png", "http://mirror") == "http://mirror/x.png"
    override.write_text("{not json")
    with pytest.raises(DataError, match="cannot read the fetch manifest"):
        load_manifest()


def test_fetch_refuses_when_offline(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VISIONAUDIT_OFFLINE", "1")
    assert cli_main(["fetch", "--all", "--dest", str(tmp_path)]) == 4
    assert "VISIONAUDIT_OFFLINE is set: downloads are off" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


RUN_FILE = """
import os
from pathlib import Path

import pytest

def test_conflict(cue_conflict_images):
    assert len(cue_conflict_images) == 2
    assert cue_conflict_images.root == Path(os.environ["VISIONAUDIT_CACHE"]) / "cue-conflict"

def test_labelled(labelled_images):
    assert labelled_images.labels == (0, 1)  # tench, goldfish

@pytest.mark.parametrize("stimuli", ["edges", "filled-silhouettes"])
def test_shape_only(shape_only_images, stimuli):
    assert len(shape_only_images(stimuli)) == 2
"""


@pytest.fixture
def first_use(suite, tmp_path, shared_data, monkeypatch):
    """A pytest run with no data root: an empty VISIONAUDIT_CACHE, a mirror named by the environment."""
    root, manifest = _two_of_everything(tmp_path, shared_data)
    cache = tmp_path / "cache"
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.delenv("VISIONAUDIT_DATA", raising=False)
    monkeypatch.delenv("VISIONAUDIT_OFFLINE", raising=False)
    monkeypatch.setenv("VISIONAUDIT_CACHE", str(cache))
    monkeypatch.setenv(MANIFEST_ENV, str(manifest))
    suite.makepyfile(test_run=RUN_FILE)
    with serving(root) as url:
        monkeypatch.setenv(BASE_URL_ENV, url)
        yield suite, cache, url


@pytest.mark.slow
def test_a_run_without_a_data_root_fetches_into_the_cache_once_then_runs(first_use):
    suite, cache, _ = first_use
    result = suite.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")
    output = result.stdout.str() + result.stderr.str()
    result.assert_outcomes(passed=4)
    # Once, by the controller: each of the 8 files asked for once although two workers collected.
    assert len(RangeHandler.requests) == 8 and len(set(RangeHandler.requests)) == 8, RangeHandler.requests
    assert said_once(output, LICENCE) and said_once(output, "ImageNet terms of access apply"), output
    assert f"fetching cue-conflict, edges, filled-silhouettes, imagenet-sample into the data cache {cache}" in output
    assert "imagenet-sample: [########################] 2/2 files" in output
    # no .partial left (the lock file that lets two runners share a cache stays)
    assert sorted(p.name for p in cache.iterdir() if p.name != LOCK_FILE) == [*STIMULI, IMAGENET_SAMPLE]

    again = suite.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")
    again.assert_outcomes(passed=4)
    assert len(RangeHandler.requests) == 8 and "fetching" not in again.stdout.str()  # there now: nothing asked for


@pytest.mark.slow
@pytest.mark.parametrize("how, workers", [("option", []), ("variable", ["-n", "2"])])
def test_offline_without_the_data_is_one_clear_error(first_use, monkeypatch, how, workers):
    suite, cache, url = first_use
    if how == "variable":
        monkeypatch.setenv("VISIONAUDIT_OFFLINE", "1")
    result = suite.runpytest_subprocess(*workers, "-p", "no:cacheprovider", *(["--audit-offline"] if how == "option" else []))
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR and RangeHandler.requests == [] and not cache.exists()
    for name, folder in (("cue-conflict", f"/{UPSTREAM}"), ("imagenet-sample", "")):
        message = (f"{name} is not in the data cache {cache} and downloads are off (--audit-offline / VISIONAUDIT_OFFLINE=1). "
                   f"On a machine with internet run: python -m visionaudit fetch {name} --dest {cache}; or download "
                   f"{url}{folder}/<file> for each file listed in visionaudit/resources/")
        assert said_once(output, message), output
    assert "Traceback" not in output and "passed" not in output


@pytest.mark.slow
def test_a_run_that_reads_the_observers_fetches_them_on_first_use_and_names_them_offline(first_use, monkeypatch):
    """The observers' decisions are a data set like the stimuli, but optional for the gate: offline, the run goes
    on, naming them once, and the fixture says why they are absent; online, the controller fetches them once into
    the cache, verified, and the fixture reads them."""
    suite, cache, url = first_use
    suite.makepyfile(test_run="import os\n"
                              "def test_observers(human_observers):\n"
                              "    if os.environ.get('EXPECT_ABSENT'):\n"
                              "        assert 'python -m visionaudit fetch texture-vs-shape-raw' in human_observers['absent']\n"
                              "        return\n"
                              "    assert sorted(human_observers['subjects']) == ['subject-02', 'subject-03']\n"
                              "    assert len(human_observers['images']) == 1280 and human_observers['missing'] == []\n")
    monkeypatch.setenv("EXPECT_ABSENT", "1")
    offline = suite.runpytest_subprocess("-p", "no:cacheprovider", "--audit-offline")
    output = offline.stdout.str() + offline.stderr.str()
    offline.assert_outcomes(passed=1)
    assert RangeHandler.requests == []
    assert said_once(output, f"{OBSERVERS} is not in the data cache {cache} and downloads are off"), output
    assert f"{url}/{OBSERVERS_FOLDER}/<file> for each file listed in visionaudit/resources/texture_vs_shape_raw_manifest.json" in output
    monkeypatch.delenv("EXPECT_ABSENT")
    result = suite.runpytest_subprocess("-p", "no:cacheprovider")
    output = result.stdout.str() + result.stderr.str()
    result.assert_outcomes(passed=1)
    assert f"fetching {OBSERVERS} into the data cache {cache}" in output and len(RangeHandler.requests) == 2
    assert said_once(output, "Human observers' trial-by-trial decisions on the cue-conflict stimuli"), output


def test_a_data_root_the_user_named_is_never_written_to(tmp_path, monkeypatch):
    from visionaudit.data.provision import provide

    monkeypatch.setenv(BASE_URL_ENV, "http://127.0.0.1:9")  # nothing listens: a download would fail loudly
    monkeypatch.setenv("VISIONAUDIT_DATA", str(tmp_path))
    assert provide(None, "imagenet-sample", {"cue-conflict", "labelled"}, offline=False) == [
        f"cue-conflict not found at {tmp_path / 'cue-conflict'}: python -m visionaudit fetch cue-conflict --dest {tmp_path}",
        f"labelled images not found at {tmp_path / 'imagenet-sample'}: python -m visionaudit fetch imagenet-sample --dest {tmp_path}"]
    assert not list(tmp_path.iterdir())


def test_imagenette_offline_is_one_clear_error(suite, tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    suite.makepyfile(test_run="def test_labelled(labelled_images):\n    pass\n")
    result = suite.runpytest_subprocess(f"--audit-data={tmp_path}", "--audit-images=imagenette", "--audit-offline",
                                        "-p", "no:cacheprovider")
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    message = (f"Imagenette not found under {tmp_path / 'imagenette'}: downloads are off (--audit-offline / VISIONAUDIT_OFFLINE=1). "
               "Run once on a machine with internet, or download https://s3.amazonaws.com/fast-ai-imageclas/imagenette2-320.tgz "
               f"and unpack it into {tmp_path / 'imagenette'}/")
    assert said_once(output, message), output
    assert "Traceback" not in output and len(output.splitlines()) < 15, output


def test_two_processes_filling_one_cache_take_turns(tmp_path):
    """The lock beside the set: while one process holds it, another waits instead of sharing its .part files."""
    import multiprocessing
    import time as clock

    from visionaudit.data import fetch as fetch_module

    dest = tmp_path / "cache"
    dest.mkdir()
    lock_path = dest / LOCK_FILE
    ctx = multiprocessing.get_context("fork")
    held = ctx.Event()

    def holder():
        import fcntl

        with open(lock_path, "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            held.set()
            clock.sleep(1.5)

    p = ctx.Process(target=holder)
    p.start()
    held.wait(10)
    start = clock.monotonic()
    seen = []
    original = fetch_module._fetch_unlocked
    try:
        fetch_module._fetch_unlocked = lambda *a, **k: seen.append(clock.monotonic() - start)
        fetch_module.fetch("cue-conflict", dest)
    finally:
        fetch_module._fetch_unlocked = original
        p.join()
    assert seen and seen[0] >= 1.0  # it waited for the holder to finish
