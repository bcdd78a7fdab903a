"""The pytest runs the tests start (pytester's runpytest_subprocess through the suite fixture, tests.audit_runs's runs)
started from a warm process: a fork server per test process (tests/warm_server.py), started at the first run, that
has imported torch, torchvision and the other heavy third-party modules and forks a child per run. A tiny-model run
spent about 3 of its 5 CPU-seconds importing them again.

A child is ``python -m pytest`` in the run's folder, environment (PYTHONPATH included) and files, as a new process is,
except for what the server imported: so a run that must be a new process is not routed here. The tests marked
``real_process`` (those that check what a run imports, send signals or time runs out) and every run whose environment
differs from the server's in what an interpreter or torch reads as it starts (PYTHON*, TORCH*, OMP*, ...) get a real
one, as does every run when $VISIONAUDIT_TEST_FORKSERVER is 0 (to compare a failing case with the real thing).
A run's xdist workers (``-n 2``) are the server's children too, each ``python -u -c BOOTSTRAP`` as execnet starts one,
while the run's environment holds what the server checked: a tiny-model run with two workers spent 3 CPU-seconds on each
worker's imports as well. Their parent is the server, not the run (a test whose worker signals its parent to kill the
run is marked real_process).
One difference stays: every run of a test process has the server's str hash seed (it cannot be reseeded after the
interpreter started), so an order-dependent bug is always or never seen there rather than at random; the switch is the
way to compare."""

from __future__ import annotations

import atexit
import json
import locale
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

SWITCH = "VISIONAUDIT_TEST_FORKSERVER"
DEFAULT = "1"
MARKER = "real_process"
SERVER = Path(__file__).with_name("warm_server.py")
PYTEST = (["-m", "pytest"], ["-mpytest"])
# Read by the interpreter, torch or its OpenMP/BLAS libraries as a process starts (or as the server imported them):
# a run whose values differ from the server's gets a real process. The ones the child sets itself are exempt.
AT_START = ("PYTHON", "TORCH", "PYTORCH", "OMP_", "KMP_", "MKL_", "OPENBLAS", "GOTO", "NPY_", "GOMP", "LD_", "TRITON_",
            "CUDA_", "LANG", "LC_")
