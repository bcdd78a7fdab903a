"""A worker-to-controller channel for what pytest-xdist does not carry: progress, phase timings, the
collected tests' families and parameters, and each worker's last output.

Why not xdist's own execnet channel: its controller raises on any event it does not know, and the
events it knows (test reports, warnings) would reach junitxml and the terminal summary as fake tests or
warnings. So each worker appends JSON lines to its own file in a folder the controller creates and
hands to the workers (``workerinput``); a controller thread reads them as they grow. The files outlive
a worker that dies, so a crashed test can be reported with the worker's last lines. Without xdist,
messages go straight to the handlers in the same process.
"""

from __future__ import annotations

import faulthandler
import json
import shutil
import tempfile
import threading
from collections import deque
from pathlib import Path
from typing import Any, Callable

import pytest

CHANNEL_KEY = pytest.StashKey["Channel"]()
INPUT_KEY = "visionaudit_channel"
POLL_SECONDS = 0.5
Handler = Callable[[str, dict[str, Any]], None]  # (worker id or "main", message)


class Channel:
    """The controller's side (or, without xdist, the only side)."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self.handlers: list[Handler] = []
        self.last: dict[str, deque[str]] = {}
        self._offsets: dict[Path, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def subscribe(self, handler: Handler) -> None:
        self.handlers.append(handler)

    def deliver(self, worker: str, message: dict[str, Any]) -> None:
        if "line" in message:
            self.last.setdefault(worker, deque(maxlen=20)).append(message["line"])
        for handler in list(self.handlers):
            try:
                handler(worker, message)
            except Exception:  # a presenter's bug must not stop the run
                pass

    def poll(self) -> None:
        """Read what the workers appended since the last poll (complete lines only)."""
        if self.folder is None:
            return
        with self._lock:
            for path in sorted(self.folder.glob("*.jsonl")):
                offset = self._offsets.get(path, 0)
                try:
                    with open(path, "rb") as f:
                        f.seek(offset)
                        data = f.read()
                except OSError:
                    continue
                end = data.rfind(b"\n") + 1
                self._offsets[path] = offset + end
                for raw in data[:end].splitlines():
                    try:
                        self.deliver(path.stem, json.loads(raw))
                    except ValueError:
                        continue

    def start(self) -> None:
        def run() -> None:
            while not self._stop.wait(POLL_SECONDS):
                self.poll()

        self._thread = threading.Thread(target=run, name="visionaudit-channel", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.poll()  # what arrived last
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def last_lines(self, worker: str) -> list[str]:
        return list(self.last.get(worker, ()))


def get_channel(config: pytest.Config) -> Channel | None:
    return config.stash.get(CHANNEL_KEY, None)


def send(config: pytest.Config, message: dict[str, Any]) -> None:
    """From any process: deliver ``message`` to the controller's handlers."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None:
        channel = get_channel(config)
        if channel is not None:
            channel.deliver("main", message)
        return
    folder = workerinput.get(INPUT_KEY)
    if folder:
        try:
            with open(Path(folder) / f"{workerinput['workerid']}.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(message, default=str) + "\n")
        except OSError:
            pass  # the controller is gone; nothing to tell


FAULT_FILE_KEY = pytest.StashKey[object]()


def worker_fault_output(config: pytest.Config, worker: str) -> str:
    """What a dead worker's faulthandler wrote (a segfault's traceback, say), or ""."""
    channel = get_channel(config)
    if channel is None or channel.folder is None:
        return ""
    try:
        text = (channel.folder / f"{worker}.fault").read_text(errors="replace").strip()
    except OSError:
        return ""
    return crash_frames(text)


def crash_frames(text: str, frames: int = 30) -> str:
    """What says where a worker died, of faulthandler's dump: its first line (the fatal error) and the crashing thread's
    innermost ``frames`` frames. The dump's other threads (xdist's receiver) come first and its list of extension
    modules last, so neither its head nor its tail is sure to hold the frame that crashed."""
    lines = text.splitlines()
    start = next((k for k, line in enumerate(lines) if line.startswith("Current thread")), None)
    if start is None:
        return text[:3000]
    block = [lines[start]]
    for line in lines[start + 1:start + 1 + frames]:
        if not line.startswith("  "):
            break
        block.append(line)
    return "\n".join(lines[:1] + block)


@pytest.hookimpl(tryfirst=True)  # the progress and collector plugins subscribe to it in their configure
def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return  # a worker's fault file: at its session start (below)
    uses_xdist = config.getoption("dist", "no") != "no" and not config.getoption("collectonly", False)
    folder = Path(tempfile.mkdtemp(prefix="visionaudit-channel-")) if uses_xdist else None
    channel = config.stash[CHANNEL_KEY] = Channel(folder)
    if folder is not None:
        channel.start()


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """In a worker, a fatal error (a segfault in native code) leaves its traceback where the controller looks. Not in
    pytest_configure: pytest's own faulthandler plugin enables faulthandler on stderr in its configure, after ours."""
    config = session.config
    folder = getattr(config, "workerinput", {}).get(INPUT_KEY)
    if folder:
        fault_file = open(Path(folder) / f"{config.workerinput['workerid']}.fault", "w")
        config.stash[FAULT_FILE_KEY] = fault_file
        faulthandler.enable(file=fault_file, all_threads=True)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    channel = get_channel(node.config)
    if channel is not None and channel.folder is not None:
        node.workerinput[INPUT_KEY] = str(channel.folder)


def pytest_unconfigure(config: pytest.Config) -> None:
    fault_file = config.stash.get(FAULT_FILE_KEY, None)
    if fault_file is not None:
        faulthandler.disable()
        fault_file.close()
    channel = get_channel(config)
    if channel is not None:
        channel.close()
