"""``visionaudit report``: rebuild the report of a killed run from its journal."""

from __future__ import annotations

import argparse

from visionaudit import exit_codes
from visionaudit.errors import VisionAuditError

from .options import empty_option

HELP = "rebuild the report of a run that was killed, from its journal (removed once written to its own report path)"
DESCRIPTION = HELP + ("; with -o elsewhere the journal is kept beside its report path; exit 1 when its verdict is not pass (a "
                      "killed run's is incomplete), 4 when the journal is unreadable")


def add_parser(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("report", help=HELP, description=DESCRIPTION)
    r.add_argument("--from-journal", required=True, metavar="PATH.journal.jsonl",
                   help="the journal written beside --audit-json PATH while the run went on")
    r.add_argument("-o", "--output", default=None, help="where to write the report (default: PATH, the journal's report path)")
    r.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from visionaudit.files import write_atomically
    from visionaudit.report.journal import rebuild, report_instead
    from visionaudit.report.run_lock import ReportInUse, acquire, holder_text, lock_path
    from visionaudit.report.summaries import terminal_lines

    problem = empty_option({"--from-journal": args.from_journal}, required={"--from-journal"})
    if problem:  # not the working directory, "not named REPORT.journal.jsonl"
        raise VisionAuditError(problem)
    journal = Path(args.from_journal)
    if (said := report_instead(journal)) is not None:  # before the name's rule, whose fix (-o) would not be one
        raise VisionAuditError(said)
    own = journal.with_name(journal.name.removesuffix(".journal.jsonl")) if (
        journal.name.endswith(".journal.jsonl") and journal.name != ".journal.jsonl") else None
    if args.output:
        out = Path(args.output)
    elif own is not None:
        out = own
    else:
        raise VisionAuditError(f"{journal} is not named REPORT.journal.jsonl; say where the report goes with -o PATH")
    # Removed only once rebuilt to its own report path: rebuilt elsewhere (-o), REPORT still holds an earlier
    # run's report, and the journal left beside it is what tells the next run on REPORT that the last one was killed.
    removable = own is not None and out.resolve() == own.resolve()
    lock = None
    try:  # the run that writes this journal holds its report's lock while it lives: its journal is not a killed run's
        if own is not None and journal.exists():
            lock = acquire(own, "visionaudit report --from-journal")
    except ReportInUse as e:
        raise VisionAuditError(f"{journal} is the journal of a run still going ({holder_text(e.holder)}), which "
                               "writes its own report when it ends; rebuild a report only from a killed run's journal") from None
    except OSError as e:  # a folder this user cannot write (a read-only CI artifact): rebuild, but leave the journal
        kept = f"the journal is kept: its lock {lock_path(own)} cannot be taken ({e.strerror})"
        removable = False
    else:
        kept = f"the journal is kept: its report path {own} was not written (-o)" if own is not None else \
            "the journal is kept (it has no report path of its own and no run looks at it: remove it by hand)"
    try:
        data = rebuild(journal)
        try:
            write_atomically(out, data)
        except OSError as e:
            raise VisionAuditError(f"cannot write the report {out}: {e.strerror or e}; give -o PATH in a folder you "
                                   f"can write to (the journal {journal} is kept)") from None
        if removable:
            # As a run's own journal once its report is written: the report holds all it held, and a journal left
            # beside REPORT would be taken by the next run on REPORT for a killed run's, not yet rebuilt.
            try:
                journal.unlink(missing_ok=True)
                kept = ""
            except OSError as e:
                kept = f"the journal is kept ({e.strerror}): the report holds all it held; remove it by hand"
    finally:
        if lock is not None:
            try:
                lock.release()
            except OSError:
                pass  # its lock file is left: a kernel lock, it never blocks the next run
    for line in terminal_lines(data):
        print(line)
    if kept:
        print(f"report rebuilt from {journal}: {out}; {kept}")
    else:
        print(f"report rebuilt from {journal} (the journal is removed: the report holds all it held): {out}")
    return exit_codes.for_verdict(data["verdict"])  # like merge: a report that is not pass fails the step
