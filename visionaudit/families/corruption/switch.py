"""The corruption family's threads-ahead switch, ``[audits.corruption] batches_ahead``: its values, each device's
default, and where a number asked cannot be honoured (then each batch is prepared in turn, and the run says why).
The threads themselves are visionaudit.families.corruption.ahead; this module imports no torch, since the family's
descriptor (which declares the switch's range) is read on the xdist controller, which never imports torch.

On a CPU device the forward pass uses every core, so a thread ahead only overlaps the single-threaded parts (the
JPEG codec, the per-image draws): :data:`CPU_AHEAD` is 1, measured never slower than in turn beyond the noise
(benchmarks/corruptions.py ``--ahead``, docs/corruption.md). On a CUDA device the kernels and the model run on the
GPU and the CPU work is what it waits for: :data:`CUDA_AHEAD`.
"""

from __future__ import annotations

from typing import Any

from visionaudit.families.corruption.jpeg import CUDA_CODEC

AUTO_AHEAD = "auto"  # the device's default (:func:`default_ahead`)
MAX_AHEAD = 8  # the most a user may ask for: each batch ahead holds a kernel's working set in memory
CPU_AHEAD = 1  # see the module docstring
# GPU hosts: two threads, not more: a kernel's working set on the device is 27 to 78 times its uint8 batch (measured
# in review), and the batch size was fitted to the model alone. Unmeasured on a GPU so far (docs/corruption.md).
CUDA_AHEAD = 2


def device_type(device: Any) -> str:
    """``cpu``, ``cuda``, ``mps``, ... of a torch.device or its name (``cuda:1``), without importing torch."""
    return str(getattr(device, "type", None) or device).split(":")[0]


def default_ahead(device: Any) -> int:
    """Batches prepared ahead of the device by default (0: each batch in turn, by the reader). Only the CPU and CUDA:
    PyTorch's MPS backend crashes the process when two threads run tensor ops at once (pytorch#197805)."""
    kind = device_type(device)
    return CPU_AHEAD if kind == "cpu" else CUDA_AHEAD if kind == "cuda" else 0


def resolve_ahead(device: Any, asked: int | str | None, codec: str) -> tuple[int, str | None]:
    """The batches prepared ahead for a model on ``device`` whose JPEG round trip runs with ``codec``, given the
    user's ``asked`` (``"auto"`` or None: the device's default; a whole number 0 to :data:`MAX_AHEAD`), and, where a
    number asked cannot be honoured, why, in words (the run records it, the summary says it; in turn then).

    Not honoured: on a device other than the CPU and CUDA (PyTorch's MPS backend crashes when two threads run tensor
    ops at once), and with the nvJPEG codec (its decode, called from another thread than the forward pass's, can be
    handed GPU memory that pass still reads: pytorch/vision#9606)."""
    kind = device_type(device)
    if asked is None or asked == AUTO_AHEAD:
        return (0 if codec == CUDA_CODEC else default_ahead(device)), None
    if isinstance(asked, bool) or not isinstance(asked, int) or not 0 <= asked <= MAX_AHEAD:
        raise ValueError(f"batches ahead must be {AUTO_AHEAD!r} or a whole number 0 to {MAX_AHEAD}, got {asked!r}")
    if asked == 0:
        return 0, None
    if kind not in ("cpu", "cuda"):
        return 0, (f"batches_ahead = {asked} is set but the model runs on {kind}: each batch was prepared in turn "
                   f"(PyTorch's {kind.upper()} backend crashes when two threads run tensor ops at once)")
    if codec == CUDA_CODEC:
        return 0, (f"batches_ahead = {asked} is set but the JPEG round trip runs with nvJPEG (jpeg_on_device): each batch "
                   "was prepared in turn (nvJPEG's decode from another thread can be handed GPU memory the forward pass "
                   "still reads, pytorch/vision#9606)")
    return asked, None
