"""A pytest plugin (tests/conftest.py loads it): the tests that read a fixture marked ``one_worker`` (tests/once.py)
run on one xdist worker, and ``start_first`` tests are sent first.

A once-built fixture (tests/once.py) read by tests on both workers made the second wait on its file lock, a core
idle while the first built it (the sharding runs: 51 s of waiting measured); a module-scoped one was made by each
worker. xdist's own ``--dist loadgroup`` does not group under pytest 9 (its workers mark a test's group by rewriting
``item._nodeid``, which pytest 9 no longer reads), and ``-n auto`` gives ``load``, which ignores groups: so with
``load`` the controller schedules as xdist's loadscope does, a group being one scope. The controller never imports
the tests: each worker writes the groups it found at collection to the controller's base temp (xdist makes a worker's
base temp a folder in it), read by the controller once every worker has collected (before that it schedules
nothing). Controller and worker are told apart by ``config.workerinput``, not ``$PYTEST_XDIST_WORKER``: a pytest run
inside an xdist worker (a pytester subprocess) inherits that variable in its controller too."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from plugins.distribution import scope_scheduling
from tests.once import ONE_WORKER

GROUPS_FILE = "xdist-groups-{}.json"


def fixture_groups(items: list[pytest.Item]) -> dict[str, str]:
    """The group of each test that reads a ``one_worker`` fixture, directly or through another fixture: one group per
    set of such fixtures that tests join, named by them (module.fixture, so two modules' fixtures of one name stay
    two)."""
    parent: dict[str, str] = {}

    def root(name: str) -> str:
        while parent[name] != name:
            name = parent[name]
        return name

    reads: dict[str, list[str]] = {}
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        names = sorted(f"{Path(defs[-1].baseid.split('::')[0]).stem}.{name}"
                       for name, defs in (info.name2fixturedefs.items() if info else ())
                       if defs and getattr(defs[-1].func, ONE_WORKER, False))
        if names:
            reads[item.nodeid] = names
            for name in names:
                parent.setdefault(name, name)
            for name in names[1:]:
                parent[root(name)] = root(names[0])
    members: dict[str, set[str]] = {}
    for name in parent:
        members.setdefault(root(name), set()).add(name)
    return {nodeid: "+".join(sorted(members[root(names[0])])) for nodeid, names in reads.items()}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "start_first: under xdist, sent to a worker before the ungrouped tests: the "
                            "longest single test, so that the rest fills the other worker's time while it runs")


@pytest.hookimpl(tryfirst=True)  # before -k and -m deselect: the groups of all the tests, as every worker sees them
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Each worker writes its tests' groups for the controller; the ``start_first`` tests go first: the scheduler
    sends the groups first, largest first, then one test at a time in this order, and a long test sent late ran on
    alone at the end, the other worker idle. Without xdist nothing moves: a serial run (``-n 0``, ``-x``) keeps the
    collection order, not starting with the longest test."""
    if not hasattr(config, "workerinput"):  # not an xdist worker (the controller does not collect)
        return
    items.sort(key=lambda item: item.get_closest_marker("start_first") is None)
    folder = config._tmp_path_factory.getbasetemp().parent  # the controller's base temp
    (folder / GROUPS_FILE.format(config.workerinput["workerid"])).write_text(json.dumps(fixture_groups(items)))


@pytest.hookimpl(optionalhook=True, tryfirst=True)  # an xdist hook (-p no:xdist still runs); before xdist's own
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    if config.getvalue("dist") != "load":
        return None  # another --dist the user chose
    class FixtureGroupScheduling(scope_scheduling()):
        """The project's scope scheduler (plugins/distribution.py: a test that takes its worker down is not sent
        again) with a scope per test, or per group of tests/xdist_groups.py."""

        groups: dict[str, str] | None = None

        def _split_scope(self, nodeid: str) -> str:
            if self.groups is None:  # first asked once all the workers have collected (xdist's schedule())
                self.groups = {}
                paths = sorted(config._tmp_path_factory.getbasetemp().glob(GROUPS_FILE.format("*")))
                for path in paths:
                    self.groups.update(json.loads(path.read_text()))
                if len(paths) < len(self.nodes):  # grouping lost, no test: say so rather than run ungrouped silently
                    warn(config, f"tests/xdist_groups.py: {len(paths)} groups files for {len(self.nodes)} workers in "
                         f"{config._tmp_path_factory.getbasetemp()}; tests that read a one_worker fixture may run on "
                         "several workers (each then waits for the fixture's build)")
            return self.groups.get(nodeid, nodeid)

    return FixtureGroupScheduling(config, log)


def warn(config: pytest.Config, text: str) -> None:
    """A warning in the run's warnings summary, from the controller (outside any test, where pytest records none):
    as xdist passes on a worker's."""
    message = warnings.WarningMessage(pytest.PytestWarning(text), pytest.PytestWarning, __file__, 0)
    config.hook.pytest_warning_recorded.call_historic(
        kwargs={"warning_message": message, "when": "runtest", "nodeid": "", "location": None})
