"""Download the data sets from their pinned upstream repositories, verified against manifests shipped in
the package: the Geirhos et al. stimuli (cue-conflict, edges, filled-silhouettes; CC BY 4.0) and the
labelled natural-image sample (imagenet-sample: one ImageNet image per class; ImageNet terms), and the human
observers' decisions on the cue-conflict stimuli (texture-vs-shape-raw, from the stimuli's repository and commit).

Files already present with the right sha256 are kept; a partial download (``*.part``) resumes with an
HTTP Range request; a file whose bytes do not match the manifest is rejected (deleted) and named. A data
set that is not there yet is assembled in a hidden ``.<name>.partial`` folder and renamed into place only
when every file is verified, so a failed or interrupted download never leaves a folder that looks valid.

Overrides (tests, mirrors, air-gapped copies): ``VISIONAUDIT_FETCH_BASE_URL`` (or ``--base-url``) replaces
each repository's raw root, files keeping their paths under it; ``VISIONAUDIT_FETCH_MANIFEST`` (or
``--manifest``) names a JSON file whose data sets replace the shipped entries of the same name.
"""

from __future__ import annotations

import http.client
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Callable, TextIO

from visionaudit.errors import DataError
from visionaudit.files import sha256_file

COMMIT = "ccd0c01d42c0a8a834e90ec141e7f24fa915dc23"
BASE_URL = f"https://raw.githubusercontent.com/rgeirhos/texture-vs-shape/{COMMIT}"
LICENCE = (
    "Stimuli by Robert Geirhos, Patricia Rubisch, Claudio Michaelis, Matthias Bethge, Felix A. Wichmann and "
    "Wieland Brendel, 'ImageNet-trained CNNs are biased towards texture; increasing shape bias improves "
    "accuracy and robustness', ICLR 2019 (github.com/rgeirhos/texture-vs-shape), licensed CC BY 4.0 "
    "(https://creativecommons.org/licenses/by/4.0/): attribute the authors wherever you use them."
)
IMAGENET_SAMPLE = "imagenet-sample"
OBSERVERS = "texture-vs-shape-raw"  # the human observers' decisions on the cue-conflict stimuli
STIMULI = ("cue-conflict", "edges", "filled-silhouettes")
MAX_FAILURES_IN_A_ROW = 10
MANIFEST_RESOURCE = "resources/stimuli_manifest.json"
IMAGENET_MANIFEST_RESOURCE = "resources/imagenet_sample_manifest.json"  # a verbatim copy of the upstream listing
OBSERVERS_MANIFEST_RESOURCE = "resources/texture_vs_shape_raw_manifest.json"  # ditto
BASE_URL_ENV = "VISIONAUDIT_FETCH_BASE_URL"
MANIFEST_ENV = "VISIONAUDIT_FETCH_MANIFEST"


def imagenet_terms(source: str, commit: str) -> str:
    return (f"ImageNet images from github.com/{source.removeprefix('github.com/')} (commit {commit[:12]}), one per "
            "ILSVRC-2012 class. ImageNet terms of access apply: non-commercial research and educational use only "
            "(https://image-net.org/download.php); do not redistribute them.")


def _shipped_imagenet_sample() -> dict:
    upstream = json.loads(resources.files("visionaudit").joinpath(IMAGENET_MANIFEST_RESOURCE).read_text())
    return {"upstream": "", "base_url": upstream["raw_url"].format(commit=upstream["commit"], name="").rstrip("/"),
            "terms": imagenet_terms(upstream["source"], upstream["commit"]),
            "files": {name: {"sha256": f["sha256"], "size": f["size"]} for name, f in upstream["files"].items()}}


def observers_terms(source: str, commit: str, folder: str) -> str:
    return (f"Human observers' trial-by-trial decisions on the cue-conflict stimuli, from github.com/"
            f"{source.removeprefix('github.com/')} (commit {commit[:12]}, {folder}): Geirhos et al., ICLR 2019. The "
            "repository's CC BY 4.0 licence names the stimuli; cite the paper wherever you use these decisions.")


def _shipped_observers() -> dict:
    upstream = json.loads(resources.files("visionaudit").joinpath(OBSERVERS_MANIFEST_RESOURCE).read_text())
    # The repository's raw root, the folder as the set's upstream: a mirror (--base-url) keeps the repository's layout.
    base = upstream["raw_url"].format(commit=upstream["commit"], folder="", name="").rstrip("/")
    return {"upstream": upstream["folder"], "base_url": base,
            "terms": observers_terms(upstream["source"], upstream["commit"], upstream["folder"]),
            "files": {name: {"sha256": f["sha256"], "size": f["size"]} for name, f in upstream["files"].items()}}


