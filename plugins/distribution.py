"""Spreading audits over pytest-xdist workers: a model's audits on one worker where that saves loads.

xdist's own ``loadgroup`` mode cannot be used: it tags node ids through a private attribute that
pytest 9.2 no longer reads, so the groups silently vanish. We give xdist a scheduler instead that
takes the model id from each test id as its scope.
"""

from __future__ import annotations

import pytest

from visionaudit.devices import cpu_thread_share
from visionaudit.families import families

from .collector import get_collector
from .settings import get_settings, worker_count, worker_index


def _dist_given(config: pytest.Config) -> bool:
    return any(a == "-d" or a.startswith("--dist") for a in config.invocation_params.args)


def model_scope(nodeid: str, model_ids: list[str], meta: dict | None = None) -> str:
    """The model a test id belongs to (its scope), or the id itself when it names none."""
    mid = model_of(nodeid, model_ids, meta)
    return f"model:{mid}" if mid else nodeid


def model_of(nodeid: str, model_ids: list[str], meta: dict | None = None) -> str | None:
    """The model of the run a test audits: from its parametrization where ``meta``, what its worker's collection said
    of it (plugins.data_check.collection_meta), is at hand; else from its id's brackets, where a short model id (a
    name such as ``3``) can be mistaken for another parameter's (``test_c[x-gaussian_noise-3]``)."""
    if meta is not None:
        return meta.get("model") if meta.get("model") in model_ids else None
    if not nodeid.endswith("]") or "[" not in nodeid:
        return None
    params = nodeid[nodeid.index("[") + 1 : -1]
    for mid in sorted(model_ids, key=len, reverse=True):
        if params == mid or params.startswith(mid + "-") or params.endswith("-" + mid) or f"-{mid}-" in params:
            return mid
    return None


def pytest_configure(config: pytest.Config) -> None:
    if worker_index() is not None:
        # Each worker takes an even share of the cores, not all of them each (torch imported here: in a worker, not
        # in the controller, which never imports it).
        import torch

        torch.set_num_threads(cpu_thread_share(worker_count()))


def control_scope(meta: dict | None) -> str | None:
    """A random-init control's tests (its channel-bias control, its conversion zoo's directions) on one worker, one
    after another: that worker builds the architecture once (fixtures/models.py keeps the last control built)."""
    return f"control:{meta['model']}" if meta and meta.get("control") and meta.get("model") else None


def family_scope(nodeid: str, family: str | None, model_ids: list[str], meta: dict | None = None) -> str:
    """The scope of a test when models are not grouped whole: its family and model when its family's
    descriptor asks for one worker per model (its tests share a computation one of them reads whole), the
    family it shares a worker with (``Family.shares_worker_with``: whose work it reuses) and model when it
    names one, else the test id itself."""
    descriptor = families().get(family) if family else None
    if descriptor is None or not (descriptor.one_worker_per_model or descriptor.shares_worker_with):
        return nodeid
    mid = model_of(nodeid, model_ids, meta)
    return f"{descriptor.shares_worker_with or family}:{mid}" if mid else nodeid


@pytest.hookimpl(optionalhook=True)  # so that -p no:xdist still runs
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """Group by model when there are at least as many models as workers; else keep each model's tests of a
    family that asks for it together (``Family.one_worker_per_model``: baseline comparisons, corruption
    conditions), so that what they share is computed once, on one worker, and the rest spread test by test.

    With fewer models than workers, grouping by model would idle workers; loading a model twice costs less.
    An explicit ``--dist`` is left alone.
    """
    models = list(get_settings(config).models)
    workers = len(config.getvalue("tx") or ())
    if _dist_given(config) or config.getvalue("dist") != "load":
        return None
    by_model = len(models) >= max(2, workers)
    from xdist.scheduler import LoadScopeScheduling

    def meta(nodeid: str) -> dict | None:
        """What the workers' collection said of the test (its family, its model), sent before they report it."""
        collector = get_collector(config)
        return collector.meta.get(nodeid) if collector else None

    class ModelScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            said = meta(nodeid)
            if control_scope(said):
                return control_scope(said)
            if by_model:
                return model_scope(nodeid, models, said)
            return family_scope(nodeid, (said or {}).get("audit"), models, said)

        def _reschedule(self, node):
            """As xdist's, except for a replacement worker still collecting (in ``assigned_work`` from its
            workerready, in ``registered_collections`` only from its collectionfinish, which schedules it then):
            xdist's would pop a unit for it and raise KeyError looking up its collection, an INTERNALERROR from
            a collection or, from a crash, a crash never reported and a unit lost (pytest-xdist #1189, #1362, #714;
            PR #1299 proposes this guard)."""
            if node in self.registered_collections:
                super()._reschedule(node)

        def remove_node(self, node):
            """As xdist's, except that the test that took its worker down is not queued again: xdist's scope
            scheduler would hand it to the replacement worker, which it would take down too, until the run's
            worker restarts ran out (LoadScheduling, xdist's default, reports it crashed and goes on)."""
            workload = self.assigned_work.pop(node)
            if not self._pending_of(workload):
                return None
            crashitem = next(nodeid for unit in workload.values() for nodeid, done in unit.items() if not done)
            for unit in workload.values():
                unit.pop(crashitem, None)
            self.workqueue.update({scope: unit for scope, unit in workload.items() if not all(unit.values())})
            for other in self.assigned_work:
                self._reschedule(other)
            return crashitem

    return ModelScheduling(config, log)
