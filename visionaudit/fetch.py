"""Download the Geirhos et al. stimuli from their pinned commit, verified against a shipped manifest.

Files already present with the right sha256 are kept; a partial download (``*.part``) resumes with
an HTTP Range request; a file whose bytes do not match the manifest is rejected (deleted) and named.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Callable, TextIO

from .checkpoints import sha256_file
from .errors import DataError

COMMIT = "ccd0c01d42c0a8a834e90ec141e7f24fa915dc23"
BASE_URL = f"https://raw.githubusercontent.com/rgeirhos/texture-vs-shape/{COMMIT}"
LICENCE = (
    "Stimuli by Robert Geirhos, Patricia Rubisch, Claudio Michaelis, Matthias Bethge, Felix A. Wichmann and "
    "Wieland Brendel, 'ImageNet-trained CNNs are biased towards texture; increasing shape bias improves "
    "accuracy and robustness', ICLR 2019 (github.com/rgeirhos/texture-vs-shape), licensed CC BY 4.0 "
    "(https://creativecommons.org/licenses/by/4.0/): attribute the authors wherever you use them."
)
MAX_FAILURES_IN_A_ROW = 10
MANIFEST_RESOURCE = "resources/stimuli_manifest.json"


def load_manifest(path: str | Path | None = None) -> dict:
    """``{dataset: {"upstream": folder, "files": {relative path: sha256}}}``."""
    text = Path(path).read_text() if path else resources.files("visionaudit").joinpath(MANIFEST_RESOURCE).read_text()
    return json.loads(text)


def build_manifest(roots: dict[str, tuple[Path, str]]) -> dict:
    """Manifest from local copies: ``{dataset: (local folder, upstream folder)}``."""
    out = {}
    for name, (root, upstream) in roots.items():
        files = {p.relative_to(root).as_posix(): sha256_file(p) for p in sorted(root.rglob("*.png"))}
        out[name] = {"upstream": upstream, "files": files}
    return out


@dataclass
class FetchResult:
    downloaded: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.rejected and not self.failed


def _download(url: str, part: Path, timeout: float) -> None:
    """Append the rest of ``url`` to ``part``, resuming from its current size when the server allows."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # nothing left to send: the part is complete
            return
        raise
    with response:
        mode = "ab" if have and response.status == 206 else "wb"  # 200: the server ignored Range
        with open(part, mode) as f:
            while chunk := response.read(1 << 16):
                f.write(chunk)


def fetch(
    dataset: str,
    dest: str | Path,
    base_url: str = BASE_URL,
    manifest: dict | None = None,
    log: TextIO | None = None,
    timeout: float = 30.0,
    retries: int = 2,
    progress_every: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
) -> FetchResult:
    """Fetch ``dataset`` into ``dest/<dataset>``; returns what was downloaded, kept, rejected or failed."""
    log = log or sys.stderr
    manifest = manifest or load_manifest()
    if dataset not in manifest:
        raise DataError(f"unknown data set {dataset!r}; fetchable: {', '.join(sorted(manifest))}")
    entry = manifest[dataset]
    root = Path(dest).expanduser() / dataset
    root.mkdir(parents=True, exist_ok=True)
    print(LICENCE, file=log)
    files = entry["files"]
    result = FetchResult()
    last = 0.0
    failed_in_a_row = 0
    for n, (rel, expected) in enumerate(sorted(files.items()), 1):
        target = root / rel
        if failed_in_a_row >= MAX_FAILURES_IN_A_ROW:
            result.failed.append(rel)  # the server is unreachable: do not wait out a timeout per file
            continue
        if target.is_file() and sha256_file(target) == expected:
            result.kept.append(rel)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            part = target.with_name(target.name + ".part")
            url = f"{base_url.rstrip('/')}/{entry['upstream']}/{rel}"
            error = None
            for _attempt in range(retries + 1):
                try:
                    _download(url, part, timeout)
                    error = None
                    break
                except (urllib.error.URLError, OSError) as e:
                    error = e
            failed_in_a_row = failed_in_a_row + 1 if error is not None else 0
            if error is not None:
                result.failed.append(rel)
                if failed_in_a_row == MAX_FAILURES_IN_A_ROW:
                    print(f"  {failed_in_a_row} downloads failed in a row: giving up on the rest", file=log)
                print(f"  failed: {rel} ({error}); run the command again to resume", file=log)
            else:
                digest = hashlib.sha256(part.read_bytes()).hexdigest()
                if digest == expected:
                    part.replace(target)
                    result.downloaded.append(rel)
                else:
                    part.unlink()
                    result.rejected.append(rel)
                    print(f"  rejected: {rel} (sha256 {digest[:12]}..., manifest says {expected[:12]}...); deleted", file=log)
        now = clock()
        if now - last >= progress_every or n == len(files):
            last = now
            print(f"  {dataset}: {n}/{len(files)} files ({len(result.downloaded)} downloaded, "
                  f"{len(result.kept)} already there, {len(result.rejected) + len(result.failed)} bad)", file=log)
    return result
