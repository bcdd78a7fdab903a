"""One run per report path: the run writing ``PATH`` (``--audit-json``) holds ``PATH.lock`` beside it, so that a
second run on the same path refuses at startup naming the first, instead of taking its live journal for a
killed run's and both writing one report.

The lock is the kernel's (``fcntl.flock`` on the lock file), not the file's existence: it goes with its
process, however that ends (SIGKILL and the OOM killer included), so a lock file left by a killed run never
blocks the next one. The file holds who took it (pid, host, start, command) for the refusal's message.
Where ``fcntl`` does not exist (Windows) runs are not locked.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import sys
import time
from pathlib import Path
from typing import IO, Any, Sequence

from visionaudit.errors import VisionAuditError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]


class ReportInUse(VisionAuditError):
    """Another live run writes the same report; ``holder``: the lock file's content (pid, host, start, command)."""

    def __init__(self, message: str, holder: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.holder = holder or {}


def lock_path(report_path: str | Path) -> Path:
    """``report.json`` -> ``report.json.lock``, beside it."""
    report_path = Path(report_path)
    return report_path.with_name(report_path.name + ".lock")


def holder_text(holder: dict[str, Any]) -> str:
    """``pid 123 on host ci-7, started 2026-01-02T03:04:05+00:00 (pytest audits ...)`` from a lock file's content."""
    start = holder.get("start")
    when = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(start)) if isinstance(start, (int, float)) else "?"
    text = f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}, started {when}"
    return text + (f" ({holder['command']})" if holder.get("command") else "")


def invoked_as(argv0: str) -> str:
    """The program of a command line as a person typed it: ``python -m pytest`` for ``python -m pytest``, whose
    ``sys.argv[0]`` is pytest's ``__main__.py``; the script's name otherwise (``pytest``); ``pytest`` where there is
    no script (``python -c``, an embedding process: ``-c`` or nothing)."""
    path = Path(argv0)
    if path.name == "__main__.py":
        return f"python -m {path.parent.name}"
    return "pytest" if not path.name or path.name.startswith("-") else path.name


def command_line(argv0: str, args: Sequence[str]) -> str:
    """``argv0`` (:func:`invoked_as`) and ``args`` as a shell reads them back (quoted where they need it)."""
    return shlex.join([*invoked_as(argv0).split(), *map(str, args)])


class RunLock:
    """The held lock of one report path; :meth:`release` when the report is written (or the run ends)."""

    def __init__(self, path: Path, file: IO[str] | None) -> None:
        self.path = path
        self._file = file

    def release(self) -> None:
        if self._file is None or self._file.closed:
            return
        # Removed while still held: a run that opened the old file finds it gone and opens the path again.
        self.path.unlink(missing_ok=True)
        self._file.close()


def acquire(report_path: str | Path, command: str = "") -> RunLock:
    """Take ``report_path``'s lock, or raise :class:`ReportInUse` naming the live run that holds it."""
    path = lock_path(report_path)
    if fcntl is None:
        return RunLock(path, None)
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(10):
        # Held open until release; "a+" does not truncate: a refused run reads the holder's details.
        file = open(path, "a+", encoding="utf-8")  # noqa: SIM115
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            file.seek(0)
            text = file.read()
            file.close()
            try:
                holder = json.loads(text)
            except ValueError:
                holder = {}  # taken a moment ago, its details not yet written
            raise ReportInUse(
                f"another run is writing the report {report_path}: {holder_text(holder)}. Two runs on one report "
                f"would overwrite each other's results; wait for that run to end, or give this one another "
                f"--audit-json path", holder) from None
        try:
            current = os.stat(path).st_ino
        except FileNotFoundError:
            current = None
        if current != os.fstat(file.fileno()).st_ino:  # its holder removed it between our open and our lock
            file.close()
            continue
        file.seek(0)
        file.truncate()
        file.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "start": time.time(),
                               "command": command or command_line(sys.argv[0], sys.argv[1:])}) + "\n")
        file.flush()
        return RunLock(path, file)
    raise ReportInUse(f"the lock {path} of the report {report_path} keeps changing hands; give this run another "
                      "--audit-json path")
