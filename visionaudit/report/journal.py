"""The journal: what a run has done, appended as it happens (JSON lines, each flushed to disk), so that a
run killed by anything (SIGKILL, the OOM killer, a cancelled CI job) keeps every finished test's
metrics. ``visionaudit report --from-journal PATH`` rebuilds a valid report from it: finished tests as
they ended, tests that had started ``interrupted``, the rest ``not_run``.

Lines: ``{"event": "run", "run": {...}, "models": [...], "spellings": {...}, "canonicals": {id: spec}, "html": PAGE,
"page_inputs": {"shape_bias_references": [CSV, ...], "data": DIR, "images": NAME}}`` (``html``: the run's
``--audit-html`` page, from the report's folder, or null; ``page_inputs``: what the run's page is drawn with beside
the report, absolute paths, so that the page rebuilt from the journal is the same page), ``{"event": "collected",
"nodeids": [...]}``, ``{"event": "tests", "tests": {nodeid: {"audit", "model", "params"}}}``, ``{"event":
"started", "nodeid"}``, ``{"event": "finished", "entry": {...}}``, ``{"event": "model", "id", "info"}``,
``{"event": "samples", "samples": {role: image set}}`` (what per-image outcomes refer to), ``{"event": "loading", "id",
"worker"}`` (a model's load began: one that never ended, in a ``load_ended`` or ``model`` line, was cut short by the
run's end), ``{"event": "load_ended", "id", "worker", "info"}`` (it ended; ``info``: its entry where it loaded, the
model's when no ``model`` line says more), ``{"event": "selection", "selection": {...}}`` (``run.selection``, once
collected), ``{"event": "end", "exit_status"}``.
Every line carries ``time`` (seconds since the epoch): the rebuilt report's ``run.end`` is the last line's
(a journal without times: the file's last change).
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from visionaudit.errors import DataError
from visionaudit.files import to_jsonable
from visionaudit.report.assembly import assemble, blank_entry, settle, unloaded_model

STOPPED_LOADING = ("the run ended while loading this model (killed, or its load crashed the process: a crash in native "
                   "code, or the process ended itself)")


class ReportGiven(DataError):
    """A report given where a journal was asked for (:func:`report_instead` says so)."""


def journal_path(report_path: str | Path) -> Path:
    """``report.json`` -> ``report.json.journal.jsonl``, beside it."""
    report_path = Path(report_path)
    return report_path.with_name(report_path.name + ".journal.jsonl")


class JournalWriter:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "w", encoding="utf-8")
        self._lock = threading.Lock()  # the controller's channel thread writes too

    def write(self, event: str, **fields: Any) -> None:
        line = json.dumps(to_jsonable({"event": event, **fields, "time": round(time.time(), 3)}), allow_nan=False) + "\n"
        with self._lock:
            if self._file.closed:
                return
            self._file.write(line)
            self._file.flush()
            os.fsync(self._file.fileno())  # on disk, not in a buffer a SIGKILL would lose

    def close(self, remove: bool = False) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.close()
        if remove:
            self.path.unlink(missing_ok=True)


def report_instead(path: str | Path, text: str | None = None) -> str | None:
    """Where ``path`` holds a visionaudit report, not a journal (``--from-journal REPORT.json``): the message saying so,
    what to run instead, and the journal beside it where a killed run left one; else None (unreadable files too: their
    reader says why). ``text``: the file's text, where the caller has read it already."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8") if text is None else text)
    except (OSError, UnicodeDecodeError, ValueError):  # a journal's lines are no one JSON document
        return None
    if not isinstance(data, dict) or not isinstance(data.get("schema_version"), int) or "audits" not in data:
        return None
    beside = journal_path(path)
    journal = (f"a killed run on its path left its journal beside it: python -m visionaudit report --from-journal {beside}"
               if beside.is_file() else "--from-journal takes the REPORT.journal.jsonl a killed run leaves beside its "
               f"report (there is no {beside.name} beside this one)")
    return (f"{path} is a visionaudit report (verdict {data.get('verdict')}), not a journal: a report is what "
            f"--from-journal makes, and needs no rebuilding (read it as it is: python -m visionaudit html {path} -o "
            f"report.html); {journal}")


