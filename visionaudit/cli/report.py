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
    from visionaudit.report.journal import ReportGiven, rebuild_journal
    from visionaudit.report.run_lock import ReportInUse, acquire, holder_text, lock_path
    from visionaudit.report.summaries import terminal_lines

    problem = empty_option({"--from-journal": args.from_journal}, required={"--from-journal"})
    if problem:  # not the working directory, "not named REPORT.journal.jsonl"
        raise VisionAuditError(problem)
    journal = Path(args.from_journal)
    own = journal.with_name(journal.name.removesuffix(".journal.jsonl")) if (
        journal.name.endswith(".journal.jsonl") and journal.name != ".journal.jsonl") else None
    out = Path(args.output) if args.output else own
    unnamed = f"{journal} is not named REPORT.journal.jsonl; say where the report goes with -o PATH"
    # Read once, first: a report given for a journal is said as one before the name's rule, whose fix (-o) would not
    # be one; the name's rule before what else is wrong with it. A journal still being written is refused below, by
    # its run's lock, and one that ended since it was read (it changed or went) is read again under that lock.
    stamp = _stamp(journal)
    try:
        rebuilt = rebuild_journal(journal)
    except ReportGiven:
        raise
    except VisionAuditError:
        if out is None:
            raise VisionAuditError(unnamed) from None
        raise
    if out is None:
        raise VisionAuditError(unnamed)
    data = rebuilt.report
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
        if _stamp(journal) != stamp:  # its run ended (or wrote on) between the read and the lock: not what was read
            if not journal.exists():
                raise VisionAuditError(f"{journal} went while it was read: its run ended and wrote its own report "
                                       f"{own or ''}".rstrip() + "; nothing was rebuilt")
            rebuilt = rebuild_journal(journal)
            data = rebuilt.report
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
    if rebuilt.html:  # the run's --audit-html page (journals before stop 43: none)
        print(_page_again(journal.parent, rebuilt, out, own))
    if kept:
        print(f"report rebuilt from {journal}: {out}; {kept}")
    else:
        print(f"report rebuilt from {journal} (the journal is removed: the report holds all it held): {out}")
    return exit_codes.for_verdict(data["verdict"])  # like merge: a report that is not pass fails the step


def _stamp(path) -> tuple[int, int, int] | None:
    """What tells a journal changed since it was read (None: it is not there)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def _page_again(folder, rebuilt, out, own) -> str:
    """The killed run's --audit-html page, rendered from its rebuilt report when that went to the run's own report path
    (the page beside it otherwise an earlier run's, disagreeing with it); else it stays the page of the report there.
    The journal names it from the report's folder, and only a page inside that folder is written (or removed): a
    journal is a file anyone can hand over, and its page must not write over the report or anything outside."""
    from pathlib import Path

    name = rebuilt.html

    def inside() -> bool:
        try:
            return not Path(name).is_absolute() and (folder / name).resolve().is_relative_to(folder.resolve())
        except (OSError, ValueError):  # a link loop, a NUL in the name: no page of this run
            return False

    if not isinstance(name, str) or Path(name).suffix.lower() not in (".html", ".htm"):
        why = "not an .html file"
    else:
        why = None if inside() else f"outside the report's folder {folder}"
    if why:
        return (f"html: the journal names the page {name}, {why}: not rendered (nothing is written there); "
                f"python -m visionaudit html {out} -o PAGE.html renders it")
    page = folder / name
    if own is None or out.resolve() != own.resolve():
        from visionaudit.html.unfinished import unfinished_verdict

        held = {"NOT FINISHED": "the killed run's page saying it did not finish; ",
                "REPORT NOT WRITTEN": "the run's page saying its report was not written; "}.get(
            unfinished_verdict(page) or "", "an earlier run's page; " if page.exists() else "")
        own_path = own if own is not None else "the run's own report path"  # a kept journal (.jsonl.<mtime>) has none
        return (f"html: {page} is left as it is ({held}the report went to {out}, not {own_path}); render this one "
                f"with python -m visionaudit html {out} -o PAGE.html")
    try:
        from visionaudit.html.page_inputs import write_rebuilt_page

        write_rebuilt_page(page, rebuilt.report, rebuilt.page_inputs)
    except Exception as e:  # noqa: BLE001  (no html extra, a folder it cannot write: the report stands)
        try:
            page.unlink(missing_ok=True)  # an earlier run's page must not pass for this one's
        except OSError:
            pass
        return f"html: {page} not written ({type(e).__name__}: {e}); python -m visionaudit html {out} -o {page} renders it"
    return f"html: {page} (rendered from the rebuilt report)"
