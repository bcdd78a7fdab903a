"""``python -m visionaudit``: commands that do not need pytest.

One module per command, each with its parser builder (``add_parser``) and its ``run``; the options a
command shares with the pytest run come from visionaudit/cli/options.py.
"""

from __future__ import annotations

import argparse
import sys

from visionaudit.errors import VisionAuditError

from . import (
    compare,
    convert_checkpoint,
    families,
    fetch,
    html,
    merge,
    report,
    shape_bias,
)

COMMANDS = (fetch, convert_checkpoint, shape_bias, report, compare, merge, html, families)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m visionaudit", description="visionaudit commands that do not need pytest")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
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
