"""Progress of the long phases (loading a model, decoding images, forward passes), for people and for
the report's per-phase timings.

The core reports through :func:`phase`; whoever shows it subscribes a listener (the pytest plugin, the
CLI). With no listener nothing is printed, so a notebook stays quiet. Events are plain dicts:

``{"event": "start"|"update"|"end", "phase": "load"|"decode"|"forward"|"cache"|"check", "subject": model id or image set,
"what": a label, "done": n, "total": n, "seconds": elapsed, "rate": items/s}``; an ``end`` the phase did not reach
by itself (an exception, Ctrl-C, a timeout stopped it) carries ``"stopped": True``.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator

Listener = Callable[[dict[str, Any]], None]
UPDATE_EVERY = 3.0  # seconds between update events of one phase

_listeners: list[Listener] = []
# When set, the wall-clock time (and pid) of each process's first forward pass is appended to this file:
# benchmarks/phases.py measures the time from ``pytest audits`` to the first forward pass with it.
FIRST_FORWARD_LOG = "VISIONAUDIT_FIRST_FORWARD_LOG"
_forward_noted = False


def subscribe(listener: Listener) -> None:
    if listener not in _listeners:
        _listeners.append(listener)


def unsubscribe(listener: Listener) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


def _emit(event: dict[str, Any]) -> None:
    for listener in list(_listeners):
        try:
            listener(event)
        except Exception:  # showing progress must never break the work it reports on
            pass


class Phase:
    def __init__(self, phase: str, subject: str, what: str, total: int | None) -> None:
        self.base = {"phase": phase, "subject": subject, "what": what, "total": total}
        self.start = self.last = time.monotonic()
        self.done = 0

    def _event(self, kind: str) -> dict[str, Any]:
        seconds = time.monotonic() - self.start
        return {"event": kind, **self.base, "done": self.done, "seconds": round(seconds, 3),
                "rate": round(self.done / seconds, 2) if seconds > 0 and self.done else None}

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.last >= UPDATE_EVERY:
            self.last = now
            _emit(self._event("update"))


@contextmanager
def phase(kind: str, subject: str, what: str = "", total: int | None = None) -> Iterator[Phase]:
    """``with phase("forward", model.id, "clean imagenet-sample", total=n) as p: ... p.advance(k)``."""
    p = Phase(kind, subject, what, total)
    if kind == "forward":
        _note_first_forward()
    if _listeners:
        _emit({"event": "start", **p.base, "done": 0, "seconds": 0.0, "rate": None})
    try:
        yield p
    except BaseException:
        if _listeners:  # it did not finish: "done" would say it did
            _emit({**p._event("end"), "stopped": True})
        raise
    if _listeners:
        _emit(p._event("end"))


def _note_first_forward() -> None:
    global _forward_noted
    if not _forward_noted:
        _forward_noted = True
        path = os.environ.get(FIRST_FORWARD_LOG)
        if path:
            with open(path, "a") as f:
                f.write(f"{time.time():.6f} {os.getpid()}\n")


def describe(event: dict[str, Any]) -> str:
    """One line for people: ``efficientnet_lite0: forward passes (rotation) 320/1000, 86 images/s, 8 s left``."""
    if event["phase"] == "cache":  # a cache hit or a refused entry: the label says it all
        return f"{event['subject']}: {event['what']}"
    verb = {"load": "loading", "decode": "decoding", "forward": "forward passes",
            "check": "checking"}.get(event["phase"], event["phase"])
    head = f"{event['subject']}: {verb}" + (f" {event['what']}" if event.get("what") else "")
    total, done = event.get("total"), event.get("done", 0)
    if event["event"] == "start":
        return head + (f", {total} images" if total else "") + " ..."
    stopped = event["event"] == "end" and event.get("stopped")
    text = head + (f" {'stopped at ' if stopped else ''}{done}/{total}" if total else "")
    if event.get("rate"):
        text += f", {event['rate']:.0f} images/s"
    if event["event"] == "update" and total and event.get("rate"):
        text += f", {max(0.0, (total - done) / event['rate']):.0f} s left"
    if stopped:
        text += f", stopped after {event['seconds']:.1f} s" if not total else f", after {event['seconds']:.1f} s"
    elif event["event"] == "end":
        text += f", done in {event['seconds']:.1f} s"
    return text
