"""ImageNet-C (Hendrycks & Dietterich, ICLR 2019): its corruptions, AlexNet's published errors, the
metrics normalized by them, and the layout of the downloaded dataset.

Metrics, with E_{s,f} the top-1 error under corruption f at severity s (fractions) and E_clean the clean
error:

- CE_f = sum_s E_{s,f} / sum_s E^AlexNet_{s,f}, in % (AlexNet = 100);
- relative CE_f = sum_s (E_{s,f} - E_clean) / sum_s (E^AlexNet_{s,f} - E^AlexNet_clean), in %: E_clean is
  subtracted at each severity, as the paper writes it (the same as the rise of the severity-averaged
  error over AlexNet's);
- mCE and relative mCE: the means of CE_f and relative CE_f over the 15 benchmark corruptions; the
  unnormalized mean error is the mean of E_{s,f} over corruptions and severities.

An mCE over fewer than the 15 corruptions, or fewer than the five severities, is not the published mCE:
:func:`summarize` says so (``complete`` false, ``note``).

The reference numbers (AlexNet, torchvision's ``alexnet-owt-4df8aa71`` checkpoint, the one
hendrycks/robustness's ``ImageNet-C/test.py`` loads):

- per corruption and severity: hendrycks/robustness's mCE spreadsheet (linked from its README,
  "Calculating the mCE"), as transcribed in UCSC-VLAA/RobustCNN ``timm/utils/imagenet_c.py``
  (``imagenetc_alexnet_error_rates_list``); their means over severities are, to the sixth digit, the
  per-corruption errors google-research/augmix ``imagenet.py`` gives as ``ALEXNET_ERR`` ("Raw AlexNet
  errors taken from https://github.com/hendrycks/robustness"); a test checks the two transcriptions agree;
- clean error 0.43478: torchvision's published top-1 of that checkpoint, 56.522 %
  (``AlexNet_Weights.IMAGENET1K_V1.meta``); the paper rounds it to 43.5 %.

The downloaded dataset: ``<root>/<corruption>/<severity>/<wnid>/<file>.JPEG``, 224x224 JPEGs (quality 85,
saved by PIL) made from the validation images resized to 256 and centre-cropped to 224.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from visionaudit.errors import DataError, closest
from visionaudit.formatting import first_few

ALEXNET_ERRORS: dict[str, tuple[float, float, float, float, float]] = {
    "gaussian_noise": (0.69528, 0.82542, 0.93554, 0.98138, 0.99452),
    "shot_noise": (0.71224, 0.85108, 0.93574, 0.98182, 0.99146),
    "impulse_noise": (0.78374, 0.89808, 0.9487, 0.9872, 0.99548),
    "defocus_blur": (0.65624, 0.73202, 0.85036, 0.91364, 0.94714),
    "glass_blur": (0.64308, 0.75054, 0.88806, 0.91622, 0.93344),
    "motion_blur": (0.5843, 0.70048, 0.82108, 0.8975, 0.92638),
    "zoom_blur": (0.70008, 0.76992, 0.80784, 0.84198, 0.87198),
    "snow": (0.71726, 0.88392, 0.86468, 0.9187, 0.94952),
    "frost": (0.6139, 0.79734, 0.8879, 0.89942, 0.9343),
    "fog": (0.67474, 0.7605, 0.84378, 0.8726, 0.945),
    "brightness": (0.4514, 0.48502, 0.54048, 0.62166, 0.7244),
    "contrast": (0.64548, 0.7615, 0.88874, 0.9776, 0.9927),
    "elastic_transform": (0.52596, 0.70116, 0.55686, 0.64076, 0.80554),
    "pixelate": (0.52218, 0.5462, 0.73728, 0.87092, 0.91262),
    "jpeg_compression": (0.51002, 0.54718, 0.57294, 0.65458, 0.74778),
}
ALEXNET_CLEAN_ERROR = 0.43478
BENCHMARK = tuple(ALEXNET_ERRORS)  # the 15 corruptions of the mCE, in the paper's order
EXTRAS = ("speckle_noise", "gaussian_blur", "spatter", "saturate")  # released later; outside the mCE
ALL_CORRUPTIONS = BENCHMARK + EXTRAS
SEVERITIES = (1, 2, 3, 4, 5)
NOT_COMPARABLE = ("mCE on images other than the 50,000 ImageNet validation images is not comparable with published "
                  "ImageNet-C values")


def corruption_error(errors: Mapping[int, float], corruption: str) -> float:
    """CE in %: the errors summed over the given severities, over AlexNet's summed over the same ones."""
    reference = ALEXNET_ERRORS[corruption]
    return 100.0 * sum(errors.values()) / sum(reference[s - 1] for s in errors)


def relative_corruption_error(errors: Mapping[int, float], clean_error: float, corruption: str) -> float:
    """Relative CE in %: the rise over the clean error, summed over the severities, over AlexNet's."""
    reference = ALEXNET_ERRORS[corruption]
    rise = sum(e - clean_error for e in errors.values())
    alexnet_rise = sum(reference[s - 1] - ALEXNET_CLEAN_ERROR for s in errors)
    return 100.0 * rise / alexnet_rise


