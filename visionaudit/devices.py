"""Device choice: the one place that decides where a model runs, how many CPU threads it gets, and
how CPU inference uses memory."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from visionaudit.errors import DeviceError

if TYPE_CHECKING:
    import torch

# torch is imported by the functions that need it, not by this module: the settings plugin checks --device on the
# xdist controller, which never imports torch for ``cpu`` or ``auto`` (benchmarks/phases.py times the start-up).


def _mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def resolve_device(requested: str = "auto", worker_index: int | None = None, asked: str | None = None) -> torch.device:
    """Turn ``auto|cpu|cuda|cuda:N|mps`` into a concrete device.

    ``auto`` takes CUDA when present, then MPS, then the CPU. Under several worker processes
    (``worker_index`` given), ``auto`` and a bare ``cuda`` spread the workers over the GPUs as
    ``worker_index % gpu_count``; ``cuda:N`` is taken as given. ``asked``: where the device was asked for, in
    refusals (default ``--device X``; audit.toml's ``[run] device = "X"``).
    """
    import torch

    asked = asked or f"--device {requested}"

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
            raise DeviceError(f"{asked} was asked for, but MPS is not available here; use --device auto or cpu")
        return torch.device("mps")
    if req == "cuda" or req.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise DeviceError(
                f"{asked} was asked for, but torch sees no CUDA GPU "
                f"(torch {torch.__version__}, CUDA build {torch.version.cuda}); use --device auto or cpu"
            )
        count = torch.cuda.device_count()
        if req == "cuda":
            return torch.device("cuda", (worker_index or 0) % count)
        try:
            index = int(req.split(":", 1)[1])
        except ValueError:
            raise DeviceError(f"{asked}: the GPU index must be a whole number, as in cuda:0") from None
        if not 0 <= index < count:
            raise DeviceError(f"{asked}: there are {count} CUDA GPU(s), numbered 0 to {count - 1}")
        return torch.device("cuda", index)
    where = "" if asked == f"--device {requested}" else f"{asked}: "
    raise DeviceError(f"{where}unknown device {requested!r}: use auto, cpu, cuda, cuda:N or mps")


def cpu_thread_share(worker_count: int | None, cpu_count: int | None = None) -> int:
    """An even share of the CPU cores for one of ``worker_count`` processes (at least one)."""
    if cpu_count is None:
        cpu_count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cpu_count // max(1, worker_count or 1))



# glibc mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_heap_tuned = False


def retain_freed_cpu_memory() -> bool:
    """Keep freed activation buffers in the process heap instead of handing them back to the OS.

    Why: glibc serves large allocations (over a threshold that adapts up to 32 MiB) with a fresh mmap
    and unmaps them on free, and trims the heap's free top back to the OS, so each CPU forward pass
    page-faults its activations in again. On the project's 2-core machine that was a third of lite0's
    CPU time (sys time), and batch 32 ran at half the per-image speed of batch 8. Serving allocations
    up to 1 GiB from the heap and trimming only past 1 GiB free gives lite0 the same speed from batch 8
    to 32 and about 1.5x at batch 8 (what PyTorch's CPU tuning guide gets by preloading jemalloc or
    tcmalloc). The cost: a process keeps up to its peak heap until it ends. Process-wide and
    idempotent; a no-op off glibc. Returns whether the heap is tuned.
    """
    global _heap_tuned
    if _heap_tuned or not sys.platform.startswith("linux"):
        return _heap_tuned
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _heap_tuned = bool(
        mallopt(_M_MMAP_THRESHOLD, 1 << 30) and mallopt(_M_TRIM_THRESHOLD, 1 << 30) and mallopt(_M_TOP_PAD, 64 << 20)
    )
    if _heap_tuned and hasattr(libc, "mallinfo2") and hasattr(libc, "malloc_trim"):  # glibc >= 2.33
        global _libc
        libc.mallinfo2.restype = _MallInfo2
        libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
        _libc = libc
    return _heap_tuned


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


_libc = None
HEAP_FREE_LIMIT = 128 << 20  # growth of the process, with as much free in the heap, before that goes back to the OS
_resident_after_trim: int | None = None


def _resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def release_heap_fragments(limit: int = HEAP_FREE_LIMIT) -> bool:
    """Hand the tuned heap's free memory back to the OS when the process has grown by more than ``limit``
    bytes since the last time (or the first call) and the heap holds that much free.

    Why: with :func:`retain_freed_cpu_memory`, buffers up to 1 GiB come from malloc's arenas and are
    never trimmed. Threads that decode images of many sizes (a streamed image set) free them into their
    own arenas, where later allocations of other sizes do not reuse them: streaming 10,000 images grew a
    process by 4 GB while 160 MB were in use. Called once per streamed batch, this trims
    (``malloc_trim``) every ``limit`` of growth, every few seconds at most, so the forward passes rarely
    fault their activations in again. A no-op when the heap is not tuned. Returns whether it trimmed.
    """
    global _resident_after_trim
    if _libc is None:
        return False
    resident = _resident_bytes()
    if _resident_after_trim is None or resident < _resident_after_trim:
        _resident_after_trim = resident
    if resident - _resident_after_trim <= limit or _libc.mallinfo2().fordblks <= limit:
        return False  # trimmed pages still count as free in mallinfo: growth says whether there is more
    _libc.malloc_trim(0)
    _resident_after_trim = _resident_bytes()
    return True


def check_device(requested: str, asked: str | None = None) -> None:
    """Stop on a ``--device`` (``asked``: where else it was asked for) that cannot work, before any model loads: a
    misspelling, or a GPU asked for that is not there. ``auto`` and ``cpu`` always work, so they are checked without
    importing torch."""
    req = (requested or "auto").strip().lower()
    if req not in ("auto", "cpu"):
        resolve_device(requested, asked=asked)


def inference_memory_format(device: torch.device, batch: torch.Tensor) -> torch.memory_format:
    """Layout for a normalized input batch: channels_last for float32 images on the CPU, where oneDNN's
    NHWC convolutions ran lite0 about 1.5x faster on the project's machine; as given elsewhere (a GPU's
    best layout depends on the model and dtype, so it is left to the user's model)."""
    import torch

    if device.type == "cpu" and batch.dim() == 4 and batch.dtype == torch.float32 and batch.shape[1] > 1:
        return torch.channels_last
    return torch.contiguous_format


def use_exact_float32(device: torch.device) -> None:
    """Run float32 work on CUDA in float32, not TF32.

    Why: PyTorch lets cuDNN convolutions use TF32 on Ampere and later GPUs by default (10-bit mantissa).
    On an H200 that moved lite0's logits by about 5e-3 between two exactly equivalent models and failed
    every conversion audit (bound 1e-3), and it would make every reported number depend on the GPU. The
    audits measure a model's float32 behaviour, so TF32 is off for convolutions and matrix products;
    reduced precision is audited on purpose, as its own deployment form (fp16_cuda). Process-wide.
    """
    if device.type == "cuda":
        import torch

        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False


def available_memory(device: torch.device | str) -> int | None:
    """Bytes free for new allocations on ``device`` (the host's available memory for the CPU, within a
    container's limit when there is one); None when it cannot be told."""
    kind = device if isinstance(device, str) else device.type  # "cpu": asked without importing torch
    if kind == "cuda":
        import torch

        return int(torch.cuda.mem_get_info(device)[0])
    if kind != "cpu":
        return None
    try:
        meminfo = dict(line.split(":", 1) for line in open("/proc/meminfo").read().splitlines() if ":" in line)
        free = int(meminfo["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return None
    try:  # cgroup v2: a container's limit may be far below the host's memory
        limit = open("/sys/fs/cgroup/memory.max").read().strip()
        used = int(open("/sys/fs/cgroup/memory.current").read().strip())
        if limit != "max":
            free = min(free, int(limit) - used)
    except (OSError, ValueError):
        pass
    return max(0, free)


def _no_gpu_driver() -> bool:
    """No GPU can be visible here: none allowed (``CUDA_VISIBLE_DEVICES`` empty) or no NVIDIA/ROCm driver. Then torch
    sees none either, and it need not be imported (and CUDA started) to say so."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return True
    return sys.platform.startswith("linux") and not any(os.path.exists(p) for p in ("/proc/driver/nvidia/version", "/dev/nvidia0",
                                                                                    "/dev/kfd"))


def _driver_gpu_names(root: Path = Path("/proc/driver/nvidia/gpus")) -> list[str] | None:
    """The visible NVIDIA GPUs' names as the driver lists them (its ``Model:`` line: the name CUDA reports), without
    torch: the xdist controller writes the run record at start-up and never imports torch. None where the driver's
    list is not there or ``CUDA_VISIBLE_DEVICES`` names GPUs otherwise than by index (UUIDs, MIG): then torch is asked."""
    if not root.is_dir():
        return None
    names = []
    for gpu in sorted(root.iterdir()):  # by PCI bus id (CUDA's default order may differ on a machine of mixed GPUs)
        found = re.search(r"^Model:\s*(.+?)\s*$", (gpu / "information").read_text(errors="replace"), re.M)
        if found is None:
            return None
        names.append(found.group(1))
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return names
    picked = []
    for part in (p.strip() for p in visible.split(",")):
        if not part.isdigit():
            return None
        if int(part) >= len(names):
            break  # CUDA stops at the first index that names no device
        picked.append(names[int(part)])
    return picked


def gpu_names() -> list[str]:
    """The names of the GPUs this process can see (the report's ``run.gpus``), asked of torch only where the driver
    cannot tell them: the xdist controller writes the run record at start-up and never imports torch."""
    if "torch" not in sys.modules:
        if _no_gpu_driver():
            return []
        named = _driver_gpu_names()
        if named is not None:
            return named
    import torch

    if not torch.cuda.is_available():
        return []
    return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
