"""``python -m visionaudit``: commands that do not need pytest."""

from __future__ import annotations

import argparse
import sys

from .errors import VisionAuditError


def _fetch(args: argparse.Namespace) -> int:
    from .fetch import BASE_URL, fetch, load_manifest

    manifest = load_manifest(args.manifest)
    names = sorted(manifest) if args.dataset == "all" else [args.dataset]
    ok = True
    for name in names:
        result = fetch(name, args.dest, base_url=args.base_url or BASE_URL, manifest=manifest)
        print(f"{name}: {len(result.downloaded)} downloaded, {len(result.kept)} already there, "
              f"{len(result.rejected)} rejected, {len(result.failed)} failed -> {args.dest}/{name}")
        ok = ok and result.ok
    if not ok:
        print("some files were rejected or failed; run the same command again to retry them", file=sys.stderr)
    return 0 if ok else 1


def _convert(args: argparse.Namespace) -> int:
    from .checkpoints import convert_to_safetensors

    n = convert_to_safetensors(args.src, args.dst, trust_pickle=args.trust_pickle)
    print(f"wrote {n} tensors to {args.dst}")
    return 0


def _shape_bias(args: argparse.Namespace) -> int:
    import json

    from .recording import to_jsonable
    from .shape_bias import shape_bias_from_csv

    # JSON has no NaN: a category without hits reads null, as in the report.
    print(json.dumps(to_jsonable(shape_bias_from_csv(args.decisions).to_dict()), indent=2))
    return 0


def _families(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .families import families, markdown_table, readme_table_problems

    if args.check_readme:
        problems = readme_table_problems(Path(args.check_readme).read_text())
        for p in problems:
            print(f"{args.check_readme}: {p}", file=sys.stderr)
        return 1 if problems else 0
    if args.markdown:
        print(markdown_table())
        return 0
    for name, family in families().items():
        print(f"{name}: {family.gates}\n  key metric: {family.key_metric} ({family.direction}); audits: {family.audit_file}")
        if args.thresholds:
            for key, field in family.thresholds.items():
                print(f"  [audits.{name}] {key}: {field.describe()}" + (f"  -- {field.help}" if field.help else ""))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m visionaudit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    f = sub.add_parser("fetch", help="download the cue-conflict (or shape-only) stimuli, verified by sha256")
    f.add_argument("dataset", choices=["cue-conflict", "edges", "filled-silhouettes", "all"])
    f.add_argument("--dest", default="data", help="data root to fill (default: ./data); point --audit-data at it")
    f.add_argument("--base-url", default=None, help="a mirror of the pinned repository (default: GitHub raw, pinned commit)")
    f.add_argument("--manifest", default=None, help="a sha256 manifest to use instead of the shipped one")
    f.set_defaults(func=_fetch)

    c = sub.add_parser("convert-checkpoint", help="re-save a checkpoint as safetensors")
    c.add_argument("src")
    c.add_argument("dst")
    c.add_argument("--trust-pickle", action="store_true",
                   help="unpickle SRC (can run code it carries): only for files you trust")
    c.set_defaults(func=_convert)
    b = sub.add_parser("shape-bias", help="shape bias from a decisions CSV in the authors' raw-data format")
    b.add_argument("--decisions", required=True, metavar="FILE.csv",
                   help="columns subj,session,trial,rt,object_response,category,condition,imagename")
    b.set_defaults(func=_shape_bias)

    fam = sub.add_parser("families", help="the registered audit families, their key metrics and threshold schemas")
    fam.add_argument("--thresholds", action="store_true", help="list every threshold key with its type, range and allowed values")
    fam.add_argument("--markdown", action="store_true", help="print the README's family table")
    fam.add_argument("--check-readme", metavar="README.md", help="exit 1 when the README's family table does not match the registry")
    fam.set_defaults(func=_families)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except VisionAuditError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; run the same command again to resume", file=sys.stderr)
        return 130
