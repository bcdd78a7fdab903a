"""The selection: how many collected tests ``-k``, ``-m``, ``--lf``, ``--deselect`` or ``--sw`` deselected (pytest's
``pytest_deselected``), and the paths inside audits/ that narrowed the run, for the report's ``run.selection``
(visionaudit/selection.py).

Under xdist only the workers collect, and each deselects the same tests: each worker sends its count to the
controller (plugins/worker_channel.py), which keeps the first (the controller's own hook never fires). The suite's own
deselections (:func:`deselect_own`: the baseline tests without a baseline, shards 2..N's whole-run tests, also when -k
deselected those first) are no user's selection and are not counted: a shard counts the tests it could run.
"""

from __future__ import annotations

from typing import Any

import pytest

from visionaudit.selection import selection_options, selection_record

from .markers import splits_by_image
from .settings import SETTINGS_KEY
from .worker_channel import get_channel, send

OWN_KEY = pytest.StashKey[set]()  # node ids the suite itself deselected
COUNT_KEY = pytest.StashKey[dict]()  # {"deselected": n, "last_failed": n}: this process's, or the first worker's


def deselect_own(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect ``items`` for the suite's own reasons: said to pytest (its terminal counts them), not counted as the
    user's selection."""
    config.stash.setdefault(OWN_KEY, set()).update(item.nodeid for item in items)
    config.hook.pytest_deselected(items=items)


def pytest_deselected(items: list[pytest.Item]) -> None:
    if not items:
        return
    config = items[0].config
    own = config.stash.get(OWN_KEY, set())
    settings = config.stash.get(SETTINGS_KEY, None)
    # Shards 2..N deselect the tests that run whole in shard 1 (after -k/-m): counted the same whichever came first.
    later_shard = settings is not None and settings.shard is not None and not settings.shard.first
    counts = config.stash.setdefault(COUNT_KEY, {"deselected": 0})
    counts["deselected"] += sum(1 for item in items if item.nodeid not in own and (not later_shard or splits_by_image(item)))


def _last_failed(config: pytest.Config) -> int:
    """The last run's failures --lf reruns (none: it ran every test). pytest drops the tests that passed then as it
    collects them, most without a deselection to count: a subset whose whole is unknown here."""
    lf = config.pluginmanager.get_plugin("lfplugin")
    return int(getattr(lf, "_previously_failed_count", 0) or 0) if config.getoption("lf", False) else 0


@pytest.hookimpl(tryfirst=True)  # in a worker: before xdist tells the controller its collection is done
def pytest_collection_finish(session: pytest.Session) -> None:
    config = session.config
    counts = config.stash.setdefault(COUNT_KEY, {"deselected": 0})
    counts["last_failed"] = _last_failed(config)
    if hasattr(config, "workerinput"):
        send(config, {"kind": "selection", **counts})


def pytest_configure(config: pytest.Config) -> None:
    channel = get_channel(config)
    if channel is None or hasattr(config, "workerinput"):
        return

    def handler(worker: str, message: dict[str, Any]) -> None:
        if message.get("kind") == "selection" and COUNT_KEY not in config.stash:  # every worker deselects the same
            config.stash[COUNT_KEY] = {k: int(message.get(k) or 0) for k in ("deselected", "last_failed")}
    channel.subscribe(handler)


def narrowing_paths(config: pytest.Config) -> list[str]:
    """The arguments that narrow the run to part of audits/ (a file or folder inside it, or a ``::`` node id), as typed:
    they collect fewer tests without deselecting any. Naming audits/ or every test file in it is the whole run; a
    project without audits/ (a test project) is never narrowed."""
    audits = (config.rootpath / "audits").resolve()
    if not audits.is_dir():
        return []
    every = set(audits.rglob("test_*.py"))
    named, covered = [], set()
    for arg in config.args:
        path = (config.invocation_params.dir / arg.split("::")[0]).resolve()
        if "::" in arg or (path != audits and audits in path.parents):
            named.append(arg)
            covered |= set(path.rglob("test_*.py")) if path.is_dir() else {path}
    return [] if not any("::" in a for a in named) and covered >= every else named


def selection(config: pytest.Config, selected: int) -> dict[str, Any] | None:
    """``run.selection`` of this run (``selected``: the tests it collected and kept); None before collection."""
    counts = config.stash.get(COUNT_KEY, None)
    if counts is None:
        return None
    paths = narrowing_paths(config)
    return selection_record(selected, counts.get("deselected", 0), selection_options(config.option) + paths,
                            counts.get("last_failed", 0), bool(paths))
