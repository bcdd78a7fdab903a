"""``visionaudit merge``: the shards' partial reports joined into the unsharded run's report."""

from __future__ import annotations

import argparse
import sys

from visionaudit import exit_codes

from .report_files import read_json

HELP = "join the partial reports of a sharded run (--audit-shard I/N) into the unsharded run's report"


def add_parser(sub: argparse._SubParsersAction) -> None:
    m = sub.add_parser("merge", help=HELP,
                       description=HELP + ", every statistic recomputed from all images; exit 1 when its verdict is not "
                                          "pass, 4 when the parts are not the shards of one run")
    m.add_argument("parts", nargs="+", metavar="PART.json", help="the N shards' reports, in any order")
    m.add_argument("-o", "--output", required=True, metavar="REPORT.json", help="the merged report to write")
    m.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from visionaudit.errors import VisionAuditError
    from visionaudit.files import output_problem, write_atomically
    from visionaudit.report.merge import Unmergeable, merge_reports
    from visionaudit.report.summaries import terminal_lines

    problem = output_problem(args.output, "-o/--output", "report.json")  # before the merge: not a traceback after it
    if problem:
        raise VisionAuditError(problem)
    parts = [read_json(path) for path in args.parts]
    try:
        report = merge_reports(parts, args.parts)
    except Unmergeable as e:
        print(f"error: {e}", file=sys.stderr)
        return exit_codes.USAGE
    write_atomically(Path(args.output), report)
    for note in report["run"].get("notes") or []:  # what the parts' runs and the merge said (run.notes), as a run prints them
        print(f"note: {note}")
    for line in terminal_lines(report):
        print(line)
    print(f"merged {len(parts)} shards: {args.output}")
    return exit_codes.for_verdict(report["verdict"])
