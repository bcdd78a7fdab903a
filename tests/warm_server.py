"""The fork server of tests/warm_runs.py, run as a script (``python tests/warm_server.py FD``), never imported.

It imports the heavy third-party modules that every pytest run the tests start would import again (torch and
torchvision, about 3 CPU-seconds of a 5-second tiny-model run), then serves requests on the socket FD: each is
answered by os.fork(), the child becoming ``python -m pytest ARGS`` in the request's folder, environment and files;
that run's xdist workers are asked for on a second (abstract) socket and forked likewise, as ``python -u -c BOOTSTRAP``
(the run's side of that, route_workers, runs in the run's process).
It imports nothing of this project (visionaudit, plugins, fixtures, tests) nor anything from a run's PYTHONPATH,
so a run imports those afresh, as a new process does; it starts no thread and runs no torch op, so forking is safe
(a process with threads or an OpenMP pool cannot be forked safely)."""

import sys

sys.path.pop(0)  # this script's folder (tests/): nothing of the project is imported here

import importlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import secrets  # noqa: E402
import select  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import struct  # noqa: E402
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
    # -P (PYTHONSAFEPATH, the server's as every PYTHON* variable is) puts no such first entry
    sys.path[:] = [*([] if sys.flags.safe_path else [first]), *run_path(env.get("PYTHONPATH", ""))[1:]]
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

        # Each stream made afresh on its descriptor as `python -u` makes them (stdout and stderr unbuffered), with the
        # encoding and errors the server's interpreter chose (PYTHONIOENCODING and the locale are the server's)
        def stream(fd: int, like, raw):
            return io.TextIOWrapper(raw, encoding=like.encoding, errors=like.errors, write_through=True,
                                    line_buffering=os.isatty(fd))

        sys.stdin = sys.__stdin__ = stream(0, sys.__stdin__, io.BufferedReader(io.FileIO(0, "r", closefd=False)))
        sys.stdout = sys.__stdout__ = stream(1, sys.__stdout__, io.FileIO(1, "w", closefd=False))
        sys.stderr = sys.__stderr__ = stream(2, sys.__stderr__, io.FileIO(2, "w", closefd=False))
        sys.argv = ["-c"]
        module = types.ModuleType("__main__")
        sys.modules["__main__"] = module
        exec(compile(request["code"], "<string>", "exec"), module.__dict__)

    _end(main)


# route_workers, _ask_for_worker and ForkedWorker run in a run's process (this server's child), not in the server.


def route_workers(request: dict) -> None:
    """The xdist workers this run starts (execnet's ``python -u -c BOOTSTRAP``) become this server's children too, where
    the run's environment is still what the server checked (the variables read as a process starts): execnet's
    create_io is replaced in the run's process. A spec with its own python, -B, env: or chdir (set in the worker after
    it started, too late for what torch read at import) gets a new process."""
    if not request.get("at_start"):
        return
    import execnet.gateway_io as gateway_io

    prefixes, names = tuple(request["at_start"]["prefixes"]), set(request["at_start"]["names"])

    def at_start() -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if k.startswith(prefixes) or k in names}

    checked = at_start()
    new_process = gateway_io.create_io

    def create_io(spec, execmodel):
        plain = spec.popen and not (spec.python or spec.dont_write_bytecode or spec.env or spec.chdir or spec.via)
        proc = _ask_for_worker(gateway_io.popen_bootstrapline) if plain and at_start() == checked else None
        if proc is None:
            return new_process(spec, execmodel)
        io = gateway_io.Popen2IOMaster.__new__(gateway_io.Popen2IOMaster)  # its __init__ would start a process
        io.popen = proc
        gateway_io.Popen2IO.__init__(io, proc.stdin, proc.stdout, execmodel=execmodel)
        return io

    gateway_io.create_io = create_io


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
        try:  # signalled through its pidfd: the server reaps it as it ends, after which its pid may be another's
            self.pidfd: int | None = os.pidfd_open(pid)
        except OSError:
            self.pidfd = None

    def wait(self, timeout: float | None = None) -> int:
        import subprocess

        if not self.lock.acquire(timeout=-1 if timeout is None else timeout):  # another thread waits: as Popen, time out
            raise subprocess.TimeoutExpired(["worker"], timeout)
        try:
            if self.returncode is None:
                self.conn.settimeout(None if timeout is None else max(timeout, 1e-3))  # 0 would make it non-blocking
                try:
                    reply = self.conn.recv(4096)
                except socket.timeout:
                    raise subprocess.TimeoutExpired(["worker"], timeout) from None
                self.returncode = json.loads(reply)["rc"] if reply else -9
                self.conn.close()
                if self.pidfd is not None:
                    os.close(self.pidfd)
                    self.pidfd = None
            return self.returncode
        finally:
            self.lock.release()

    def poll(self) -> int | None:
        try:
            return self.wait(0)
        except Exception:  # TimeoutExpired, or the server gone: still running as far as this run can tell
            return None

    def send_signal(self, sig: int) -> None:
        if self.returncode is None and self.pidfd is not None:
            try:
                signal.pidfd_send_signal(self.pidfd, sig)
            except ProcessLookupError:
                pass  # it has ended

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


