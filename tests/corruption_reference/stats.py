"""Summary statistics shared by make_reference.py (run in the reference's environment) and
tests/families/corruption/test_corruption_kernels.py: numpy only, so both sides compute them the same way.

All take uint8 HWC arrays (the reference's layout)."""

from __future__ import annotations

import numpy as np

BANDS = 8  # radial frequency bands, from DC to the Nyquist corner


def grey(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def band_power(img: np.ndarray) -> np.ndarray:
    """log10 of the mean power spectrum of the grey image in BANDS radial bands (DC excluded)."""
    g = grey(img)
    g = g - g.mean()
    p = np.abs(np.fft.fft2(g)) ** 2
    fy = np.fft.fftfreq(g.shape[0])[:, None]
    fx = np.fft.fftfreq(g.shape[1])[None, :]
    r = np.sqrt(fy ** 2 + fx ** 2) / np.sqrt(0.5)  # 0 at DC, 1 at the corner
    idx = np.minimum((r * BANDS).astype(int), BANDS - 1)
    out = np.array([p[(idx == b) & (r > 0)].mean() for b in range(BANDS)])
    return np.log10(out + 1e-12)


def summary(clean: np.ndarray, corrupted: np.ndarray) -> dict:
    """What the distribution tests compare between the reference's output and ours."""
    c = clean.astype(np.float64)
    d = corrupted.astype(np.float64)
    changed = np.abs(d - c) > 0
    return {
        "band_power_ratio": (band_power(corrupted) - band_power(clean)).tolist(),  # log10 units
        "mean_abs_diff": float(np.abs(d - c).mean()),
        "mean_diff_per_channel": (d - c).mean(axis=(0, 1)).tolist(),
        "changed_fraction": float(changed.mean()),
        "set_to_0": float(((d == 0) & (c != 0)).mean()),
        "set_to_255": float(((d == 255) & (c != 255)).mean()),
        "std": float(d.std()),
    }
