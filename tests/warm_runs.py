"""The pytest runs the tests start (pytester's runpytest_subprocess through the suite fixture, tests.audit_runs's runs)
started from a warm process: a fork server per test process (tests/warm_server.py), started at the first run, that
has imported torch, torchvision and the other heavy third-party modules and forks a child per run. A tiny-model run
spent about 3 of its 5 CPU-seconds importing them again.

A child is ``python -m pytest`` in the run's folder, environment (PYTHONPATH included) and files, as a new process is,
except for what the server imported: so a run that must be a new process is not routed here. The tests marked
``real_process`` (those that check what a run imports, send signals or time runs out) and every run whose environment
differs from the server's in what an interpreter or torch reads as it starts (PYTHON*, TORCH*, OMP*, ...) get a real
one, as does every run when $VISIONAUDIT_TEST_FORKSERVER is 0 (to compare a failing case with the real thing)."""

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
from pathlib import Path

SWITCH = "VISIONAUDIT_TEST_FORKSERVER"
DEFAULT = "1"
MARKER = "real_process"
SERVER = Path(__file__).with_name("warm_server.py")
PYTEST = (["-m", "pytest"], ["-mpytest"])
# Read by the interpreter, torch or its OpenMP/BLAS libraries as a process starts (or as the server imported them):
# a run whose values differ from the server's gets a real process. The ones the child sets itself are exempt.
AT_START = ("PYTHON", "TORCH", "PYTORCH", "OMP_", "KMP_", "MKL_", "OPENBLAS", "GOTO", "NPY_", "GOMP", "LD_")
SET_BY_CHILD = {"PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                "GOTO_NUM_THREADS"}
# numpy's and scipy's OpenBLAS start their thread pools as they load, sized by the first of these that is set: the
# server loads them with one thread (so that it has none to fork), so only the runs that would have one thread in
# a new process are routed (all of them under xdist, where tests/conftest.py gives each run a core, OMP_NUM_THREADS=1).
BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS")


def _one_blas_thread(env: dict[str, str]) -> bool:
    return next((env[name] for name in BLAS_THREADS if env.get(name)), "") == "1"
# Top-level names the server imported: a run whose PYTHONPATH holds one of them would shadow it in a new process.
PRELOADED = ("numpy", "scipy", "PIL", "jsonschema", "safetensors", "torch", "torchvision", "pytest", "_pytest",
             "filelock")

routing = True  # turned off for a test marked real_process (tests/conftest.py)


def enabled() -> bool:
    return routing and os.environ.get(SWITCH, DEFAULT) != "0" and hasattr(socket, "send_fds") and hasattr(os, "fork")


def _at_start(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith(AT_START) and k not in SET_BY_CHILD}


def _shadows(pythonpath: str) -> bool:
    for folder in filter(None, pythonpath.split(os.pathsep)):
        for name in PRELOADED:
            if os.path.exists(os.path.join(folder, name)) or os.path.exists(os.path.join(folder, f"{name}.py")):
                return True
    return False


class _Server:
    """The fork server of this process, started at the first run; stopped (and waited for, so that its CPU time counts
    as this process's children's) as this process ends."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env["OPENBLAS_NUM_THREADS"] = "1"
        self.at_start = _at_start(env)
        self.proc = subprocess.Popen([sys.executable, str(SERVER), str(theirs.fileno())], pass_fds=[theirs.fileno()],
                                     cwd="/", env=env, stdin=subprocess.DEVNULL)
        theirs.close()
        self.sock = ours
        self.busy = False
        self.ready = json.loads(self.sock.recv(4096) or b"{}").get("ready", False)
        atexit.register(self.stop)

    def stop(self) -> None:
        self.sock.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


_server: _Server | None = None


def _get_server() -> _Server | None:
    global _server
    if _server is None or _server.proc.poll() is not None:
        try:
            _server = _Server()
        except OSError:
            return None
    return _server if _server.ready and not _server.busy else None


class WarmProcess:
    """The part of subprocess.Popen that pytester and tests.audit_runs use, for a child of the fork server."""

    stdin = stdout = stderr = None

    def __init__(self, server: _Server, args: list[str], pid: int) -> None:
        self.server, self.args, self.pid, self.returncode = server, args, pid, None

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self.server.sock.settimeout(timeout)
            try:
                reply = self.server.sock.recv(4096)
            except socket.timeout:
                raise subprocess.TimeoutExpired(self.args, timeout) from None
            finally:
                self.server.sock.settimeout(None)
            self.returncode = json.loads(reply)["rc"] if reply else -signal.SIGKILL
            self.server.busy = False
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
    if _shadows(env.get("PYTHONPATH", "")) or not _one_blas_thread(env):
        return None
    server = _get_server()
    if server is None or _at_start(env) != server.at_start:
        return None
    argv = args[3:] if args[1:3] == ["-m", "pytest"] else args[2:]
    request = json.dumps({"argv": argv, "cwd": os.path.abspath(cwd), "env": dict(env)}).encode()
    socket.send_fds(server.sock, [request], [stdin, stdout, stderr])
    server.busy = True
    reply = server.sock.recv(4096)
    if not reply:
        server.busy = False
        return None
    return WarmProcess(server, args, json.loads(reply)["pid"])


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
