"""The exit codes of every visionaudit command, a pytest run and ``python -m visionaudit ...`` alike: one
table, here (docs/report.md shows it). The plugins and the CLI both return these names.

Why pytest's numbers: a run's exit status is pytest's, so the CLI uses the same ones for the same meaning
(pytest's 3, an internal error, and 5, no tests collected, are pytest's own and not given by a command).
"""

from __future__ import annotations

PASS = 0  # the verdict is pass: every selected gate was judged and passed
NOT_PASS = 1  # a gate failed, a test could not run as it should, or the verdict is otherwise not pass
INTERRUPTED = 2  # Ctrl-C or SIGTERM (a cancelled CI job); the report is still written
USAGE = 4  # usage, configuration or unreadable input, said at startup (before any model loads) where it can be

TABLE = (
    (PASS, "the verdict is pass"),
    (NOT_PASS, ("a gate failed, or the verdict is not pass (fail or incomplete; -x/--maxfail stopping the run "
                "after a failure included); fetch: files that failed or were rejected (run it again)")),
    (INTERRUPTED, "interrupted: Ctrl-C or SIGTERM (a cancelled CI job)"),
    (USAGE, ("usage, configuration or unreadable input (a misspelled option value, an audit.toml typo, missing data, "
             "a report or journal that is not one, another run writing the same report, a download server fetch "
             "cannot reach)")),
)


def for_verdict(verdict: str) -> int:
    """A report's exit code: 0 for ``pass``, 1 for anything else (``fail``, ``incomplete``)."""
    return PASS if verdict == "pass" else NOT_PASS
