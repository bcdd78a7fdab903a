"""The fork server of tests/warm_runs.py, run as a script (``python tests/warm_server.py FD``), never imported.

It imports the heavy third-party modules that every pytest run the tests start would import again (torch and
torchvision, about 3 CPU-seconds of a 5-second tiny-model run), then serves requests on the socket FD: each is
answered by os.fork(), the child becoming ``python -m pytest ARGS`` in the request's folder, environment and files;
that run's xdist workers are asked for on a second (abstract) socket and forked likewise, as ``python -u -c BOOTSTRAP``.
It imports nothing of this project (visionaudit, plugins, fixtures, tests) nor anything from a run's PYTHONPATH,
so a run imports those afresh, as a new process does; it starts no thread and runs no torch op, so forking is safe
(a process with threads or an OpenMP pool cannot be forked safely)."""

import sys

sys.path.pop(0)  # this script's folder (tests/): nothing of the project is imported here

import importlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import select  # noqa: E402
import socket  # noqa: E402
import threading  # noqa: E402

# Third-party only, all of them installed in the venv: a run imports the project's own modules itself.
PRELOAD = ("numpy", "scipy", "scipy.special", "scipy.stats", "PIL.Image", "jsonschema", "safetensors.torch", "torch",
           "torchvision", "torchvision.transforms.v2", "pytest", "filelock")


def preload() -> None:
    for name in PRELOAD:
        importlib.import_module(name)
    # Forking a process with threads (torch's OpenMP pool once an op ran, or any other) can deadlock the child.
    tasks = os.listdir("/proc/self/task") if os.path.isdir("/proc/self/task") else ["main"]
    if threading.active_count() != 1 or len(tasks) != 1:
        raise SystemExit(f"warm_server: {len(tasks)} threads after the imports; a fork would not be safe")


def _become(request: dict, fds: list[int], first: str) -> None:
    """This child made the process a new one would be: its file descriptors, environment, folder and sys.path (with
    ``first`` at its head: -m puts the folder there, -c an empty entry)."""
    for fd, target in zip(fds, (0, 1, 2)):
        os.dup2(fd, target)
    for fd in fds:
        os.close(fd)
    env = request["env"]
    os.environ.clear()
    os.environ.update(env)  # putenv too: the C libraries of the run read it
    for name, value in SET_BY_IMPORTS.items():  # as the run's own imports of torch & co. would set them
        os.environ.setdefault(name, value)
    import tempfile

    tempfile.tempdir = None  # cached by the server's imports from its own TMPDIR: the run's is asked afresh
    sys.dont_write_bytecode = bool(env.get("PYTHONDONTWRITEBYTECODE"))
    sys.pycache_prefix = env.get("PYTHONPYCACHEPREFIX") or None
    os.chdir(request["cwd"])
    sys.path[:] = [first, *run_path(env.get("PYTHONPATH", ""))[1:]]
    sys.path_importer_cache.clear()
    importlib.invalidate_caches()
    import numpy
    import torch

    numpy.random.seed()  # numpy's global generator was seeded as the server imported it: each run its own, as new
    threads = env.get("OMP_NUM_THREADS", "")
    if threads.isdigit() and int(threads) > 0:
        torch.set_num_threads(int(threads))


def _end(main) -> None:
    """Runs ``main()`` and ends the process as the interpreter would, with its exit status (never returns)."""
    rc = 1
    try:
        try:
            main()
            rc = 0
        except SystemExit as stop:
            code = stop.code
            rc = code if isinstance(code, int) else (0 if code is None else 1)
            if not isinstance(code, int) and code is not None:
                print(code, file=sys.stderr)
        except BaseException:
            import traceback

            traceback.print_exc()
            rc = 1
        threading._shutdown()  # as the interpreter does at its end: non-daemon threads are joined
        import atexit

        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:
                pass
        os._exit(rc & 0xFF if rc >= 0 else 1)


