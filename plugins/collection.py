"""What the collected tests are (family, model, parameters, the data each reads) and, before any test
runs, whether that data is there: a missing data folder stops the run with exit code 4 and one message
naming every missing folder and how to get it, before any model loads.

Under xdist only the workers collect, so each sends this to the controller (plugins/worker_channel.py)
before xdist reports its collection, and the controller checks when the first worker's arrives.
"""

from __future__ import annotations

from typing import Any

import pytest

from visionaudit.baseline import COMPARED, data_role
from visionaudit.datasets import LABELLED, missing_data
from visionaudit.recording import to_jsonable

from .markers import family_of
from .settings import get_settings
from .worker_channel import send

STARTUP_ERROR_KEY = pytest.StashKey[str]()
# The data each fixture reads: "labelled" is --audit-images, the rest are folders under the data root.
DATA_FIXTURES = {"labelled_images": (LABELLED,), "cue_conflict_images": ("cue-conflict",)}
SHAPE_ONLY = {"edges": "edges", "filled-silhouettes": "filled-silhouettes"}


def _data_needs(item: pytest.Item) -> list[str]:
    names = getattr(item, "fixturenames", ())
    needs = [d for f in names for d in DATA_FIXTURES.get(f, ())]
    params = getattr(getattr(item, "callspec", None), "params", {})
    if "shape_only_images" in names:
        needs += [params["stimuli"]] if params.get("stimuli") in SHAPE_ONLY else list(SHAPE_ONLY)
    if "compared_with_baseline" in names and params.get("comparison") in COMPARED:
        role = data_role(COMPARED[params["comparison"]])
        needs += [role] if role else []
    return sorted(set(needs))


def collection_meta(items: list[pytest.Item]) -> dict[str, dict[str, Any]]:
    out = {}
    for item in items:
        params = dict(getattr(getattr(item, "callspec", None), "params", {}))
        out[item.nodeid] = to_jsonable({"audit": family_of(item), "model": params.pop("model", None), "params": params,
                                        "data": _data_needs(item)})
    return out


def check_data(config: pytest.Config, meta: dict[str, dict[str, Any]]) -> None:
    """Stop the run (exit 4) when data the collected tests need is missing; the collector calls it."""
    if config.getoption("collectonly") or config.stash.get(STARTUP_ERROR_KEY, None):
        return
    settings = get_settings(config)
    problems = missing_data(settings.data, settings.images, {d for m in meta.values() for d in m.get("data", ())})
    if problems:
        message = "the collected audits need data that is not there (no test was run):\n  " + "\n  ".join(problems)
        config.stash[STARTUP_ERROR_KEY] = message
        pytest.exit(message, returncode=pytest.ExitCode.USAGE_ERROR)


@pytest.hookimpl(tryfirst=True)  # in a worker: before xdist tells the controller its collection is done
def pytest_collection_finish(session: pytest.Session) -> None:
    if hasattr(session.config, "workerinput"):
        send(session.config, {"kind": "tests", "tests": collection_meta(session.items)})
