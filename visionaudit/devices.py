"""Device choice: the one place that decides where a model runs and how many CPU threads it gets."""

from __future__ import annotations

import os

import torch

from .errors import DeviceError


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def resolve_device(requested: str = "auto", worker_index: int | None = None) -> torch.device:
    """Turn ``auto|cpu|cuda|cuda:N|mps`` into a concrete device.

    ``auto`` takes CUDA when present, then MPS, then the CPU. Under several worker processes
    (``worker_index`` given), ``auto`` and a bare ``cuda`` spread the workers over the GPUs as
    ``worker_index % gpu_count``; ``cuda:N`` is taken as given.
    """
    req = (requested or "auto").strip().lower()
    if req == "auto":
        if torch.cuda.is_available():
            req = "cuda"
        elif _mps_available():
            return torch.device("mps")
        else:
            return torch.device("cpu")
    if req == "cpu":
        return torch.device("cpu")
    if req == "mps":
        if not _mps_available():
            raise DeviceError("--device mps was asked for, but MPS is not available here; use --device auto or cpu")
        return torch.device("mps")
    if req == "cuda" or req.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise DeviceError(
                f"--device {requested} was asked for, but torch sees no CUDA GPU "
                f"(torch {torch.__version__}, CUDA build {torch.version.cuda}); use --device auto or cpu"
            )
        count = torch.cuda.device_count()
        if req == "cuda":
            return torch.device("cuda", (worker_index or 0) % count)
        try:
            index = int(req.split(":", 1)[1])
        except ValueError:
            raise DeviceError(f"--device {requested}: the GPU index must be a whole number, as in cuda:0") from None
        if not 0 <= index < count:
            raise DeviceError(f"--device {requested}: there are {count} CUDA GPU(s), numbered 0 to {count - 1}")
        return torch.device("cuda", index)
    raise DeviceError(f"unknown device {requested!r}: use auto, cpu, cuda, cuda:N or mps")


def cpu_thread_share(worker_count: int | None, cpu_count: int | None = None) -> int:
    """An even share of the CPU cores for one of ``worker_count`` processes (at least one)."""
    if cpu_count is None:
        cpu_count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cpu_count // max(1, worker_count or 1))

