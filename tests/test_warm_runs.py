"""The fork server's runs (tests/warm_runs.py) are ``python -m pytest`` as a new process is: the same folder, path,
environment, exit status and output; and a test marked real_process, or the switch turned off, gets a new process."""

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torchvision  # noqa: F401  (imported at module level, as the suite's test files do)

from tests import warm_runs
from tests.audit_runs import run_project

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import json, os, sys
import numpy

def test_probe():
    with open(os.environ["PROBE_OUT"], "w") as out:
        json.dump({"cwd": os.getcwd(), "path": sys.path[:3], "env": os.environ.get("PROBE_VAR"), "ppid": os.getppid(),
                   "argv": sys.argv[1:], "threads": __import__("torch").get_num_threads(),
                   "draw": int(numpy.random.randint(1 << 30))}, out)
    print("probe ran")
    assert False, "a failing test: its exit status and output compared too"
"""


def _probe(tmp_path: Path, name: str) -> tuple[dict, object]:
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    (project / "test_probe.py").write_text(PROBE)
    out = tmp_path / f"{name}.json"
    proc = run_project(project, "-p", "no:cacheprovider", "test_probe.py", PROBE_OUT=str(out), PROBE_VAR="seen",
                       PYTHONPATH=os.pathsep.join([str(tmp_path / "extra"), os.environ.get("PYTHONPATH", "")]))
    return json.loads(out.read_text()), proc


@pytest.fixture
def one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # as under xdist (a core per worker): the runs the server takes


@pytest.mark.usefixtures("one_thread")
def test_a_warm_run_is_the_fork_servers_child_and_sees_what_a_new_process_sees(tmp_path, monkeypatch):
    warm, warm_proc = _probe(tmp_path, "warm")
    again, _ = _probe(tmp_path, "again")
    monkeypatch.setenv(warm_runs.SWITCH, "0")
    real, real_proc = _probe(tmp_path, "real")
    assert real["ppid"] == os.getpid() and warm["ppid"] == warm_runs._server.proc.pid
    assert warm["draw"] != again["draw"]  # numpy's generator seeded afresh in each run, not the server's seed
    for key in ("cwd", "path", "env", "argv", "threads"):
        assert warm[key] == real[key], key
    assert warm["path"][:2] == [str(tmp_path / "project"), str(tmp_path / "extra")]
    assert warm_proc.returncode == real_proc.returncode == 1
    assert "probe ran" in warm_proc.stdout and "1 failed" in warm_proc.stdout and "1 failed" in real_proc.stdout


@pytest.mark.real_process
@pytest.mark.usefixtures("one_thread")
def test_a_test_marked_real_process_starts_new_processes(tmp_path):
    assert _probe(tmp_path, "real")[0]["ppid"] == os.getpid()


@pytest.mark.usefixtures("one_thread")
def test_a_run_whose_interpreter_would_start_otherwise_gets_a_new_process(tmp_path, monkeypatch):
    assert _probe(tmp_path, "warm")[0]["ppid"] != os.getpid()  # the server started, as the suite's environment has it
    monkeypatch.setenv("PYTHONWARNINGS", "ignore::DeprecationWarning")
    assert _probe(tmp_path, "real")[0]["ppid"] == os.getpid()


@pytest.mark.usefixtures("one_thread")
def test_a_run_with_its_own_tmpdir_puts_its_temporary_files_there(tmp_path, monkeypatch):
    # torchvision's import asks tempfile for its folder (where $TORCHINDUCTOR_CACHE_DIR is unset, as in a process that
    # has not imported it), so the server holds its own TMPDIR's: a run must not inherit it
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    project, own = tmp_path / "project", tmp_path / "own-tmp"
    project.mkdir()
    own.mkdir()
    (project / "test_tmp.py").write_text("import os, tempfile\n\ndef test_tmp():\n"
                                         "    open(os.environ['PROBE_OUT'], 'w').write(tempfile.gettempdir())\n")
    proc = run_project(project, "-p", "no:cacheprovider", "test_tmp.py", TMPDIR=str(own), PROBE_OUT=str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stdout
    assert (tmp_path / "out").read_text() == str(own)


def _children(pid: int) -> list[str]:
    return [child for task in os.listdir(f"/proc/{pid}/task")
            for child in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]


@pytest.mark.usefixtures("one_thread")
def test_a_run_out_of_time_is_killed_and_one_killed_by_a_signal_exits_by_it(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "test_slow.py").write_text("import time\n\ndef test_slow():\n    time.sleep(60)\n")
    (project / "test_crash.py").write_text("import os, signal\n\ndef test_crash():\n"
                                           "    os.kill(os.getpid(), signal.SIGKILL)\n")
    assert run_project(project, "-p", "no:cacheprovider", "test_crash.py").returncode == -signal.SIGKILL
    server = warm_runs._server.proc.pid  # the crash was the server's child
    with pytest.raises(subprocess.TimeoutExpired):
        run_project(project, "-p", "no:cacheprovider", "test_slow.py", timeout=5)
    assert _children(server) == []  # killed and waited for, not left running
    assert run_project(project, "-p", "no:cacheprovider", "test_crash.py").returncode == -signal.SIGKILL  # still serves


@pytest.fixture(scope="module")
def module_scoped_run(tmp_path_factory) -> dict:
    os.environ["OMP_NUM_THREADS"] = "1"  # (module scope: no monkeypatch) the runs the server would take
    try:
        return _probe(tmp_path_factory.mktemp("module"), "module")[0]
    finally:
        os.environ.pop("OMP_NUM_THREADS")


@pytest.mark.real_process
def test_the_runs_of_a_real_process_tests_module_scoped_fixture_are_new_processes(module_scoped_run):
    assert module_scoped_run["ppid"] == os.getpid()


WORKER_PROBE = """
import json, os, sys

