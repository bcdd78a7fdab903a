"""``visionaudit compare``: the --audit-baseline gate between two saved reports, no model loaded."""

from __future__ import annotations

import argparse
import sys

from visionaudit import exit_codes
from visionaudit.errors import VisionAuditError

from .options import (
    add_accept_incomplete_baseline_option,
    add_baseline_options,
    add_config_option,
    empty_option,
)
from .report_files import model_pairs

HELP = "compare two saved reports image by image (the --audit-baseline gate, no model loaded)"


def add_parser(sub: argparse._SubParsersAction) -> None:
    cmp = sub.add_parser("compare", help=HELP,
                         description=HELP + "; exit 1 on a regression or when the verdict is not pass (nothing compared, "
                                     "or OLD is itself not a pass), 4 when they cannot be paired")
    cmp.add_argument("old", metavar="OLD.json", help="the previous release's report")
    cmp.add_argument("new", metavar="NEW.json", help="the candidate's report")
    cmp.add_argument("--model", metavar="NEW_SPEC", help="the new report's model to compare (with --baseline-as)")
    add_baseline_options(cmp.add_argument, report=False, tool="compare")
    add_accept_incomplete_baseline_option(cmp.add_argument)
    cmp.add_argument("--format", choices=["table", "markdown", "json"], default="table",
                     help="table: for a terminal (default); markdown: for a pull request or step summary; json: every "
                          "comparison's numbers, for tools")
    add_config_option(cmp.add_argument, tool="compare")
    cmp.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from visionaudit.config import load_config
    from visionaudit.families.baseline.pairing import read_report, refuse_shard_part
    from visionaudit.report.compare import (
        Unpairable,
        compare_reports,
        render,
    )

    problem = empty_option({"--model": args.model, "--baseline-as": args.baseline_as, "--config": args.config})
    if problem:
        raise VisionAuditError(problem)
    pairs = model_pairs(args, "the new report's model and the old report's")
    config = load_config(args.config, flag="--config") if args.config is not None else None
    old, new = read_report(args.old, "old report"), read_report(args.new, "new report")
    refuse_shard_part(old, f"old report {args.old}")
    refuse_shard_part(new, f"new report {args.new}")
    try:
        comparison = compare_reports(old, new, pairs, config,
                                     unpaired=args.baseline_unpaired, accept_incomplete=args.accept_incomplete_baseline)
    except Unpairable as e:
        print(f"error: {e}", file=sys.stderr)
        return exit_codes.USAGE
    print(render(comparison, args.format))
    return exit_codes.PASS if comparison["verdict"] == "pass" else exit_codes.NOT_PASS