@dataclass(frozen=True)
class Summary:
    """One model's ImageNet-C numbers over the corruptions it was scored on."""

    mce: float  # %, AlexNet = 100
    relative_mce: float  # %; NaN without a clean error
    mean_error: float  # unnormalized: the mean error over corruptions and severities (benchmark ones only)
    ce: dict[str, float]
    relative_ce: dict[str, float]
    corruptions: tuple[str, ...]  # benchmark corruptions in the mCE
    severities: tuple[int, ...]
    missing: dict[str, str] = field(default_factory=dict)  # benchmark corruption -> why it is not in the mCE
    complete: bool = False  # all 15 corruptions at all five severities: the published mCE
    note: str = ""

    def to_dict(self) -> dict:
        return {"mce": self.mce, "relative_mce": self.relative_mce, "mean_error": self.mean_error, "ce": self.ce,
                "relative_ce": self.relative_ce, "corruptions": list(self.corruptions), "severities": list(self.severities),
                "missing": self.missing, "complete": self.complete, "note": self.note}


def summarize(errors: Mapping[str, Mapping[int, float]], clean_error: float | None,
              missing: Mapping[str, str] | None = None) -> Summary:
    """mCE, relative mCE and mean error from ``{corruption: {severity: error}}`` (extras are ignored).

    ``missing`` gives the reason for each benchmark corruption not scored (frost without its pictures);
    one not in ``errors`` and not in ``missing`` is reported as not configured. Every corruption must
    have been scored at the same severities.
    """
    used = [c for c in BENCHMARK if c in errors and errors[c]]
    if not used:
        raise ValueError("no ImageNet-C benchmark corruption was scored: the mCE is undefined")
    severity_sets = {tuple(sorted(errors[c])) for c in used}
    if len(severity_sets) != 1:
        raise ValueError(f"the corruptions were scored at different severities ({sorted(severity_sets)}); the mCE "
                         "needs the same ones")
    (severities,) = severity_sets
    if any(s not in SEVERITIES for s in severities):
        raise ValueError(f"severities must be among {SEVERITIES}, got {severities}")
    why = {c: (missing or {}).get(c, "not in the configured corruptions") for c in BENCHMARK if c not in used}
    ce = {c: corruption_error(errors[c], c) for c in used}
    clean = math.nan if clean_error is None else clean_error
    rel = {c: relative_corruption_error(errors[c], clean, c) for c in used}
    complete = not why and severities == SEVERITIES
    notes = []
    if why:
        by_reason: dict[str, list[str]] = {}
        for c, r in why.items():
            by_reason.setdefault(r, []).append(c)
        said = "; ".join(f"{r}: {', '.join(cs)}" for r, cs in by_reason.items())
        notes.append(f"mCE over {len(used)} of the 15 corruptions ({said}): not the published mCE")
    if severities != SEVERITIES:
        notes.append(f"severities {', '.join(map(str, severities))} only: not the published mCE (all five)")
    return Summary(
        mce=sum(ce.values()) / len(ce),
        relative_mce=sum(rel.values()) / len(rel),
        mean_error=sum(sum(errors[c].values()) for c in used) / (len(used) * len(severities)),
        ce=ce, relative_ce=rel, corruptions=tuple(used), severities=severities, missing=why, complete=complete,
        note="; ".join(notes),
    )


# -- the downloaded dataset ------------------------------------------------------------------------


def condition_folder(root: Path, corruption: str, severity: int) -> Path:
    return root / corruption / str(severity)


def check_root(root: Path) -> Path:
    """``root`` when it looks like ImageNet-C (at least one ``<corruption>/<severity>`` folder), else a DataError."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"ImageNet-C folder {root} does not exist; point --audit-imagenet-c at the folder holding "
                        "gaussian_noise/, shot_noise/, ... (each with severity folders 1 to 5)")
    found = [c for c in ALL_CORRUPTIONS if any(condition_folder(root, c, s).is_dir() for s in SEVERITIES)]
    # A folder named like a corruption that is not there (gausian_noise/, Fog/): its files would be read by no test, and
    # the corruption's tests would say only that it is not in the folder. Near: a misspelling, not an archive's name
    # (blur/, which the refusal below explains); one nearest a corruption that is there is a copy beside it, let be.
    near = {p.name: closest(p.name.lower(), ALL_CORRUPTIONS, cutoff=0.8) for p in sorted(root.iterdir())
            if p.is_dir() and p.name not in ALL_CORRUPTIONS}
    misspelled = {name: c for name, c in near.items() if c is not None and c not in found}
    if misspelled:
        said = "; ".join(f"{root / name}: did you mean {c}?" for name, c in misspelled.items())
        raise DataError(f"{len(misspelled)} folder(s) of the ImageNet-C folder {root} are named like no ImageNet-C "
                        f"corruption, and the corruption each is near is not there: {said} Rename each to its corruption's "
                        "name (gaussian_noise/, shot_noise/, ... as ImageNet-C's archives unpack), or move it out of the folder")
    if not found:
        others = first_few(sorted(p.name for p in root.iterdir() if p.is_dir()), 5, ", ")
        raise DataError(f"{root} holds no ImageNet-C corruption folder (<corruption>/<severity>/<wnid>/*.JPEG, e.g. "
                        f"gaussian_noise/3/n01440764/); it holds {others or 'no folders'}. ImageNet-C's "
                        "archives (blur.tar, ...) unpack into such folders: extract them all into one folder")
    return root