def test_probe():
    worker = os.environ["PYTEST_XDIST_WORKER"]
    with open(os.environ["PROBE_OUT"] + worker, "w") as out:
        json.dump({"cwd": os.getcwd(), "path": sys.path[:3], "env": os.environ.get("PROBE_VAR"), "ppid": os.getppid(),
                   "threads": __import__("torch").get_num_threads(), "main": sys.modules["__main__"].__dict__.get(
                   "__file__"), "run_ppid": int(open(f"/proc/{os.getppid()}/stat").read().rsplit(")", 1)[1].split()[1]),
                   "streams": [(s.encoding, s.errors, s.write_through, type(s.buffer).__name__)
                               for s in (sys.__stdout__, sys.__stderr__)]}, out)
    if worker == "gw1":
        os.kill(os.getpid(), __import__("signal").SIGSEGV)

def test_other():
    pass
"""


def _worker_probe(tmp_path: Path, name: str, conftest: str = "") -> tuple[dict, str]:
    project = tmp_path / name
    project.mkdir()
    (project / "test_probe.py").write_text(WORKER_PROBE)
    (project / "conftest.py").write_text(conftest)
    proc = run_project(project, "-p", "no:cacheprovider", "-n", "2", "-p", "no:randomly", "--dist", "each",
                       PROBE_OUT=str(tmp_path / f"{name}-"), PROBE_VAR="seen")
    return json.loads((tmp_path / f"{name}-gw0").read_text()), proc.stdout + proc.stderr


@pytest.mark.usefixtures("one_thread")
@pytest.mark.slow(data=False)
def test_a_warm_runs_xdist_workers_are_the_servers_children_and_see_what_new_workers_see(tmp_path, monkeypatch):
    warm, warm_out = _worker_probe(tmp_path, "warm")
    server = warm_runs._server.proc.pid
    monkeypatch.setenv(warm_runs.SWITCH, "0")
    real, real_out = _worker_probe(tmp_path, "real")
    assert warm["ppid"] == server and real["ppid"] not in (server, os.getpid())  # a real run's worker: its controller's
    assert warm["cwd"] == str(tmp_path / "warm") and real["cwd"] == str(tmp_path / "real")
    for probe in (warm, real):  # the folder (each run's own) as the path's first entry
        probe["path"] = ["FOLDER" if p == probe["cwd"] else p for p in probe["path"]]
    for key in ("path", "env", "threads", "main", "streams"):  # streams: `python -u`'s, unbuffered
        assert warm[key] == real[key], key
    # a worker that crashes is told as one (its exit status, told by the pidfd the server waited on, is
    # tests/test_load_crashes.py's "signal 11, SIGSEGV")
    for out in (warm_out, real_out):
        assert "worker 'gw1' crashed while running" in out and "1 failed" in out, out[-2000:]


@pytest.mark.usefixtures("one_thread")
@pytest.mark.slow(data=False)
def test_a_run_that_changes_what_a_process_reads_at_start_gets_new_workers(tmp_path):
    # the run itself was the server's child; its workers would start otherwise than the server did: new processes
    warm, _ = _worker_probe(tmp_path, "changed", conftest="import os\nos.environ['PYTHONWARNINGS'] = 'ignore'\n")
    server = warm_runs._server.proc.pid
    assert warm["run_ppid"] == server and warm["ppid"] != server  # the run was routed, its workers were not


@pytest.mark.slow  # the audits' collection checks the real data's headers
@pytest.mark.real_process
def test_the_audits_are_collected_in_one_order_whatever_the_hash_seed(shared_data):
    """The workers of a routed run share the server's str hash seed, so xdist's check that its workers collected the
    same tests cannot see a collection whose order follows set iteration: new processes with two seeds stand in."""
    def collected(seed: str) -> list[str]:
        env = {**os.environ, "PYTHONHASHSEED": seed, "VISIONAUDIT_DATA": str(shared_data), "CUDA_VISIBLE_DEVICES": ""}
        env.pop("PYTEST_XDIST_WORKER", None)
        proc = subprocess.run([sys.executable, "-m", "pytest", "audits", "--collect-only", "-q", "-p", "no:cacheprovider",
                               "--model", "tests.tiny_models:tiny", "--model", "tests.tiny_models:tiny_other",
                               "--device", "cpu"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        return [line for line in proc.stdout.splitlines() if "::" in line]

    first = collected("1")
    assert len(first) > 100 and collected("2") == first


@pytest.mark.usefixtures("one_thread")
def test_the_worker_socket_serves_only_the_current_run_and_outlives_a_peer_that_goes_away(tmp_path):
    _probe(tmp_path, "first")
    server = warm_runs._server
    bootstrap = json.dumps({"code": "import os; os._exit(0)", "env": dict(os.environ), "cwd": str(tmp_path)}).encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as stray:  # not the current run (there is none)
        stray.connect(server.listen)
        try:
            socket.send_fds(stray, [bootstrap], [0, 1, 2])
            reply = stray.recv(4096)
        except (BrokenPipeError, ConnectionResetError):  # closed before the send, or with the request unread
            reply = b""
        assert reply == b""  # refused: nothing forked for it
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as gone:  # connects and goes away
        gone.connect(server.listen)
    warm, _ = _worker_probe(tmp_path, "after")
    assert warm_runs._server is server and warm["ppid"] == server.proc.pid  # the same server, still forking workers
