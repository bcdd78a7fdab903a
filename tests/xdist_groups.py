"""A pytest plugin (tests/conftest.py loads it): the tests that read a fixture marked ``one_worker`` (tests/once.py)
run on one xdist worker, and ``start_first`` tests are sent first.

A once-built fixture (tests/once.py) read by tests on both workers made the second wait on its file lock, a core
idle while the first built it (the sharding runs: 51 s of waiting measured); a module-scoped one was made by each
worker. xdist's own ``--dist loadgroup`` does not group under pytest 9 (its workers mark a test's group by rewriting
``item._nodeid``, which pytest 9 no longer reads), and ``-n auto`` gives ``load``, which ignores groups: so with
``load`` the controller schedules as xdist's loadscope does, a group being one scope. The controller never imports
the tests: each worker writes the groups it found at collection to the session's folder, read by the controller
once every worker has collected (before that it schedules nothing)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.once import ONE_WORKER, session_dir

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
    alone at the end, the other worker idle."""
    items.sort(key=lambda item: item.get_closest_marker("start_first") is None)
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker and hasattr(config, "workerinput"):
        path = session_dir(config._tmp_path_factory) / GROUPS_FILE.format(worker)
        path.write_text(json.dumps(fixture_groups(items)))


@pytest.hookimpl(optionalhook=True, tryfirst=True)  # an xdist hook (-p no:xdist still runs); before xdist's own
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    if config.getvalue("dist") != "load":
        return None  # another --dist the user chose
    from xdist.scheduler import LoadScopeScheduling

    class FixtureGroupScheduling(LoadScopeScheduling):
        """xdist's loadscope with a scope per test, or per group of tests/xdist_groups.py."""

        groups: dict[str, str] | None = None

        def _split_scope(self, nodeid: str) -> str:
            if self.groups is None:  # first asked once all the workers have collected (xdist's schedule())
                self.groups = {}
                for path in sorted(session_dir(config._tmp_path_factory).glob(GROUPS_FILE.format("*"))):
                    self.groups.update(json.loads(path.read_text()))
            return self.groups.get(nodeid, nodeid)

    return FixtureGroupScheduling(config, log)
