"""What to give for a folder where a model file goes: the weights file inside it, or the spec that reads a folder timm
wrote. Said by parse_spec (specs.py) when it refuses the folder."""

from __future__ import annotations

from pathlib import Path

WEIGHTS_FILES = ("model.safetensors", "pytorch_model.bin")  # what save_pretrained and save_for_hf write


def _weights_file(folder: Path) -> Path | None:
    return next((folder / n for n in WEIGHTS_FILES if (folder / n).is_file()), None)


def timm_checkpoint_folder(name: str, folder: Path) -> str:
    """The problem of ``timm:NAME:FOLDER``: a folder where the checkpoint file goes, with the file inside it if any."""
    inside = _weights_file(folder)
    return (f"{folder} is a folder; timm:NAME:CHECKPOINT names the checkpoint file"
            + (f": timm:{name}:{inside}" if inside else ""))


def weights_inside(folder: Path) -> str:
    """The way in for a folder that holds a weights file a state-dict spec reads."""
    inside = _weights_file(folder)
    if inside is None:
        return ""
    return f"; its weights {inside} load as a state dict: --model {inside} --arch package.module:factory (the architecture)"


def timm_folder_form(folder: Path, clash: bool = False) -> str:
    """For a folder timm wrote (``save_for_hf``: a config.json naming its ``architecture``), the rest of a message
    naming the spec that reads it; "" for any other folder. With ``clash``, "" too where its ``model_args`` do not hold
    ``num_classes``: transformers builds such a folder as ``hf:`` (it passes its own ``num_classes``, so only these fail)."""
    import json

    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return ""
    arch = config.get("architecture") if isinstance(config, dict) and "model_type" not in config else None
    if not isinstance(arch, str) or not arch:
        return ""
    args = config.get("model_args")
    if clash and not (isinstance(args, dict) and "num_classes" in args):
        return ""
    tag = (config.get("pretrained_cfg") or {}).get("tag") if isinstance(config.get("pretrained_cfg"), dict) else None
    name = f"{arch}.{tag}" if tag else arch
    inside = _weights_file(folder)
    weights = inside or folder / "model.safetensors"
    return (f"save_for_hf: its config.json names the architecture {arch}); timm reads it: --model "
            f"'timm:{name}:{weights}?classes=FILE' (a replaced classifier head is built to fit the weights; the "
            f"preprocessing is timm's configuration of {name}, changed with ?size=&resize=&interpolation=&mean=&std=). "
            "A model built with other model_args than its number of classes needs a function that builds it: --model "
            f"{weights} --arch package.module:factory" + ("" if inside else f" (no weights file found in {folder})"))
