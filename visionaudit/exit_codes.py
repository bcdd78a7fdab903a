"""The exit codes of every visionaudit command, a pytest run and ``python -m visionaudit ...`` alike: one
table, here (README and docs/report.md show it). The plugins and the CLI both return these names.

Why pytest's numbers: a run's exit status is pytest's, so the CLI uses the same ones for the same meaning
(pytest's 3, an internal error, and 5, no tests collected, are pytest's own and not given by a command).
"""

from __future__ import annotations

PASS = 0  # the verdict is pass: every selected gate was judged and passed
NOT_PASS = 1  # a gate failed, a test could not run as it should, or the verdict is otherwise not pass
INTERRUPTED = 2  # Ctrl-C or SIGTERM (a cancelled CI job); the report is still written
USAGE = 4  # usage, configuration or unreadable input, said at startup (before any model loads) where it can be

# README's "Exit codes" table holds these words row for row (a test keeps them the same); --help prints them
# without the Markdown backticks.
TABLE = (
    (PASS, "every gate passed (verdict `pass`)"),
    (NOT_PASS, ("a gate or test failed, or the verdict is otherwise not pass (a gate not judged, `-x` stopping the run, "
                "a regression or a report that is not pass: `compare`, `merge`, `report`); also a model that did not "
                "load (a checkpoint that does not fit `--arch`, a class list of another length than its outputs, found "
                "only as it loads): its tests error, the other models' tests go on, and the verdict's reason begins "
                "`MODEL did not load:`, never a failed gate; `fetch`: files that failed or were rejected (run it again)")),
    (INTERRUPTED, "interrupted (Ctrl-C, SIGTERM: a cancelled CI job); the report is still written"),
    (USAGE, ("usage, configuration, missing data or unreadable input (a misspelled option value, an audit.toml typo, "
             "a report or journal that is not one, another run writing the same report, a download server `fetch` "
             "cannot reach), at startup where it can be known then (before any model loads): one message naming the "
             "problem and the fix; no test runs")),
)


def for_verdict(verdict: str) -> int:
    """A report's exit code: 0 for ``pass``, 1 for anything else (``fail``, ``incomplete``)."""
    return PASS if verdict == "pass" else NOT_PASS
