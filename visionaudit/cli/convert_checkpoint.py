"""``visionaudit convert-checkpoint``: re-save a checkpoint as safetensors."""

from __future__ import annotations

import argparse

HELP = "re-save a checkpoint as safetensors"


def add_parser(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser("convert-checkpoint", help=HELP, description=HELP)
    c.add_argument("src", metavar="SRC", help="the checkpoint to convert (.pth, .pt, .bin, .ckpt: a torch.save file)")
    c.add_argument("dst", metavar="DST", help="the safetensors file to write (then audited as --model DST --arch ARCH)")
    c.add_argument("--trust-pickle", action="store_true",
                   help="unpickle SRC (can run code it carries): only for files you trust")
    c.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from visionaudit.models.checkpoints import convert_to_safetensors

    n = convert_to_safetensors(args.src, args.dst, trust_pickle=args.trust_pickle)
    print(f"wrote {n} tensors to {args.dst}")
    return 0
