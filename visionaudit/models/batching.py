"""Batch sizes that fit: the default, or the size asked for, capped to what the device's free memory can
hold, so that ``--audit-batch-size 100000`` does not take 15 GB of RAM and end in the OOM killer.

The memory one image needs is estimated from a small probe batch: on CUDA its measured peak
(``torch.cuda.max_memory_allocated``); on the CPU, where PyTorch keeps no peak statistics and the heap
keeps freed buffers, the sum of every module's output size, an upper bound on the activations alive at
once. A run's processes share the memory: each one plans with an even share.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from visionaudit.devices import available_memory
from visionaudit.models.loading import LoadedModel

PROBE_IMAGES = 2
CPU_FRACTION = 0.5  # of the memory available to this machine (or container), shared by the workers
GPU_FRACTION = 0.8  # of the GPU's free memory, shared by the workers on that GPU
CPU_BATCH_SIZE = 8  # measured on a 2-core CPU with lite0 (channels_last, tuned heap): ~11 ms/image from batch 8 to 32
ACCELERATOR_BATCH_SIZE = 128


def default_batch_size(device: torch.device) -> int:
    return CPU_BATCH_SIZE if device.type == "cpu" else ACCELERATOR_BATCH_SIZE


@dataclass(frozen=True)
class BatchChoice:
    size: int
    bytes_per_image: int | None
    note: str | None  # set when the size was capped, saying why


def bytes_per_image(model: LoadedModel) -> int | None:
    """Memory one more image in a batch costs (see the module docstring); None when it cannot be probed."""
    pre = model.preprocessing
    x = torch.zeros(PROBE_IMAGES, pre.channels, pre.crop_size, pre.crop_size, device=model.device)
    if model.device.type == "cuda":
        torch.cuda.synchronize(model.device)
        torch.cuda.reset_peak_memory_stats(model.device)
        base = torch.cuda.memory_allocated(model.device)
        with torch.inference_mode():
            model.module(x)
        peak = torch.cuda.max_memory_allocated(model.device)
        return max(1, (peak - base) // PROBE_IMAGES)
    total = 0

    def count(module, args, output):
        nonlocal total
        for t in output if isinstance(output, (tuple, list)) else (output,):
            if isinstance(t, torch.Tensor):
                total += t.numel() * t.element_size()

    handles = []
    try:
        # inside the try: a TorchScript module refuses hooks ("not supported on ScriptModules"), so it is not probed
        handles.extend(m.register_forward_hook(count) for m in model.module.modules())
        with torch.inference_mode():
            model.module(x)
    except Exception:
        return None
    finally:
        for h in handles:
            h.remove()
    return max(1, (total + x.numel() * x.element_size()) // PROBE_IMAGES)


def fit_batch_size(model: LoadedModel, requested: int | None, sharing: int = 1) -> BatchChoice:
    """The batch size to use for ``model``: ``requested`` or the device's default, capped to what fits."""
    size = requested or default_batch_size(model.device)
    per_image = bytes_per_image(model) if model.device.type in ("cpu", "cuda") else None
    free = available_memory(model.device)
    if per_image is None or free is None:
        return BatchChoice(size, per_image, None)
    share = int(free * (GPU_FRACTION if model.device.type == "cuda" else CPU_FRACTION) / max(1, sharing))
    cap = max(1, share // per_image)
    note = None
    if size > cap:
        note = (f"batch size {size} capped to {cap}: a probe batch needed about {per_image / 2**20:.0f} MiB per image "
                f"and this process's share of free {model.device.type} memory is {share / 2**30:.1f} GiB")
        size = cap
    return BatchChoice(size, per_image, note)
