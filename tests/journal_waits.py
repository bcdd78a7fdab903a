"""For the test projects whose audited test delivers a fault at a set point of their run (tests/test_faults.py,
tests/report/test_stopped_controls.py): it waits until the run's journal shows what must come before the fault."""

from __future__ import annotations

import json
import time

JOURNAL = "report.json.journal.jsonl"  # the journal of --audit-json=report.json, in the project's folder


def seen(event: str, nodeid: str) -> bool:
    """Whether the journal holds ``event`` ("started", "finished") of the test ``nodeid``."""
    try:
        lines = open(JOURNAL).read().splitlines()
    except OSError:
        return False
    for line in lines:
        try:
            e = json.loads(line)
        except ValueError:  # a line being written
            continue
        if e.get("event") == event and nodeid in (e.get("nodeid"), e.get("entry", {}).get("nodeid")):
            return True
    return False


def when_journal_shows(*events: tuple[str, str], seconds: float = 60) -> None:
    """Returns once the journal shows every (event, nodeid) of ``events``; fails the test after ``seconds``."""
    deadline = time.time() + seconds
    while not all(seen(*e) for e in events):
        assert time.time() < deadline, f"the journal never showed {events}"
        time.sleep(0.05)
