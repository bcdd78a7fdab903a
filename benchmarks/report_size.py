"""What per-image outcomes add to a report, for 1,000 and 50,000 labelled images (synthetic outcomes).

Prints, per size: the sample ids (plain JSON, as the report keeps them), the right/wrong bits of the
clean pass and the nine transforms, the 16-way decisions on the 1,600 stimuli, and the total.

    python benchmarks/report_size.py [--sizes 1000 50000]
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from visionaudit.data.imagenet16 import categories
from visionaudit.families.outcomes import encode_bits, encode_decisions
from visionaudit.families.robustness.transforms import TRANSFORMS

STIMULI = {"cue-conflict": 1280, "edges": 160, "filled-silhouettes": 160}


def size(value) -> int:
    return len(json.dumps(value, separators=(",", ":")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 50000])
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    cats = categories()
    for n in args.sizes:
        # ImageNet validation layout: <wnid>/ILSVRC2012_val_<8 digits>.JPEG
        ids = [f"n{1440764 + k % 1000:08d}/ILSVRC2012_val_{k + 1:08d}.JPEG" for k in range(n)]
        stimuli_ids = [f"{cats[k % 16]}/{cats[k % 16]}{k}-{cats[(k + 1) % 16]}{k}.png" for k in range(sum(STIMULI.values()))]
        bits = [encode_bits(rng.random(n) < 0.8) for _ in range(1 + len(TRANSFORMS))]
        decisions = [encode_decisions([cats[i] for i in rng.integers(0, 16, m)]) for m in STIMULI.values()]
        parts = {"sample ids (labelled)": size(ids), "sample ids (stimuli)": size(stimuli_ids),
                 f"bits ({len(bits)} conditions)": sum(size(b) for b in bits),
                 "decisions (3 stimulus sets)": sum(size(d) for d in decisions)}
        total = sum(parts.values())
        print(f"{n:,} labelled images: " + ", ".join(f"{k} {v / 1024:.1f} KiB"
                                                     for k, v in parts.items()) + f"; total {total / 1024:.1f} KiB "
              f"({size(bits[0]) / 1024:.2f} KiB of bits per condition)")


if __name__ == "__main__":
    main()