def read_journal(path: str | Path) -> list[dict[str, Any]]:
    """The journal's lines, read once (a report given for it is said as one: :func:`report_instead`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"journal {path} does not exist; it is written beside the --audit-json report "
                        "while a run goes on") from None
    except (OSError, UnicodeDecodeError) as e:  # a folder, a binary file: not a traceback
        raise DataError(f"journal {path} cannot be read ({getattr(e, 'strerror', None) or e}); give the "
                        "REPORT.journal.jsonl file a killed run left beside its report") from None
    if (said := report_instead(path, text)) is not None:
        raise ReportGiven(said)
    lines = text.splitlines()
    events = []
    for number, line in enumerate(lines, start=1):
        try:
            events.append(json.loads(line))
        except ValueError:
            if number == len(lines):
                break  # the last line was cut short when the run was killed: everything before it stands
            raise DataError(f"{path}:{number}: not a journal line; is this a visionaudit journal?") from None
    if not events or events[0].get("event") != "run":
        raise DataError(f"{path} does not start with a run line; is this a visionaudit journal?")
    return events


@dataclass(frozen=True)
class Rebuilt:
    """A journal read once: the report of its run, the run's ``--audit-html`` page (None: none, or a journal from
    before stop 43) and what that page was drawn with beside the report (``page_inputs``; {} before stop 44)."""

    report: dict[str, Any]
    html: Any = None
    page_inputs: dict[str, Any] = field(default_factory=dict)


def rebuild(path: str | Path) -> dict[str, Any]:
    """The report of the run the journal describes (see the module docstring)."""
    return rebuild_journal(path).report


def rebuild_journal(path: str | Path) -> Rebuilt:
    """The report of the run the journal describes, with its page's name and inputs, from one read of the journal."""
    events = read_journal(path)
    inputs = events[0].get("page_inputs")
    return Rebuilt(_report(events, path), events[0].get("html"), inputs if isinstance(inputs, dict) else {})


def _report(events: list[dict[str, Any]], path: str | Path) -> dict[str, Any]:
    run = dict(events[0]["run"])
    collected: list[str] = []
    meta: dict[str, dict[str, Any]] = {}
    started: set[str] = set()
    entries: dict[str, dict[str, Any]] = {}
    models: dict[str, Any] = {}
    samples: dict[str, Any] = {}
    loading: set[str] = set()  # models whose load began and said nothing more
    ended: dict[str, Any] = {}  # models a load ended with: their entry, where no `model` line says more
    exit_status = None
    for e in events[1:]:
        kind = e.get("event")
        if kind == "collected":
            collected = collected or list(e["nodeids"])
        elif kind == "tests":
            meta.update(e["tests"])
        elif kind == "started":
            started.add(e["nodeid"])
        elif kind == "finished":
            entries[e["entry"]["nodeid"]] = e["entry"]
        elif kind == "model":
            models[e["id"]] = e["info"]
            loading.discard(e["id"])
        elif kind == "loading":
            loading.add(e["id"])
        elif kind == "load_ended":
            loading.discard(e["id"])
            if e.get("info"):
                ended[e["id"]] = e["info"]
        elif kind == "samples":
            samples.update(e["samples"])
        elif kind == "selection":
            run["selection"] = e["selection"]
        elif kind == "note":  # said after the run line (the data checks', a model's load)
            notes = run["notes"] = list(run.get("notes") or [])
            if e["note"] not in notes:
                notes.append(e["note"])
        elif kind == "end":
            exit_status = e.get("exit_status")
    finished = set(entries)
    for nodeid in started - finished:  # began, never finished: settle() marks it interrupted
        entries[nodeid] = blank_entry(nodeid, meta.get(nodeid, {}), "interrupted")
    audits = settle(collected, meta, entries, finished)
    for mid, info in ended.items():
        models.setdefault(mid, info)
    for mid in events[0].get("models", []):
        # A load the run's end cut short (a segfault in it kills a run without xdist): not "no test got that far".
        error = STOPPED_LOADING if mid in loading else None
        models.setdefault(mid, unloaded_model(mid, events[0].get("spellings", {}).get(mid, mid), error,
                                              events[0].get("canonicals", {}).get(mid)))
    run["exit_status"] = exit_status
    run["rebuilt_from_journal"] = str(path)
    _set_end(run, events, Path(path))
    return assemble(run, models, audits, stopped=exit_status is None, samples=samples)


def _set_end(run: dict[str, Any], events: list[dict[str, Any]], path: Path) -> None:
    """The run's end and duration: its last journal line's time (the run line holds those of its start)."""
    times = [e["time"] for e in events if isinstance(e.get("time"), (int, float))]
    end = max(times) if times else path.stat().st_mtime
    start = events[0].get("time")  # written as the run began; run.start is rounded to the second
    if not isinstance(start, (int, float)):
        try:
            start = datetime.fromisoformat(run["start"]).timestamp()
        except (KeyError, TypeError, ValueError):
            start = end
    run["end"] = datetime.fromtimestamp(end, timezone.utc).isoformat(timespec="seconds")
    run["duration"] = round(max(0.0, end - start), 3)
