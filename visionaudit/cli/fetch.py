"""``visionaudit fetch``: download the data sets, verified by sha256."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from visionaudit import exit_codes
from visionaudit.errors import VisionAuditError

HELP = "download the stimuli, the human observers' decisions and the labelled ImageNet sample, verified by sha256"


def add_parser(sub: argparse._SubParsersAction) -> None:
    f = sub.add_parser("fetch", help=HELP, description=HELP)
    f.add_argument("dataset", nargs="?", help="cue-conflict, edges, filled-silhouettes, texture-vs-shape-raw or imagenet-sample")
    f.add_argument("--all", action="store_true", help="every data set (about 249 MB)")
    f.add_argument("--dest", default=None,
                   help="data root to fill (default: the user cache, $VISIONAUDIT_CACHE, which runs use when no "
                        "data root is given)")
    f.add_argument("--base-url", default=None,
                   help="a mirror of the pinned repositories (default: $VISIONAUDIT_FETCH_BASE_URL, else GitHub raw at the "
                        "pinned commits)")
    f.add_argument("--manifest", default=None,
                   help="a JSON manifest whose data sets replace the shipped ones (default: $VISIONAUDIT_FETCH_MANIFEST)")
    f.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from visionaudit.data.fetch import fetch_all, load_manifest
    from visionaudit.data.user_cache import OFFLINE_ENV, cache_dir, offline

    if offline():
        raise VisionAuditError(f"{OFFLINE_ENV} is set: downloads are off. Unset it to fetch, on a machine with internet")
    if bool(args.all) == bool(args.dataset):
        raise VisionAuditError("name one data set to fetch, or --all")
    manifest = load_manifest(args.manifest)
    names = sorted(manifest) if args.all or args.dataset == "all" else [args.dataset]
    unknown = [n for n in names if n not in manifest]
    if unknown:
        raise VisionAuditError(f"unknown data set {unknown[0]!r}; fetchable: {', '.join(sorted(manifest))}")
    dest = Path(args.dest).expanduser() if args.dest else cache_dir()
    results = fetch_all(names, dest, base_url=args.base_url, manifest=manifest)
    for name, result in results.items():
        print(f"{name}: {len(result.downloaded)} downloaded, {len(result.kept)} already there, "
              f"{len(result.rejected)} rejected, {len(result.failed)} failed"
              + (f", {len(result.not_tried)} "
                 "not tried" if result.not_tried else "") + (f" -> {result.path}" if result.path else ""))
    unreachable = sorted({r.unreachable for r in results.values() if r.unreachable})
    if unreachable:
        print(f"cannot reach the download server {'; '.join(unreachable)}: nothing else was tried. Run this command on a "
              "machine with network access (or give --base-url a mirror you can reach), or point a run's --audit-data "
              "(or VISIONAUDIT_DATA) at a folder that already holds the data", file=sys.stderr)
        return exit_codes.USAGE  # the data cannot be had from here: the set-up's problem, as missing data is a run's
    if not all(r.ok for r in results.values()):
        print("some files were rejected or failed, and their data sets were not put in place; run the same command "
              "again to retry them (verified files are kept)", file=sys.stderr)
        return exit_codes.NOT_PASS  # a download that may succeed when retried
    print(f"data root: {dest} (the default when --audit-data and VISIONAUDIT_DATA are not given)"
          if not args.dest else f"data root: {dest}; point --audit-data or VISIONAUDIT_DATA at it")
    return 0