def load_manifest(path: str | Path | None = None) -> dict:
    """``{dataset: {"upstream": folder, "files": {relative path: sha256 or {"sha256", "size"}}, "base_url", "terms"}}``:
    the shipped manifests, with the data sets of ``path`` (else ``$VISIONAUDIT_FETCH_MANIFEST``) replacing theirs."""
    shipped = json.loads(resources.files("visionaudit").joinpath(MANIFEST_RESOURCE).read_text())
    out = {name: {"base_url": BASE_URL, "terms": LICENCE, **entry} for name, entry in shipped.items()}
    out[IMAGENET_SAMPLE] = _shipped_imagenet_sample()
    out[OBSERVERS] = _shipped_observers()
    path = path or os.environ.get(MANIFEST_ENV)
    if path:
        try:
            override = json.loads(Path(path).expanduser().read_text())
        except (OSError, ValueError) as e:
            raise DataError(f"cannot read the fetch manifest {path} ({e}); {MANIFEST_ENV} / --manifest must name a JSON "
                            '{"<data set>": {"upstream": folder, "files": {path: sha256}}}') from None
        for name, entry in override.items():
            if not isinstance(entry, dict) or not isinstance(entry.get("files"), dict):
                raise DataError(f'{path}: data set {name!r} needs "files": {{relative path: sha256}}')
            check_paths(name, entry["files"], path)
            # Files replace the shipped set's; the folder, address and terms stay unless the file names its own.
            out[name] = {**out.get(name, {"base_url": None, "terms": None, "upstream": ""}), **entry}
    return out


def _outside(rel: str) -> str | None:
    """Why the manifest path ``rel`` could land outside its data set's folder, or None when it cannot."""
    if not rel or not isinstance(rel, str):
        return "it is empty"
    if "\\" in rel:
        return "it holds a backslash (write paths with /)"
    pure = PurePosixPath(rel)
    if pure.is_absolute() or PureWindowsPath(rel).is_absolute() or PureWindowsPath(rel).drive:
        return "it is absolute"
    if ".." in pure.parts:
        return "it holds .."
    return None


def check_paths(name: str, files: dict, source: str | Path) -> None:
    """A manifest from outside the package writes where its paths say: each must stay inside the data set's folder
    (relative, no ``..``), and the data set's name must be one plain folder name."""
    why = _outside(name) or ("it holds a folder separator" if "/" in name else None) or ("it is ." if name == "." else None)
    if why:
        raise DataError(f"{source}: data set name {name!r} is refused: {why}; a data set is one folder under the data root")
    for rel in files:
        why = _outside(rel)
        if why:
            raise DataError(f"{source}: data set {name!r}, file {rel!r} is refused: {why}; manifest paths are relative "
                            "to the data set's folder and stay inside it")


def _inside(root: Path, target: Path, dataset: str, rel: str) -> None:
    """Refuse ``target`` when a symlink on its way (a folder or the file itself) leads out of the data set's ``root``."""
    real_root = root.resolve()
    real = target.resolve()
    if real != real_root and real_root not in real.parents:
        raise DataError(f"data set {dataset!r}, file {rel!r} is refused: {target} leads to {real} through a symlink, outside "
                        f"{real_root}; remove the symlink or fetch into another --dest")


def file_url(entry: dict, rel: str, base_url: str | None = None) -> str:
    """Where ``rel`` of a manifest entry is downloaded from: the base (argument, else $VISIONAUDIT_FETCH_BASE_URL,
    else the data set's pinned repository), the set's folder in that repository, the file's path."""
    base = (base_url or os.environ.get(BASE_URL_ENV) or entry.get("base_url") or "").rstrip("/")
    if not base:
        raise DataError(f"no download address for {rel}: set {BASE_URL_ENV} or pass --base-url")
    return "/".join(part for part in (base, entry.get("upstream", "").strip("/"), rel) if part)


def _expected(value: str | dict) -> tuple[str, int | None]:
    return (value, None) if isinstance(value, str) else (value["sha256"], value.get("size"))


@dataclass
class FetchResult:
    downloaded: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    not_tried: list[str] = field(default_factory=list)  # left alone once the server was unreachable or kept failing
    unreachable: str | None = None  # "HOST (why)": no answer at all, so nothing else was tried
    path: Path | None = None  # where the set is (complete) or is being assembled (not complete)
    bytes: int = 0

    @property
    def ok(self) -> bool:
        return not self.rejected and not self.failed and not self.not_tried and self.unreachable is None