# torch's import bakes its dynamo/inductor cache folder from these (tempfile's folder, the user): exact names.
AT_START_NAMES = {"TMPDIR", "TEMP", "TMP", "USER", "LOGNAME"}
SET_BY_CHILD = {"PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                "GOTO_NUM_THREADS"}
# numpy's and scipy's OpenBLAS start their thread pools as they load, sized by the first of these that is set: the
# server loads them with one thread (so that it has none to fork), so only the runs that would have one thread in
# a new process are routed (all of them under xdist, where tests/conftest.py gives each run a core, OMP_NUM_THREADS=1).
BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS")

# The environment as this process started (before any test's monkeypatch): the server's, the same in every worker.
BASE_ENV = dict(os.environ)

routing = True  # turned off for a test marked real_process (tests/conftest.py)


def _one_blas_thread(env: dict[str, str]) -> bool:
    # OMP_NUM_THREADS too: a routed run gets it as torch's thread count, a new process would use every core without it
    return env.get("OMP_NUM_THREADS") == "1" and next((env[name] for name in BLAS_THREADS if env.get(name)), "") == "1"


def enabled() -> bool:
    return routing and os.environ.get(SWITCH, DEFAULT) != "0" and hasattr(socket, "send_fds") and hasattr(os, "fork")


def _at_start(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if (k.startswith(AT_START) or k in AT_START_NAMES) and k not in SET_BY_CHILD}


def _shadows(folders: list[str], preloaded: set[str]) -> bool:
    """Whether one of these folders (a run's cwd and PYTHONPATH) holds a top-level module the server imported: a new
    process would import the folder's."""
    for folder in filter(None, folders):
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        if any(name.removesuffix(".py") in preloaded for name in names):
            return True
    return False


class _Server:
    """The fork server of this process, started at the first run; stopped (and waited for, so that its CPU time counts
    as this process's children's) as this process ends."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = {k: v for k, v in BASE_ENV.items() if k != "PYTHONPATH"}
        env["OPENBLAS_NUM_THREADS"] = "1"
        self.proc = subprocess.Popen([sys.executable, str(SERVER), str(theirs.fileno())], pass_fds=[theirs.fileno()],
                                     cwd="/", env=env, stdin=subprocess.DEVNULL)
        theirs.close()
        self.sock = ours
        self.busy = False
        self.outstanding: WarmProcess | None = None  # the run started last, until it was waited for
        self.lock = threading.Lock()  # one request and its replies at a time on the socket
        atexit.register(self.stop)
        ready = json.loads(self.sock.recv(1 << 20) or b"{}")
        self.ready = ready.get("ready", False)
        self.preloaded = set(ready.get("modules", ()))
        self.listen = ready.get("listen")  # where its runs ask for their workers (only they are served there)
        # What the server's imports set in its environment (torch's inductor cache folder): a new process's imports
        # set the same where the at-start variables match, so a run without them counts as matching.
        self.set_by_imports = ready.get("set_by_imports", {})
        self.at_start = _at_start({**env, **self.set_by_imports})

    def stop(self) -> None:
        self.sock.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


_server: _Server | None = None
_broken = False  # the server could not start (or get ready): every run of this process is a new one, not a retry each


def _get_server() -> _Server | None:
    global _server, _broken
    if _broken:
        return None
    if _server is None or _server.proc.poll() is not None:
        try:
            _server = _Server()
        except (OSError, ValueError):
            _broken = True
            return None
        if not _server.ready:
            _broken = True
            print("warm_runs: the fork server did not start (its reason above); this process's runs are new processes",
                  file=sys.stderr)
            return None
    return _server


class WarmProcess:
    """The part of subprocess.Popen that pytester and tests.audit_runs use, for a child of the fork server."""

    stdin = stdout = stderr = None

    def __init__(self, server: _Server, args: list[str], pid: int) -> None:
        self.server, self.args, self.pid, self.returncode = server, args, pid, None

    def wait(self, timeout: float | None = None) -> int:
        with self.server.lock:
            return self._wait(timeout)

    def _wait(self, timeout: float | None) -> int:
        if self.returncode is None:
            self.server.sock.settimeout(None if timeout is None else max(timeout, 1e-3))  # 0 would make it non-blocking
            try:
                reply = self.server.sock.recv(4096)
            except socket.timeout:
                raise subprocess.TimeoutExpired(self.args, timeout) from None
            finally:
                self.server.sock.settimeout(None)
            self.returncode = json.loads(reply)["rc"] if reply else -signal.SIGKILL
            self.server.busy = False
            self.server.outstanding = None
        return self.returncode

    def poll(self) -> int | None:
        try:
            return self.wait(0.001)
        except subprocess.TimeoutExpired:
            return None

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


def popen(args: list[str], cwd: str | os.PathLike, env: dict[str, str], stdin: int, stdout: int,
          stderr: int) -> WarmProcess | None:
    """``args`` (``python -m pytest ...``) started in the fork server with these file descriptors; None where it
    must be (or can only be) a real process."""
    args = [os.fspath(arg) for arg in args]
    if not enabled() or args[:1] != [sys.executable] or args[1:3] not in PYTEST and args[1:2] not in PYTEST:
        return None
    if not _one_blas_thread(env):
        return None
    server = _get_server()
    if server is None or _shadows([os.path.abspath(cwd), *env.get("PYTHONPATH", "").split(os.pathsep)], server.preloaded):
        return None
    if _at_start({**server.set_by_imports, **env}) != server.at_start:
        return None
    argv = args[3:] if args[1:3] == ["-m", "pytest"] else args[2:]
    # at_start: the variables a run's xdist workers must still have as the run had them, to be the server's children too
    request = json.dumps({"argv": argv, "cwd": os.path.abspath(cwd), "env": dict(env), "at_start": {
        "prefixes": list(AT_START), "names": sorted(AT_START_NAMES)}}).encode()
    # Not blocking: a run another thread is starting or waiting for takes the server; this one is a new process.
    if not server.lock.acquire(blocking=False):
        return None
    try:
        if server.busy and server.outstanding is not None:
            try:  # a run nobody waited for (its test raised first): read its end if it has ended
                server.outstanding._wait(0.001)
            except subprocess.TimeoutExpired:
                pass
        if server.busy:
            return None
        server.busy = True
        socket.send_fds(server.sock, [request], [stdin, stdout, stderr])
        reply = server.sock.recv(4096)
        if not reply:
            return None  # the server ended: busy stays, so the next run's _get_server restarts it
        server.outstanding = WarmProcess(server, args, json.loads(reply)["pid"])
        return server.outstanding
    finally:
        server.lock.release()


def _open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def run(args: list[str], cwd: str | os.PathLike, env: dict[str, str], timeout: float | None = None,
        stdin_devnull: bool = False) -> subprocess.CompletedProcess:
    """subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout) (stdin /dev/null where
    ``stdin_devnull``, else this process's), in the fork server where it can be."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, open(os.devnull, "rb") as null:
        proc = popen(args, cwd, env, null.fileno() if stdin_devnull or not _open(0) else 0, out.fileno(), err.fileno())
        if proc is None:
            return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL if stdin_devnull else None)
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
        texts = []
        for file in (out, err):
            file.seek(0)
            # as text=True decodes: the locale's encoding, universal newlines
            text = file.read().decode(locale.getpreferredencoding(False))
            texts.append(text.replace("\r\n", "\n").replace("\r", "\n"))
    return subprocess.CompletedProcess(args, code, *texts)


def route_pytester(pytester) -> None:
    """``pytester``'s runpytest_subprocess (its popen of ``python -mpytest``) started in the fork server."""
    real = pytester.popen

    def warm_popen(cmdargs, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=pytester.CLOSE_STDIN, **kw):
        if isinstance(stdout, int) or isinstance(stderr, int) or kw or not (stdin is pytester.CLOSE_STDIN):
            return real(cmdargs, stdout=stdout, stderr=stderr, stdin=stdin, **kw)
        env = os.environ.copy()  # as pytester's popen: the folder on PYTHONPATH
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.getcwd(), env.get("PYTHONPATH", "")]))
        with open(os.devnull, "rb") as null:
            proc = popen(list(cmdargs), os.getcwd(), env, null.fileno(), stdout.fileno(), stderr.fileno())
        return proc if proc is not None else real(cmdargs, stdout=stdout, stderr=stderr, stdin=stdin, **kw)

    pytester.popen = warm_popen
