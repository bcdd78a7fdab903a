"""The fork server of tests/warm_runs.py, run as a script (``python tests/warm_server.py FD``), never imported.

It imports the heavy third-party modules that every pytest run the tests start would import again (torch and
torchvision, about 3 CPU-seconds of a 5-second tiny-model run), then serves requests on the socket FD: each is
answered by os.fork(), the child becoming ``python -m pytest ARGS`` in the request's folder, environment and files.
It imports nothing of this project (visionaudit, plugins, fixtures, tests) nor anything from a run's PYTHONPATH,
so a run imports those afresh, as a new process does; it starts no thread and runs no torch op, so forking is safe
(a process with threads or an OpenMP pool cannot be forked safely)."""

import sys

sys.path.pop(0)  # this script's folder (tests/): nothing of the project is imported here

import importlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
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


def child(request: dict, fds: list[int]) -> None:
    """Becomes ``python -m pytest *argv`` (never returns)."""
    rc = 1
    try:
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
        sys.path[:] = run_path(env.get("PYTHONPATH", ""))
        sys.path_importer_cache.clear()
        importlib.invalidate_caches()
        import numpy
        import torch

        numpy.random.seed()  # numpy's global generator was seeded as the server imported it: each run its own, as new
        threads = env.get("OMP_NUM_THREADS", "")
        if threads.isdigit() and int(threads) > 0:
            torch.set_num_threads(int(threads))
        import runpy

        sys.argv = ["-m", *request["argv"]]
        try:
            runpy.run_module("pytest", run_name="__main__", alter_sys=True)
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


def serve(sock: socket.socket) -> None:
    while True:
        try:
            data, fds, _flags, _addr = socket.recv_fds(sock, 1 << 20, 3)
        except (ConnectionError, OSError):
            return
        if not data:
            return
        request = json.loads(data)
        pid = os.fork()
        if pid == 0:
            sock.close()
            child(request, fds)
        for fd in fds:
            os.close(fd)
        sock.send(json.dumps({"pid": pid}).encode())
        _, status = os.waitpid(pid, 0)
        sock.send(json.dumps({"rc": os.waitstatus_to_exitcode(status)}).encode())


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
    before = dict(os.environ)
    preload()
    # The interpreter's own entries (stdlib, site-packages): the server's $PYTHONPATH is not a run's
    server_own = {os.path.abspath(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)} if os.environ.get(
        "PYTHONPATH") else set()
    BASE_PATH = [p for p in sys.path if p not in server_own]
    SET_BY_IMPORTS = {k: v for k, v in os.environ.items() if before.get(k) != v}
    modules = sorted({name.split(".")[0] for name in sys.modules})
    sock.send(json.dumps({"ready": True, "modules": modules, "set_by_imports": SET_BY_IMPORTS}).encode())
    serve(sock)