def child(request: dict, fds: list[int]) -> None:
    """Becomes ``python -m pytest *argv`` (never returns)."""

    def main() -> None:
        _become(request, fds, os.path.abspath(request["cwd"]))
        route_workers(request)
        import runpy

        sys.argv = ["-m", *request["argv"]]
        runpy.run_module("pytest", run_name="__main__", alter_sys=True)

    _end(main)


def worker(request: dict, fds: list[int]) -> None:
    """Becomes ``python -u -c CODE`` (never returns): an xdist worker as execnet starts one, CODE its bootstrap line."""

    def main() -> None:
        _become(request, fds, "")
        import io
        import types

        # -u: stdout and stderr unbuffered; each stream made afresh on its descriptor, as the interpreter makes them
        sys.stdin = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)))
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), write_through=True)
        sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), write_through=True, errors="backslashreplace")
        sys.argv = ["-c"]
        module = types.ModuleType("__main__")
        sys.modules["__main__"] = module
        exec(compile(request["code"], "<string>", "exec"), module.__dict__)

    _end(main)


def route_workers(request: dict) -> None:
    """The xdist workers this run starts (execnet's ``python -u -c BOOTSTRAP``) become this server's children too, where
    the run's environment is still what the server checked (the variables read as a process starts)."""
    if not request.get("at_start"):
        return
    import execnet.gateway_io as gateway_io

    prefixes, names = tuple(request["at_start"]["prefixes"]), set(request["at_start"]["names"])

    def at_start() -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if k.startswith(prefixes) or k in names}

    checked = at_start()
    default = [sys.executable, "-u", "-c", gateway_io.popen_bootstrapline]
    new_process = gateway_io.Popen2IOMaster.__init__

    def start(self, args, execmodel) -> None:
        proc = _ask_for_worker(gateway_io.popen_bootstrapline) if list(args) == default and at_start() == checked else None
        if proc is None:
            new_process(self, args, execmodel)
            return
        self.popen = proc
        gateway_io.Popen2IO.__init__(self, proc.stdin, proc.stdout, execmodel=execmodel)

    gateway_io.Popen2IOMaster.__init__ = start


def _ask_for_worker(code: str):
    """A worker forked by the server with pipes for its stdin and stdout and this run's stderr; None if it cannot be."""
    stdin, to_worker = os.pipe()
    from_worker, stdout = os.pipe()
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        conn.connect(LISTEN)
        request = {"code": code, "env": dict(os.environ), "cwd": os.getcwd()}
        socket.send_fds(conn, [json.dumps(request).encode()], [stdin, stdout, 2])
        reply = conn.recv(4096)
    except OSError:
        reply = b""
    finally:
        os.close(stdin)
        os.close(stdout)
    if not reply:
        conn.close()
        os.close(to_worker)
        os.close(from_worker)
        return None
    return ForkedWorker(conn, json.loads(reply)["pid"], os.fdopen(to_worker, "wb"), os.fdopen(from_worker, "rb"))


class ForkedWorker:
    """The part of subprocess.Popen that execnet uses, for a worker the server forked."""

    def __init__(self, conn: socket.socket, pid: int, stdin, stdout) -> None:
        self.conn, self.pid, self.stdin, self.stdout, self.returncode = conn, pid, stdin, stdout, None
        self.lock = threading.Lock()

    def wait(self, timeout: float | None = None) -> int:
        with self.lock:
            if self.returncode is None:
                self.conn.settimeout(timeout)
                try:
                    reply = self.conn.recv(4096)
                except socket.timeout:
                    import subprocess

                    raise subprocess.TimeoutExpired(["worker"], timeout) from None
                self.returncode = json.loads(reply)["rc"] if reply else -9
                self.conn.close()
            return self.returncode

    def poll(self) -> int | None:
        try:
            return self.wait(0.001)
        except Exception:
            return None

    def kill(self) -> None:
        if self.returncode is None:
            os.kill(self.pid, 9)

    def terminate(self) -> None:
        if self.returncode is None:
            os.kill(self.pid, 15)


