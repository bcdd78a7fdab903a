"""What the collected tests are (family, model, parameters, the data each reads) and, before any test
runs, whether that data is there: with no data root given, what is missing is fetched into the user cache
first (visionaudit/data/provision.py); a data folder still missing stops the run with exit code 4 and one
message naming every missing folder and how to get it, before any model loads.

Under xdist only the workers collect, so each sends this to the controller (plugins/worker_channel.py)
before xdist reports its collection, and the controller checks when the first worker's arrives.
"""

from __future__ import annotations

from typing import Any

import pytest

from visionaudit.data.image_sets import LABELLED
from visionaudit.data.provision import provide
from visionaudit.families.baseline import COMPARED, data_role
from visionaudit.files import to_jsonable

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


class _TerminalLog:
    """A text stream onto pytest's terminal, for the download's progress and terms (uncaptured, even mid-collection)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.pending = ""

    def write(self, text: str) -> int:
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        capman = self.config.pluginmanager.get_plugin("capturemanager")
        for line in lines:
            if tr is None:
                continue
            if capman is not None:
                with capman.global_and_fixture_disabled():
                    tr.write_line(line)
            else:
                tr.write_line(line)
        return len(text)

    def flush(self) -> None:
        pass


def check_data(config: pytest.Config, meta: dict[str, dict[str, Any]]) -> None:
    """Stop the run (exit 4) when data the collected tests need is missing; the collector calls it."""
    if config.getoption("collectonly") or config.stash.get(STARTUP_ERROR_KEY, None):
        return
    settings = get_settings(config)
    needs = {d for m in meta.values() for d in m.get("data", ())}
    # Here, on the controller before any test runs (under xdist: at the first worker's collection), and once:
    # the next worker's check finds the data in place.
    problems = provide(settings.data, settings.images, needs, settings.offline, _TerminalLog(config))
    if problems:
        message = "the collected audits need data that is not there (no test was run):\n  " + "\n  ".join(problems)
        config.stash[STARTUP_ERROR_KEY] = message
        pytest.exit(message, returncode=pytest.ExitCode.USAGE_ERROR)


@pytest.hookimpl(tryfirst=True)  # in a worker: before xdist tells the controller its collection is done
def pytest_collection_finish(session: pytest.Session) -> None:
    if hasattr(session.config, "workerinput"):
        send(session.config, {"kind": "tests", "tests": collection_meta(session.items)})
