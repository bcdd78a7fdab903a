"""Spreading audits over pytest-xdist workers: one model per worker where that saves loads, fair CPU shares."""

from __future__ import annotations

import pytest
import torch

from visionaudit.devices import cpu_thread_share

from .settings import get_settings, worker_count, worker_index


def _dist_given(config: pytest.Config) -> bool:
    return any(a == "-d" or a.startswith("--dist") for a in config.invocation_params.args)


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    # Controller: -n N without --dist means "load"; switch to "loadgroup" so the xdist_group marks
    # added below keep a model's audits on one worker. An explicit --dist is left alone.
    if getattr(config.option, "dist", "no") == "load" and not _dist_given(config):
        config.option.dist = "loadgroup"
    if worker_index() is not None:
        # Each worker takes an even share of the cores, not all of them each.
        torch.set_num_threads(cpu_thread_share(worker_count()))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Group a model's audits onto one worker when there are at least as many models as workers.

    With fewer models than workers, grouping would idle workers; loading a model twice costs less.
    """
    if worker_index() is None or len(get_settings(config).models) < worker_count():
        return
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "model" in callspec.params:
            item.add_marker(pytest.mark.xdist_group(f"model-{callspec.params['model']}"))