def serve(sock: socket.socket, listener: socket.socket) -> None:
    """Runs from the test process on ``sock``, one at a time; xdist workers from those runs on ``listener``, any number
    at once. A child is waited for through its pidfd, so that the server neither blocks nor starts a thread."""
    run: tuple[int, int] | None = None  # the run's pid and pidfd
    workers: dict[int, tuple[int, socket.socket]] = {}  # pidfd: a worker's pid and the connection its run asked on
    while True:
        ready, _, _ = select.select([sock, listener, *([run[1]] if run else []), *workers], [], [])
        for r in ready:
            if r is sock:
                try:
                    data, fds, _flags, _addr = socket.recv_fds(sock, 1 << 20, 3)
                except (ConnectionError, OSError):
                    return
                if not data:
                    return
                pid = _fork([sock, listener, *(c for _, c in workers.values())], [*workers, *([run[1]] if run else [])],
                            lambda: child(json.loads(data), fds))
                for fd in fds:
                    os.close(fd)
                sock.send(json.dumps({"pid": pid}).encode())
                run = (pid, os.pidfd_open(pid))
            elif r is listener:
                conn, _ = listener.accept()
                try:
                    data, fds, _flags, _addr = socket.recv_fds(conn, 1 << 20, 3)
                except (ConnectionError, OSError):
                    conn.close()
                    continue
                pid = _fork([sock, listener, conn, *(c for _, c in workers.values())],
                            [*workers, *([run[1]] if run else [])], lambda: worker(json.loads(data), fds))
                for fd in fds:
                    os.close(fd)
                conn.send(json.dumps({"pid": pid}).encode())
                workers[os.pidfd_open(pid)] = (pid, conn)
            elif run and r == run[1]:
                sock.send(json.dumps({"rc": _reap(*run)}).encode())
                run = None
            else:
                pid, conn = workers.pop(r)
                try:
                    conn.send(json.dumps({"rc": _reap(pid, r)}).encode())
                except OSError:
                    pass  # the run that asked for it has ended
                conn.close()


def _fork(sockets: list[socket.socket], fds: list[int], become) -> int:
    """A child that closes the server's sockets and pidfds (a child holding the test process's socket would keep it
    from seeing the server end) and becomes ``become()``, which never returns."""
    pid = os.fork()
    if pid == 0:
        for s in sockets:
            s.close()
        for fd in fds:
            os.close(fd)
        become()
    return pid


def _reap(pid: int, pidfd: int) -> int:
    _, status = os.waitpid(pid, 0)
    os.close(pidfd)
    return os.waitstatus_to_exitcode(status)


def run_path(pythonpath: str) -> list[str]:
    """sys.path as `python -m` builds it in the run's folder: $PYTHONPATH's entries made absolute (an empty one is the
    folder; an empty variable is none), then the interpreter's own, duplicates dropped as site.py drops them, then the
    folder itself first (-m puts it there after site.py, so it may stand twice)."""
    own = [os.path.abspath(p) for p in pythonpath.split(os.pathsep)] if pythonpath else []
    seen: set[str] = set()
    unique = [p for p in [*own, *BASE_PATH] if not (os.path.normcase(p) in seen or seen.add(os.path.normcase(p)))]
    return [os.getcwd(), *unique]


if __name__ == "__main__":
    sock = socket.socket(fileno=int(sys.argv[1]))
    # where this server's runs ask for their xdist workers: an abstract socket (no file), named by this process
    LISTEN = f"\0visionaudit-warm-{os.getpid()}"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(LISTEN)
    listener.listen(8)
    before = dict(os.environ)
    preload()
    # The interpreter's own entries (stdlib, site-packages): the server's $PYTHONPATH is not a run's
    server_own = {os.path.abspath(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)} if os.environ.get(
        "PYTHONPATH") else set()
    BASE_PATH = [p for p in sys.path if p not in server_own]
    SET_BY_IMPORTS = {k: v for k, v in os.environ.items() if before.get(k) != v}
    modules = sorted({name.split(".")[0] for name in sys.modules})
    sock.send(json.dumps({"ready": True, "modules": modules, "set_by_imports": SET_BY_IMPORTS}).encode())
    serve(sock, listener)
