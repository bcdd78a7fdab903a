"""``visionaudit convert-checkpoint``: re-save a checkpoint as safetensors."""

from __future__ import annotations

import argparse

HELP = "re-save a checkpoint as safetensors"


def add_parser(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser("convert-checkpoint", help=HELP, description=HELP)
    c.add_argument("src", metavar="SRC", help="the checkpoint: a torch.save file (a state dict, a dict holding one, or "
                   "with --trust-pickle a whole pickled model) or safetensors")
    c.add_argument("dst", metavar="DST", help="the safetensors file to write (its folder must exist; then audited as "
                   "--model DST --arch ARCH)")
    c.add_argument("--trust-pickle", action="store_true",
                   help="unpickle SRC (can run code it carries): only for files you trust; the classes it names must "
                        "be importable (run it from the training code's folder, or see --import)")
    c.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                   help="with --trust-pickle: import MODULE first (from the working directory or the import path), "
                        "the training code whose classes SRC names; a class the script that saved SRC defined "
                        "(__main__.NAME) is looked up in it too, so --import train reads a file train.py saved. "
                        "Importing runs its top-level code. Repeatable")
    c.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from visionaudit.models.checkpoints import convert_to_safetensors

    n = convert_to_safetensors(args.src, args.dst, trust_pickle=args.trust_pickle, imports=args.imports)
    print(f"wrote {n} tensors to {args.dst}")
    return 0
