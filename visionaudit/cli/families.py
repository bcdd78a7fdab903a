"""``visionaudit families``: the registered audit families, their key metrics and threshold schemas."""

from __future__ import annotations

import argparse
import json
import sys

HELP = "the registered audit families, their key metrics and threshold schemas"


def add_parser(sub: argparse._SubParsersAction) -> None:
    fam = sub.add_parser("families", help=HELP, description=HELP)
    fam.add_argument("--thresholds", action="store_true", help="list every threshold key with its type, range and allowed values")
    fam.add_argument("--markdown", action="store_true", help="print the README's family table")
    fam.add_argument("--check-readme", metavar="README.md",
                     help="exit 1 when the README's family table does not match the registry")
    fam.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from visionaudit.errors import VisionAuditError
    from visionaudit.families.registry import (
        families,
        markdown_table,
        readme_table_problems,
    )

    if args.check_readme:
        try:
            text = Path(args.check_readme).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise VisionAuditError(f"--check-readme {args.check_readme} cannot be read ({getattr(e, 'strerror', None) or e}); "
                                   "give the README.md that holds the family table") from None
        problems = readme_table_problems(text)
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
                default = f", default {json.dumps(field.default)}" if field.has_default else ", no default"
                print(f"  [audits.{name}] {key}: {field.describe()}{default}" + (f"  -- {field.help}" if field.help else ""))
    return 0
