"""Device choice and CPU shares."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from visionaudit import devices
from visionaudit.errors import DeviceError


@pytest.fixture
def fake_gpus(monkeypatch):
    def install(count: int):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    return install


def test_auto_without_gpu_is_cpu(fake_gpus, monkeypatch):
    fake_gpus(0)
    monkeypatch.setattr(devices, "_mps_available", lambda: False)
    assert devices.resolve_device("auto") == torch.device("cpu")


def test_auto_spreads_workers_over_gpus(fake_gpus):
    fake_gpus(4)
    assert [devices.resolve_device("auto", w).index for w in range(6)] == [0, 1, 2, 3, 0, 1]
    assert devices.resolve_device("cuda", 5) == torch.device("cuda", 1)
    assert devices.resolve_device("cuda:2", 5) == torch.device("cuda", 2)  # explicit index is kept


def test_cuda_errors(fake_gpus):
    fake_gpus(0)
    with pytest.raises(DeviceError, match="no CUDA GPU.*--device auto or cpu"):
        devices.resolve_device("cuda")
    fake_gpus(2)
    with pytest.raises(DeviceError, match="there are 2 CUDA GPU"):
        devices.resolve_device("cuda:2")
    with pytest.raises(DeviceError, match="unknown device 'tpu'"):
        devices.resolve_device("tpu")


def test_cpu_thread_share():
    assert devices.cpu_thread_share(2, cpu_count=16) == 8
    assert devices.cpu_thread_share(3, cpu_count=16) == 5
    assert devices.cpu_thread_share(4, cpu_count=2) == 1
    assert devices.cpu_thread_share(None, cpu_count=6) == 6


_PAGE_FAULTS = """
import resource, sys, torch
from visionaudit.devices import retain_freed_cpu_memory
print(retain_freed_cpu_memory() if sys.argv[1] == "tuned" else False)
def forward():  # activations the size of lite0's at batch 8, each alive while the next is made
    previous = None
    for mb in (13, 38, 10, 25, 6, 19, 3):
        previous = torch.empty(mb << 18).fill_(1.0)
forward()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    forward()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc heap tuning is Linux-only")
@pytest.mark.slow(data=False)
def test_retained_heap_stops_page_faults_on_reuse():
    # Process-wide setting, so each variant runs in its own interpreter.
    def faults(variant):
        out = subprocess.run([sys.executable, "-c", _PAGE_FAULTS, variant], check=True, capture_output=True, text=True)
        tuned, count = out.stdout.split()
        return tuned == "True", int(count)

    untuned, tuned = faults("default"), faults("tuned")
    assert tuned[0], "mallopt refused the settings"
    # Ten passes of 114 MB freshly mapped would be about 280,000 faults of 4 KiB pages; reused heap
    # memory takes few (measured here: about 116,000 with glibc's defaults, 19,000 tuned).
    assert untuned[1] > 50_000 and tuned[1] < untuned[1] / 3, (untuned, tuned)


def test_inference_memory_format():
    cpu, cuda = torch.device("cpu"), torch.device("cuda", 0)
    rgb = torch.zeros(2, 3, 8, 8)
    assert devices.inference_memory_format(cpu, rgb) == torch.channels_last
    assert devices.inference_memory_format(cuda, rgb) == torch.contiguous_format
    assert devices.inference_memory_format(cpu, rgb.double()) == torch.contiguous_format  # exact float64 runs
    assert devices.inference_memory_format(cpu, torch.zeros(2, 1, 8, 8)) == torch.contiguous_format


def test_channels_last_inference_matches_the_plain_forward():
    from visionaudit.models.inference import predict_logits
    from visionaudit.models.loading import load_model

    model = load_model("torchvision:resnet18:none", "cpu")
    images = torch.randint(0, 256, (4, 3, 224, 224), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        plain = model.module(model.preprocessing.normalize(images).contiguous())
    suite = predict_logits(model, images)
    torch.testing.assert_close(suite, plain, rtol=1e-4, atol=1e-4)
    assert torch.equal(suite.argmax(1), plain.argmax(1))


def test_cuda_models_run_float32_without_tf32():
    """cuDNN's TF32 default moved lite0's logits by 5e-3 on an H200; loading onto CUDA turns it off."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True  # PyTorch's cuDNN default, and worse
        devices.use_exact_float32(torch.device("cpu"))
        assert torch.backends.cudnn.allow_tf32  # a CPU run changes nothing
        devices.use_exact_float32(torch.device("cuda", 0))
        assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


# The run record's GPU names read from the NVIDIA driver's own list, without torch (the xdist controller writes the run
# record at start-up and never imports torch): a driver folder laid out as Linux's /proc/driver/nvidia/gpus.


def _driver(tmp_path: Path, *models: str) -> Path:
    root = tmp_path / "gpus"
    for i, model in enumerate(models):
        gpu = root / f"0000:{i + 0x18:02x}:00.0"
        gpu.mkdir(parents=True)
        (gpu / "information").write_text(f"Model: \t\t {model}\nIRQ:\t\t 42\nGPU UUID: \t GPU-{i}\nBus Type: \t PCIe\n")
    return root


@pytest.mark.parametrize("visible, expected", [
    (None, ["NVIDIA H100 80GB HBM3", "NVIDIA A10G"]),
    ("1", ["NVIDIA A10G"]),
    ("1,0", ["NVIDIA A10G", "NVIDIA H100 80GB HBM3"]),
    ("0,7,1", ["NVIDIA H100 80GB HBM3"]),  # CUDA stops at the first index that names no device
    ("GPU-0", None),  # by UUID: torch is asked
])
def test_the_drivers_list_as_cuda_would_show_it(tmp_path, monkeypatch, visible, expected):
    root = _driver(tmp_path, "NVIDIA H100 80GB HBM3", "NVIDIA A10G")
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert devices._driver_gpu_names(root) == expected


def test_no_driver_list_or_an_unreadable_one_asks_torch(tmp_path):
    assert devices._driver_gpu_names(tmp_path / "absent") is None
    root = _driver(tmp_path, "NVIDIA H100 80GB HBM3")
    (next(root.iterdir()) / "information").write_text("IRQ: 42\n")
    assert devices._driver_gpu_names(root) is None
