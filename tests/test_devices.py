"""Device choice and CPU shares."""

from __future__ import annotations

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
