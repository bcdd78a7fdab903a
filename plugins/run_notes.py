"""The run's notes: things said once, on the terminal and in the report's ``run.notes`` (the data checks' findings,
the settings' assumptions, what a worker found as it loaded a model), and the terminal stream they are written to.
In a worker a note goes to the controller (plugins/worker_channel.py), which says it."""

from __future__ import annotations

from typing import Any

import pytest

from .settings import SETTINGS_KEY
from .worker_channel import get_channel, send

NOTES_KEY = pytest.StashKey[list]()  # things said once: the report's run.notes
NOTE_SINK_KEY = pytest.StashKey[Any]()  # where a note said after the journal's run line goes (the journal), if anywhere
PRINTED_KEY = pytest.StashKey[set]()  # the notes already on the terminal


class TerminalLog:
    """A text stream onto pytest's terminal, for the download's progress and terms (uncaptured, even mid-collection)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.pending = ""

    def write(self, text: str) -> int:
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        capman = self.config.pluginmanager.get_plugin("capturemanager")
        for line in lines:
            if tr is None:
                continue
            if capman is not None:
                with capman.global_and_fixture_disabled():
                    tr.write_line(line)
            else:
                tr.write_line(line)
        return len(text)

    def flush(self) -> None:
        pass


def say_once(config: pytest.Config, note: str, now: bool = True) -> None:
    """A note for the report (``run.notes``) and the terminal (``now``, else in the summary), each said once.
    In a worker it goes to the controller."""
    if hasattr(config, "workerinput"):
        send(config, {"kind": "note", "note": note})
        return
    notes = config.stash.setdefault(NOTES_KEY, [])
    if note in notes:
        return
    notes.append(note)
    sink = config.stash.get(NOTE_SINK_KEY, None)
    if sink is not None:  # a report rebuilt from the journal keeps it (a killed run's page too)
        sink(note)
    if now:
        TerminalLog(config).write(f"note: {note}\n")
        config.stash.setdefault(PRINTED_KEY, set()).add(note)


def warn_once(config: pytest.Config, note: str) -> None:
    """A note that must stand out: in ``run.notes``, and on the terminal now as a ``WARNING:`` line (not ``note:``)."""
    say_once(config, note, now=False)
    TerminalLog(config).write(f"WARNING: {note}\n")
    config.stash.setdefault(PRINTED_KEY, set()).add(note)


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    """The notes that came from workers (said as they loaded a model), not printed yet."""
    printed = config.stash.get(PRINTED_KEY, set())
    for note in config.stash.get(NOTES_KEY, []):
        if note not in printed:
            terminalreporter.write_line(f"note: {note}")


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return
    settings = config.stash.get(SETTINGS_KEY, None)  # what the settings found at startup (a model's assumed preprocessing)
    for note in settings.notes if settings else ():
        say_once(config, note, now=False)  # the terminal reporter may not be there yet: said in the summary
    channel = get_channel(config)
    if channel is not None:
        def handler(worker: str, message: dict[str, Any]) -> None:
            if message.get("kind") == "note":
                say_once(config, message["note"], now=False)  # not from this thread: in the summary
        channel.subscribe(handler)
