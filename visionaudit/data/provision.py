"""Data on first use: what a run needs and does not have is fetched once, before any test runs.

Only the user cache is filled this way (no --audit-data, no $VISIONAUDIT_DATA): a data root the user
named is theirs and is reported, not written to. Imagenette (``--audit-images imagenette``) is
torchvision's download, made here once for any root, as torchvision has always placed it. Offline
(``--audit-offline``, ``VISIONAUDIT_OFFLINE=1``) nothing is downloaded; what is missing is named with the
command to run and the address to fetch it from by hand. The pytest controller calls :func:`provide`
(plugins/data_check.py), so xdist workers never download.
"""

from __future__ import annotations

import sys
from typing import TextIO

from visionaudit.data.fetch import IMAGENET_SAMPLE, by_hand, fetch_all, load_manifest
from visionaudit.data.image_sets import (
    LABELLED,
    data_root,
    imagenette,
    missing_data,
    uses_cache,
)
from visionaudit.data.user_cache import CACHE_ENV, OFFLINE_ENV
from visionaudit.errors import DataError


def _fetch_name(need: str, images: str) -> str | None:
    """The data set that fills ``need``, when one can be fetched."""
    if need == LABELLED:
        return IMAGENET_SAMPLE if images == IMAGENET_SAMPLE else None
    return need


def provide(data: str | None, images: str, needs: set[str], offline: bool, log: TextIO | None = None,
            fetch: bool = True) -> list[str]:
    """Fetch what ``needs`` lacks where the suite may; the problems left, each with its fix (empty: all there).
    ``fetch=False`` (``--collect-only``, a dry run of a command line): nothing is downloaded or read, only looked for;
    the problems are those a run would stop on, but for what it would fetch first."""
    log = log or sys.stderr
    missing = {need for need in needs if missing_data(data, images, {need})}
    if not missing:
        return []
    try:
        root = data_root(data)
    except DataError as e:
        return [str(e)]
    problems = []
    if LABELLED in missing and images == "imagenette":
        missing.discard(LABELLED)
        if fetch:
            problem = _imagenette(root, offline)
            problems += [problem] if problem else []
        elif offline:  # torchvision's download would be off too
            problems += missing_data(data, images, {LABELLED})
    manifest = load_manifest()
    fetchable = {need: name for need in missing if (name := _fetch_name(need, images)) in manifest}
    if not uses_cache(data) or not fetchable:
        return problems + missing_data(data, images, missing)
    if offline:
        return problems + missing_data(data, images, missing - set(fetchable)) + [
            f"{name} is not in the data cache {root} and downloads are off (--audit-offline / {OFFLINE_ENV}=1). "
            f"On a machine with internet run: python -m visionaudit fetch {name} --dest {root}; or download "
            f"{by_hand(name, manifest)} into {root / name}/; or point --audit-data / VISIONAUDIT_DATA at a data "
            "root that holds it" for name in sorted(fetchable.values())]
    if not fetch:  # what the run would fetch into the user cache is not a problem yet
        return problems + missing_data(data, images, missing - set(fetchable))
    print(f"visionaudit: no data root given (--audit-data, VISIONAUDIT_DATA): fetching {', '.join(sorted(fetchable.values()))} "
          f"into the data cache {root} ({CACHE_ENV}), once", file=log)
    results = fetch_all(sorted(fetchable.values()), root, manifest=manifest, log=log)
    unreachable: dict[str, list[str]] = {}  # why -> the data sets that could not be fetched for it: said once
    for name, result in results.items():
        if result.unreachable:
            unreachable.setdefault(result.unreachable, []).append(name)
        elif not result.ok:
            bad = result.rejected + result.failed
            total = len(bad) + len(result.downloaded) + len(result.kept) + len(result.not_tried)
            untried = f", {len(result.not_tried)} not tried" if result.not_tried else ""
            problems.append(f"{name}: {len(bad)} of {total} files could not be fetched into {root}{untried} "
                            f"(first: {(bad or result.not_tried)[0]}); run again to resume "
                            f"(python -m visionaudit fetch {name}), or download {by_hand(name, manifest)} by hand")
    for why, names in unreachable.items():
        sets = ", ".join(names)
        problems.append(f"cannot reach the download server {why}, so {sets} could not be fetched (nothing else was tried). "
                        f"Run on a machine with network access (python -m visionaudit fetch {names[0]} --dest {root} "
                        f"fills the data cache), or point --audit-data (or VISIONAUDIT_DATA) at a folder that holds {sets}")
    return problems + missing_data(data, images, missing - set(fetchable))


def _imagenette(root, offline: bool) -> str | None:
    """Imagenette under ``root/imagenette`` (torchvision's download), or why it is not there."""
    from torchvision.datasets import Imagenette

    url = Imagenette._ARCHIVES["320px"][0]
    folder = root / "imagenette"
    try:
        imagenette(folder, download=not offline)
        return None
    except DataError as e:
        if not offline:
            return str(e)  # the download failed: its error names the archive's URL and the folder
        return (f"Imagenette not found under {folder}: downloads are off (--audit-offline / {OFFLINE_ENV}=1). "
                f"Run once on a machine with internet, or download {url} and unpack it into {folder}/")
