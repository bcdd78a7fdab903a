"""``visionaudit report``: rebuild the report of a killed run from its journal."""

from __future__ import annotations

import argparse

from visionaudit import exit_codes
from visionaudit.errors import VisionAuditError

HELP = "rebuild the report of a run that was killed, from its journal"
DESCRIPTION = HELP + "; exit 1 when its verdict is not pass (a killed run's is incomplete), 4 when the journal is unreadable"


def add_parser(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("report", help=HELP, description=DESCRIPTION)
    r.add_argument("--from-journal", required=True, metavar="PATH.journal.jsonl",
                   help="the journal written beside --audit-json PATH while the run went on")
    r.add_argument("-o", "--output", default=None, help="where to write the report (default: PATH, the journal's report path)")
    r.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from visionaudit.files import write_atomically
    from visionaudit.report.journal import rebuild
    from visionaudit.report.summaries import terminal_lines

    journal = Path(args.from_journal)
    if args.output:
        out = Path(args.output)
    elif journal.name.endswith(".journal.jsonl") and journal.name != ".journal.jsonl":
        out = journal.with_name(journal.name.removesuffix(".journal.jsonl"))
    else:
        raise VisionAuditError(f"{journal} is not named REPORT.journal.jsonl; say where the report goes with -o PATH")
    data = rebuild(journal)
    write_atomically(out, data)
    for line in terminal_lines(data):
        print(line)
    print(f"report rebuilt from {journal}: {out}")
    return exit_codes.for_verdict(data["verdict"])  # like merge: a report that is not pass fails the step