def serve(sock: socket.socket, listener: socket.socket) -> None:
    """Runs from the test process on ``sock``, one at a time; xdist workers from those runs on ``listener``, any number
    at once. A child is waited for through its pidfd, so that the server neither blocks nor starts a thread."""
    run: tuple[int, int] | None = None  # the run's pid and pidfd
    workers: dict[int, tuple[int, socket.socket]] = {}  # pidfd: a worker's pid and the connection its run asked on

    def held() -> tuple[list[socket.socket], list[int]]:
        return [sock, listener, *(c for _, c in workers.values())], [*workers, *([run[1]] if run else [])]

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
                pid = _fork(*held(), lambda: child(json.loads(data), fds))
                for fd in fds:
                    os.close(fd)
                sock.send(json.dumps({"pid": pid}).encode())
                run = (pid, os.pidfd_open(pid))
            elif r is listener:
                conn, _ = listener.accept()
                request = _worker_request(conn, run)
                if request is None:
                    conn.close()
                    continue
                sockets, pidfds = held()
                pid = _fork([*sockets, conn], pidfds, lambda: worker(json.loads(request[0]), request[1]))
                for fd in request[1]:
                    os.close(fd)
                try:
                    conn.send(json.dumps({"pid": pid}).encode())
                except OSError:  # the run went away as it asked: the worker would wait for it forever
                    os.kill(pid, signal.SIGKILL)
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


def _worker_request(conn: socket.socket, run: tuple[int, int] | None) -> tuple[bytes, list[int]] | None:
    """The request on ``conn`` if it is the current run's, else None. An abstract socket has no permissions: any local
    process could connect, so only the run's own pid is served, and a peer that sends nothing in time is not waited for
    (the server would stall every run)."""
    creds = struct.Struct("3i")
    pid, _uid, _gid = creds.unpack(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, creds.size))
    if run is None or pid != run[0]:
        return None
    conn.settimeout(5)
    try:
        data, fds, _flags, _addr = socket.recv_fds(conn, 1 << 20, 3)
    except OSError:
        return None
    conn.settimeout(None)
    if not data or len(fds) != 3:
        for fd in fds:
            os.close(fd)
        return None
    return data, fds


def _fork(sockets: list[socket.socket], fds: list[int], become) -> int:
    """A child that closes the server's sockets and pidfds (a child holding the test process's socket would keep it
    from seeing the server end) and becomes ``become()``; it never returns into the server's loop."""
    pid = os.fork()
    if pid == 0:
        try:
            for s in sockets:
                s.close()
            for fd in fds:
                os.close(fd)
            become()
        finally:
            os._exit(1)
    return pid


def _reap(pid: int, pidfd: int) -> int:
    _, status = os.waitpid(pid, 0)  # the pidfd said it ended: no wait
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
    LISTEN = f"\0visionaudit-warm-{os.getpid()}-{secrets.token_hex(8)}"
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
    sock.send(json.dumps({"ready": True, "modules": modules, "set_by_imports": SET_BY_IMPORTS, "listen": LISTEN}).encode())
    serve(sock, listener)
