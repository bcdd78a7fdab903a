"""The suite's xdist scheduler when workers crash close together (review 41 F1): a replacement worker is in the
scheduler's nodes from its ``workerready`` on, but has a collection only from its ``collectionfinish``. xdist's scope
scheduler gave such a worker work on the next crash or collection (and raised KeyError looking up its collection): the
run died of an INTERNALERROR, or, from a crash, the crashed test was never reported and a unit of work was lost. The
events are replayed in the order a run can produce, on mock workers, with the scheduler the suite gives xdist."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from plugins.distribution import pytest_xdist_make_scheduler
from plugins.settings import SETTINGS_KEY

IDS = ["t.py::test_a[m1]", "t.py::test_b[m1]", "t.py::test_a[m2]", "t.py::test_a[m3]", "t.py::test_a[m4]"]


class Worker:
    """What the scheduler uses of xdist's WorkerController."""

    def __init__(self, name: str):
        self.gateway = SimpleNamespace(id=name)
        self.shutting_down = False
        self.sent: list[int] = []

    def shutdown(self) -> None:
        self.shutting_down = True

    def send_runtest_some(self, indexes: list[int]) -> None:
        self.sent.extend(indexes)

    def __repr__(self) -> str:
        return self.gateway.id


def _scheduler():
    config = SimpleNamespace(stash=pytest.Stash(), invocation_params=SimpleNamespace(args=("-n", "2")),
                             option=SimpleNamespace(loadscopereorder=True),
                             getvalue=lambda name: {"tx": ["2*popen"], "dist": "load"}.get(name))
    config.stash[SETTINGS_KEY] = SimpleNamespace(models=["m1", "m2", "m3", "m4"])  # grouped by model: 4 >= 2 workers
    return pytest_xdist_make_scheduler(config, None)


def _collected(sched, worker: Worker) -> None:
    sched.add_node_collection(worker, IDS)
    if sched.collection_is_completed:
        sched.schedule()


def test_a_second_crash_while_a_replacement_worker_collects_loses_no_test_and_no_crash():
    sched = _scheduler()
    gw0, gw1, gw2, gw3 = (Worker(f"gw{i}") for i in range(4))
    for w in (gw0, gw1):
        sched.add_node(w)
    for w in (gw0, gw1):
        _collected(sched, w)
    assert sched.assigned_work[gw0] and sched.assigned_work[gw1]
    crashes = [sched.remove_node(gw1)]  # gw1 dies in its first test; xdist starts gw2 in its place
    sched.add_node(gw2)  # gw2 is ready and collecting
    crashes.append(sched.remove_node(gw0))  # gw0 dies too, work still queued: gw2 must not be given any yet
    sched.add_node(gw3)
    _collected(sched, gw2)  # gw2's collection, with gw3 still collecting
    _collected(sched, gw3)
    first_tests = [IDS[gw.sent[0]] for gw in (gw0, gw1)]
    assert crashes == [first_tests[1], first_tests[0]]  # each dead worker's running test, reported as crashed
    for _ in range(len(IDS)):  # the replacements run what they are sent; more is sent as they finish
        for gw in (gw2, gw3):
            for index in list(gw.sent):
                if not sched.assigned_work[gw].get(sched._split_scope(IDS[index]), {}).get(IDS[index], True):
                    sched.mark_test_complete(gw, index)
    # every other test was sent to a replacement once (the crashed ones not again: they would crash it too)
    ran = [IDS[i] for gw in (gw2, gw3) for i in gw.sent]
    assert sorted(ran) == sorted(t for t in IDS if t not in crashes), ran
    assert not sched.workqueue and sched.tests_finished