def _download(url: str, part: Path, timeout: float) -> int:
    """Append the rest of ``url`` to ``part``, resuming from its current size when the server allows; the bytes written."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # nothing left to send: the part is complete
            return 0
        raise
    written = 0
    with response:
        mode = "ab" if have and response.status == 206 else "wb"  # 200: the server ignored Range
        length = response.headers.get("Content-Length")
        with open(part, mode) as f:
            while chunk := response.read(1 << 16):
                f.write(chunk)
                written += len(chunk)
    # read(n) ends quietly when the connection drops: the bytes so far stay in the .part for the next try.
    if length is not None and written < int(length):
        raise http.client.IncompleteRead(b"", int(length) - written)
    return written


class _Progress:
    """A progress bar redrawn in place on a terminal, a line every ``every`` seconds elsewhere (CI logs)."""

    def __init__(self, name: str, n_files: int, total_bytes: int | None, log: TextIO, every: float,
                 clock: Callable[[], float]) -> None:
        self.name, self.n_files, self.total_bytes = name, n_files, total_bytes
        self.log, self.every, self.clock = log, every, clock
        self.tty = bool(getattr(log, "isatty", lambda: False)())
        self.start = self.last = clock()
        self.drawn = False

    def note(self, line: str) -> None:
        if self.drawn and self.tty:
            self.log.write("\n")
        self.drawn = False
        print(line, file=self.log)

    def update(self, n: int, result: FetchResult) -> None:
        now = self.clock()
        final = n == self.n_files
        if not final and now - self.last < (0.2 if self.tty else self.every):
            return
        self.last = now
        seconds = max(now - self.start, 1e-6)
        rate = result.bytes / seconds
        width = 24
        filled = int(width * n / max(self.n_files, 1))
        text = (f"  {self.name}: [{'#' * filled}{'-' * (width - filled)}] {n}/{self.n_files} files, "
                f"{result.bytes / 1e6:.1f}" + (f" of {self.total_bytes / 1e6:.1f}" if self.total_bytes else "") + " MB")
        if result.bytes and not final:
            text += f", {rate / 1e6:.1f} MB/s"
            left = ((self.total_bytes - result.bytes) / rate if self.total_bytes and rate
                    else (self.n_files - n) * seconds / max(n, 1))
            text += f", {max(left, 0):.0f} s left"
        bad = len(result.rejected) + len(result.failed)
        text += f" ({len(result.downloaded)} downloaded, {len(result.kept)} already there, {bad} bad)"
        if self.tty:
            self.log.write("\r" + text + ("\n" if final else ""))
            self.log.flush()
            self.drawn = not final
        else:
            print(text, file=self.log)


def _unreachable(error: Exception) -> bool:
    """No answer at all (no route, refused, timed out), as opposed to a server that answered badly."""
    return isinstance(error, urllib.error.URLError) and not isinstance(error, urllib.error.HTTPError)


LOCK_FILE = ".visionaudit-fetch.lock"


def fetch(dataset: str, dest: str | Path, **options) -> FetchResult:
    """Fetch ``dataset`` into ``dest/<dataset>``; returns what was downloaded, kept, rejected or failed.

    Options as :func:`_fetch_unlocked`. Processes filling the same cache (runners sharing a host) take
    turns through a lock file in ``dest`` (``LOCK_FILE``): the second finds the set in place instead of sharing
    the first one's ``.part`` files."""
    folder = Path(dest).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK_FILE, "a") as lock:
        try:
            import fcntl
        except ImportError:  # not on Windows: one process per cache there
            fcntl = None
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return _fetch_unlocked(dataset, dest, **options)
        finally:
            if fcntl is not None:
                fcntl.flock(lock, fcntl.LOCK_UN)


