"""The JPEG round trip ImageNet-C's files went through (PIL's ``save(quality=85, optimize=True)``), and which codec
makes it.

- ``libjpeg`` (the default): torchvision's libjpeg encode and decode on the CPU, which give PIL's pixels exactly
  (tests/families/corruption/test_corruption_jpeg.py holds them to PIL; ``optimize`` only shortens the Huffman
  tables, not the pixels).
- ``nvjpeg`` (``[audits.corruption] jpeg_on_device = true``, on a CUDA model): torchvision's nvJPEG encode and
  decode on the model's GPU. Not PIL's pixels: torchvision's nvJPEG encoder keeps the colour at full resolution
  (4:4:4, where PIL and libjpeg subsample it 4:2:0 at quality 85) and nvJPEG decodes with its own implementation, so
  a condition's error can move (tests/families/corruption/test_corruption_jpeg.py measures how far from PIL's
  pixels, on a CUDA machine). Hence not the default; every entry's protocol names the codec that ran
  (``jpeg_codec``), and the baseline gate compares only runs of the same codec.

The codecs are called through the operators torchvision's ``encode_jpeg`` / ``decode_jpeg`` run (torchvision is
pinned at 0.29.1): those functions warn of their deprecation on every call, and silencing that with
``warnings.catch_warnings`` is not thread-safe, while the round trip runs in the threads ahead of the device
(visionaudit.families.corruption.ahead).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported where images are encoded: the family's descriptor reads this module's
    import torch  # names on the xdist controller, which never imports torch

JPEG_QUALITY = 85
CPU_CODEC = "libjpeg"
CUDA_CODEC = "nvjpeg"


def codec_for(device: torch.device, on_device: bool) -> str:
    """The codec a model on ``device`` gets: nvJPEG only where asked and the model is on a CUDA device (elsewhere
    the model's device has no JPEG codec of torchvision's but the CPU's)."""
    import torch

    return CUDA_CODEC if on_device and torch.device(device).type == "cuda" else CPU_CODEC


def jpeg_round_trip(batch: torch.Tensor, quality: int = JPEG_QUALITY, codec: str = CPU_CODEC) -> torch.Tensor:
    """Encode and decode each uint8 ``(3, H, W)`` image of ``batch`` as JPEG at ``quality`` with ``codec``; the
    result is on ``batch``'s device."""
    import torch
    import torchvision.io.image  # noqa: F401  (loads torchvision's image operators, torch.ops.image)
    from torchvision.io import ImageReadMode

    rgb = ImageReadMode.RGB.value
    if codec == CUDA_CODEC:
        if batch.device.type != "cuda":
            raise ValueError(f"the nvjpeg codec runs on a CUDA device; the batch is on {batch.device}")
        encoded = torch.ops.image.encode_jpegs_cuda(list(batch.contiguous()), quality)
        # nvJPEG's decoder reads the bytes from host memory; the pixels come back on the batch's GPU
        decoded = torch.ops.image.decode_jpegs_cuda([e.cpu() for e in encoded], rgb, batch.device)
        return torch.stack(decoded)
    if codec != CPU_CODEC:
        raise ValueError(f"unknown JPEG codec {codec!r}; known: {CPU_CODEC}, {CUDA_CODEC}")
    cpu = batch.cpu()
    decoded = [torch.ops.image.decode_jpeg(torch.ops.image.encode_jpeg(image, quality), rgb, False) for image in cpu]
    return torch.stack(decoded).to(batch.device)
