"""A model load that kills its process (a segfault in native code, a library's ``os._exit``): no exception is raised,
so the model fixture cannot say it. The worker tells the controller, through the channel (plugins/worker_channel.py),
as each load begins and ends; the collector journals the start, and when a worker dies with a load begun and not
ended, the model's report entry says that its load crashed the worker, not that no test got as far as loading it."""

from __future__ import annotations

import signal

import pytest

from .worker_channel import send

# the channel message's kind: {"kind", "state": "start" | "end", "model", "spec", "canonical", "info"} (info: the loaded
# model's report entry, on an end after a load that returned)
LOADING = "model_load"
EXIT_WAIT_SECONDS = 2.0  # a dead worker's process is reaped at once; this only bounds a wait that should not happen


def note_loading(config: pytest.Config, state: str, model_id: str, spec: str = "", canonical: str | None = None,
                 info: dict | None = None) -> None:
    """From the process that loads ``model_id`` (fixtures/models.py): its load begins (``start``) or is over (``end``,
    with ``info``, the model's entry, where it loaded; one that did not is reported by its fixture)."""
    send(config, {"kind": LOADING, "state": state, "model": model_id, "spec": spec, "canonical": canonical, "info": info})


def how_it_ended(node) -> str | None:
    """How an xdist worker's process ended ("signal 11, SIGSEGV", "exit status 7"), or None where it cannot be told
    (execnet keeps the process in a private attribute: a version without it says less, and nothing breaks)."""
    popen = getattr(getattr(getattr(node, "gateway", None), "_io", None), "popen", None)
    if popen is None:
        return None
    try:
        code = popen.wait(timeout=EXIT_WAIT_SECONDS)
    except Exception:  # best effort: a popen of another kind, another execmodel's TimeoutExpired, ... say less
        return None
    if code is None:
        return None
    if code < 0:
        try:
            return f"signal {-code}, {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit status {code}"


def load_crash_error(worker: str, how: str | None, fault: str) -> str:
    """The models section's ``error`` of a model whose load killed its worker; first line short (the verdict's reason,
    compare and a baseline's refusal show it), faulthandler's traceback after it where the worker left one."""
    text = (f"the worker crashed{f' ({how})' if how else ''} while loading this model: worker {worker}'s process died "
            "during the load")
    return text + (f"\nits fatal-error traceback (faulthandler):\n{fault}" if fault else "")
