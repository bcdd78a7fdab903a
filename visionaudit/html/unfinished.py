"""The page a run puts at its ``--audit-html`` path as its first test begins: it says the run is under way, and, if it
is still there after the run, that the run did not finish. A run killed outright (SIGKILL, the OOM killer) writes no
page at its end; without this one the page of an earlier run would stand at the path, reading as this run's.

Plain text in the page's frame (no Jinja2, no matplotlib: it is written before any of them is needed, and must not
fail for want of the ``html`` extra); no script, and the same Content-Security-Policy as the report's page.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Sequence

MARK = '<meta name="visionaudit-page" content="unfinished">'  # how `report --from-journal` tells it from a report's page


def unfinished_page(start: str, command: str, journal: str | None) -> str:
    """``start``: when the run's first test began (ISO time); ``command``: as typed; ``journal``: the journal its ``--audit-json``
    run keeps beside the report (None: no ``--audit-json``, so no journal)."""
    if journal:
        after = (f"Its journal <code>{escape(journal)}</code> holds every test it finished: <code>python -m visionaudit "
                 f"report --from-journal {escape(journal)}</code> rebuilds its report, and this page from it.")
    else:
        after = ("It kept no journal (no <code>--audit-json</code>): what it measured is lost. Run it with "
                 "<code>--audit-json PATH</code> to keep a journal that rebuilds the report and this page of a killed run.")
    return _frame("NOT FINISHED", f"""<p id="unfinished">The run that writes this page began its first test at
{escape(start)}, and had not ended when this page was written.
It replaces this page with its report when it ends, however it ends (a failed gate, Ctrl-C, SIGTERM). If this page is
still here after the run, the run was killed before it could (SIGKILL, the OOM killer, a lost machine): it has no
verdict, and no page of an earlier run stands for it.</p>
<p>{after}</p>
<p>Command: <code>{escape(command)}</code></p>""")


def report_failed_page(command: str, error: str, report: str | None, written: bool, journal: str | None,
                       interrupted: bool = False) -> str:
    """The page of a run that ran its tests but whose end failed before its page was written (a session-end hook
    raised: ``error``, as ``Type: message``). ``report``: its ``--audit-json`` path (None: none), ``written``: whether
    that report was written all the same, ``journal``: the journal kept beside it; ``interrupted``: the run was
    interrupted (Ctrl-C, SIGTERM) before its end failed, so it did not finish its tests."""
    ran = "was interrupted before it finished its tests, and then" if interrupted else "finished its tests, but"
    if report and written:
        after = (f"Its JSON report <code>{escape(report)}</code> was written and holds everything measured: <code>python -m "
                 f"visionaudit html {escape(report)} -o PAGE</code> renders this page from it.")
    elif journal:
        after = (f"Its JSON report <code>{escape(report or '')}</code> was not written; its journal "
                 f"<code>{escape(journal)}</code> holds every test it finished: <code>python -m visionaudit report "
                 f"--from-journal {escape(journal)}</code> rebuilds its report, and this page from it.")
    else:
        after = "It kept no JSON report (no <code>--audit-json</code>): what it measured is in its terminal output only."
    return _frame("REPORT NOT WRITTEN", f"""<p id="report-failed">The run {ran} writing its report failed:
<code>{escape(error)}</code>. It has no verdict here (its terminal output has the error's traceback).</p>
<p>{after}</p>
<p>Command: <code>{escape(command)}</code></p>""")


def _frame(verdict: str, body: str) -> str:
    """Plain text in the page's frame, under its heading with ``verdict`` in the verdict's badge."""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
{MARK}
<title>visionaudit report: {verdict}</title>
<style>
body {{ font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 980px; padding: 12px; }}
.verdict {{ display: inline-block; padding: 2px 10px; border-radius: 4px; color: #fff; font-weight: 600; background: #ef6c00; }}
code {{ font-size: 0.9em; overflow-wrap: anywhere; }}
</style>
</head>
<body>
<h1>visionaudit report <span class="verdict" id="verdict">{verdict}</span></h1>
{body}
</body>
</html>
"""


def write_unfinished_page(path: str | Path, start: str, args: Sequence[str], journal: str | None) -> None:
    """``args``: pytest's arguments, shown as a command a shell reads back the same (quoted where they need it)."""
    from visionaudit.files import write_text_atomically

    write_text_atomically(Path(path), unfinished_page(start, command_line(args), journal))


def command_line(args: Sequence[str]) -> str:
    """pytest's ``args`` as a command a shell reads back the same (quoted where they need it), begun as it was typed
    (``pytest``, ``python -m pytest``)."""
    import sys

    from visionaudit.report.run_lock import command_line as typed

    return typed(sys.argv[0], args)


def unfinished_verdict(path: str | Path) -> str | None:
    """The badge of the page at ``path`` when this module wrote it (``NOT FINISHED``: a run killed, or still running;
    ``REPORT NOT WRITTEN``: a run whose end failed); None for a report's page or no page."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            head = f.read(2048)
    except OSError:
        return None
    if MARK not in head:
        return None
    return "REPORT NOT WRITTEN" if "<title>visionaudit report: REPORT NOT WRITTEN</title>" in head else "NOT FINISHED"
