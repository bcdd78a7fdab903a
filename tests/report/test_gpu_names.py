"""The run record's GPU names read from the NVIDIA driver's own list, without torch (the xdist controller writes the
run record at start-up and never imports torch): a driver folder laid out as Linux's /proc/driver/nvidia/gpus."""

from __future__ import annotations

from pathlib import Path

import pytest

from visionaudit.report.assembly import _driver_gpu_names


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
    assert _driver_gpu_names(root) == expected


def test_no_driver_list_or_an_unreadable_one_asks_torch(tmp_path):
    assert _driver_gpu_names(tmp_path / "absent") is None
    root = _driver(tmp_path, "NVIDIA H100 80GB HBM3")
    (next(root.iterdir()) / "information").write_text("IRQ: 42\n")
    assert _driver_gpu_names(root) is None