def _fetch_unlocked(
    dataset: str,
    dest: str | Path,
    base_url: str | None = None,
    manifest: dict | None = None,
    log: TextIO | None = None,
    timeout: float = 30.0,
    retries: int = 2,
    progress_every: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    say_terms: bool = True,
) -> FetchResult:
    """:func:`fetch` without the lock."""
    log = log or sys.stderr
    manifest = manifest or load_manifest()
    if dataset not in manifest:
        raise DataError(f"unknown data set {dataset!r}; fetchable: {', '.join(sorted(manifest))}")
    entry = manifest[dataset]
    check_paths(dataset, entry["files"], "the fetch manifest")
    final = Path(dest).expanduser() / dataset
    # A set already there is checked in place; a new one is assembled aside and moved in when complete.
    root = final if final.is_dir() else final.with_name(f".{dataset}.partial")
    root.mkdir(parents=True, exist_ok=True)
    if say_terms and entry.get("terms"):
        print(entry["terms"], file=log)
    files = {rel: _expected(v) for rel, v in entry["files"].items()}
    sizes = [size for _, size in files.values()]
    result = FetchResult(path=root)
    bar = _Progress(dataset, len(files), sum(sizes) if sizes and None not in sizes else None, log, progress_every, clock)
    failed_in_a_row = 0
    ordered = sorted(files.items())
    for rel, _ in ordered:  # every path, before anything is written
        _inside(root, root / rel, dataset, rel)
    for n, (rel, (expected, _size)) in enumerate(ordered, 1):
        target = root / rel
        if target.is_file() and sha256_file(target) == expected:
            result.kept.append(rel)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            part = target.with_name(target.name + ".part")
            url = file_url(entry, rel, base_url)
            error = None
            for _attempt in range(retries + 1):
                try:
                    result.bytes += _download(url, part, timeout)
                    error = None
                    break
                except (urllib.error.URLError, OSError, http.client.HTTPException) as e:  # a dropped connection too
                    error = e
            failed_in_a_row = failed_in_a_row + 1 if error is not None else 0
            if error is not None and _unreachable(error) and not result.downloaded:
                # No answer at all: every other file would wait out the same timeout. Stop, and say it once.
                result.unreachable = f"{urllib.parse.urlsplit(url).netloc or url} ({getattr(error, 'reason', error)})"
                result.failed.append(rel)
                result.not_tried = [r for r, _ in ordered[n:]]
                bar.note(f"  {dataset}: cannot reach {result.unreachable}; stopped after the first download, "
                         f"{len(result.not_tried)} file(s) not tried")
                break
            if error is not None:
                result.failed.append(rel)
                bar.note(f"  failed: {rel} from {url} ({error}); run the command again to resume")
                if failed_in_a_row >= MAX_FAILURES_IN_A_ROW:
                    result.not_tried = [r for r, _ in ordered[n:]]
                    bar.note(f"  {failed_in_a_row} download(s) failed in a row: giving up on the rest of {dataset} "
                             f"({len(result.not_tried)} file(s) not tried)")
                    break
            else:
                digest = sha256_file(part)
                if digest == expected:
                    part.replace(target)
                    result.downloaded.append(rel)
                else:
                    part.unlink()
                    result.rejected.append(rel)
                    bar.note(f"  rejected: {rel} (sha256 {digest[:12]}..., manifest says {expected[:12]}...); deleted")
        bar.update(n, result)
    if result.ok and root != final:
        root.replace(final)
        result.path = final
    return result


def fetch_all(names: list[str], dest: str | Path, base_url: str | None = None, manifest: dict | None = None,
              log: TextIO | None = None, **kwargs) -> dict[str, FetchResult]:
    """Fetch several data sets, each set's terms said once (the three stimulus sets share theirs)."""
    log = log or sys.stderr
    manifest = manifest or load_manifest()
    said: set[str] = set()
    out: dict[str, FetchResult] = {}
    unreachable: dict[str, str] = {}  # host -> why, once one set found it so: later sets from it are not tried
    for name in names:
        host = urllib.parse.urlsplit(file_url(manifest[name], "", base_url)).netloc if name in manifest else ""
        if host in unreachable:
            out[name] = FetchResult(not_tried=sorted(manifest[name]["files"]), unreachable=unreachable[host])
            continue
        terms = manifest.get(name, {}).get("terms")
        if terms and terms not in said:
            said.add(terms)
            print(terms, file=log)
        out[name] = fetch(name, dest, base_url=base_url, manifest=manifest, log=log, say_terms=False, **kwargs)
        if out[name].unreachable:
            unreachable[host] = out[name].unreachable
    return out


def by_hand(dataset: str, manifest: dict | None = None) -> str:
    """Where to fetch ``dataset`` by hand: its download folder and the manifest its files are checked against."""
    manifest = manifest or load_manifest()
    entry = manifest[dataset]
    folder = file_url(entry, "").rstrip("/")
    listing = {IMAGENET_SAMPLE: IMAGENET_MANIFEST_RESOURCE,
               OBSERVERS: OBSERVERS_MANIFEST_RESOURCE}.get(dataset, MANIFEST_RESOURCE)
    return f"{folder}/<file> for each file listed in visionaudit/{listing}"
