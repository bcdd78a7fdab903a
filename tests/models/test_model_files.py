"""Model files the suite does not read as weights: pickled code never run (a whole pickled module refused, then
converted), damaged checkpoints, TorchScript, other formats and folders, each said with the files that are read."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.models.reference_nets import X, resnet18, sha256
from visionaudit.cli import main as cli_main
from visionaudit.errors import CheckpointError, SpecError
from visionaudit.models import checkpoints
from visionaudit.models.loading import load_model, parse_spec


class _Evil:
    def __reduce__(self):
        return (Path.touch, (Path(_Evil.target),))


def test_pickled_code_is_never_run(tmp_path):
    _Evil.target = str(tmp_path / "pwned")
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": resnet18().state_dict(), "payload": _Evil()}, path)
    with pytest.raises(CheckpointError) as e:
        load_model(str(path), "cpu", arch="torchvision:resnet18")
    assert not (tmp_path / "pwned").exists()
    assert "weights_only=True" in str(e.value) and "convert-checkpoint" in str(e.value) and "safetensors" in str(e.value)


def test_whole_module_pickle_refused_then_converted(tmp_path, capsys):
    net = resnet18()
    path = tmp_path / "whole.pth"
    torch.save(net, path)
    with pytest.raises(CheckpointError, match="pickled Python objects"):
        checkpoints.load_state_dict(path)
    # Without --trust-pickle the converter refuses too; with it, the result loads safely.
    assert cli_main(["convert-checkpoint", str(path), str(tmp_path / "whole.safetensors")]) == 4
    assert "pickled Python objects" in capsys.readouterr().err
    assert cli_main(["convert-checkpoint", str(path), str(tmp_path / "whole.safetensors"), "--trust-pickle"]) == 0
    loaded = load_model(str(tmp_path / "whole.safetensors"), "cpu", arch="torchvision:resnet18")
    assert torch.equal(loaded.module(X), net(X).detach())


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_checkpoint(tmp_path, damage):
    path = tmp_path / "bad.pth"
    torch.save(resnet18().state_dict(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"not a checkpoint" * 100)
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_model(str(path), "cpu", arch="torchvision:resnet18")


@pytest.mark.parametrize("suffix, damage, said", [
    (".safetensors", "empty", "is not a readable safetensors file (0 bytes: too short for its header); re-export it"),
    (".safetensors", "header", "is not a readable safetensors file (cut short: its header is "),
    (".safetensors", "half", "is not a readable safetensors file (truncated: its header promises "),
    (".pth", "half", "is corrupt or truncated (BadZipFile: File is not a zip file); copy it again or re-export it"),
])
def test_a_checkpoint_cut_short_is_refused_before_loading_as_its_load_refuses_it(tmp_path, suffix, damage, said):
    """Stop 40: an empty or truncated checkpoint was found only as the model loaded (exit 1, every test an error); its
    header (safetensors) or zip directory (torch.save) shows it at startup, without torch. The load refuses it too."""
    from safetensors.torch import save_file

    path = tmp_path / f"bad{suffix}"
    state = resnet18().state_dict()
    save_file(state, str(path)) if suffix == ".safetensors" else torch.save(state, path)
    data = path.read_bytes()
    path.write_bytes({"empty": b"", "header": data[:40], "half": data[: len(data) // 2]}[damage])
    with pytest.raises(CheckpointError) as at_startup:
        checkpoints.refuse_unreadable(path)
    assert str(at_startup.value).startswith(f"checkpoint {path} {said}"), str(at_startup.value)
    with pytest.raises(CheckpointError, match="not a readable safetensors file|corrupt or truncated"):
        load_model(str(path), "cpu", arch="torchvision:resnet18")


def test_whole_checkpoints_pass_the_startup_check(tmp_path):
    """Review 40 F6: the formats the loader reads, pinned against a false refusal: the pre-1.6 torch.save format (no
    zip), safetensors with __metadata__ and with a large header."""
    from safetensors.torch import save_file

    state = resnet18().state_dict()
    save_file(state, str(tmp_path / "ok.safetensors"))
    save_file(state, str(tmp_path / "meta.safetensors"), metadata={"note": "x" * 10_000})
    save_file({f"t{i}": torch.zeros(1) for i in range(20_000)}, str(tmp_path / "many.safetensors"))
    torch.save(state, tmp_path / "ok.pth")
    torch.save(state, tmp_path / "legacy.pth", _use_new_zipfile_serialization=False)
    torch.save({"model": state, "epoch": 3}, tmp_path / "wrapped.pth")
    for name in ("ok.safetensors", "meta.safetensors", "many.safetensors", "ok.pth", "legacy.pth", "wrapped.pth"):
        checkpoints.refuse_unreadable(tmp_path / name)
        checkpoints.load_state_dict(tmp_path / name)  # as the load reads it: its startup check first


def test_a_zip_entry_past_the_end_is_refused_as_its_load_refuses_it(tmp_path):
    """Review 40 F6: a torch.save archive whose directory survived but whose data is cut (its entry ends past the
    file's end)."""
    path = tmp_path / "cut.pth"
    torch.save(resnet18().state_dict(), path)
    data = bytearray(path.read_bytes())
    at = data.rindex(b"PK\x01\x02")  # the last entry's central directory record; its compressed size at +20
    data[at + 20:at + 24] = (len(data) * 2).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError) as e:
        checkpoints.refuse_unreadable(path)
    assert str(e.value).startswith(f"checkpoint {path} is corrupt or truncated (its entry "), str(e.value)
    assert "runs past its end); copy it again or re-export it" in str(e.value), str(e.value)


@pytest.mark.parametrize("name", ["w.safetensors", "w.pth"])
def test_a_git_lfs_pointer_is_said_to_be_one_with_git_lfs_pull(tmp_path, name):
    """Review 40 F4: a clone without `git lfs pull` leaves a text pointer where the weights go; a .safetensors one was
    "cut short" with "re-export it", a .pth one corrupt. Said so at startup and by the load alike."""
    path = tmp_path / name
    path.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:" + "0" * 64 + "\nsize 46830571\n")
    said = (f"checkpoint {path} is a Git LFS pointer (a text file standing for the weights), not the checkpoint: fetch "
            "it with `git lfs pull` where it was cloned")
    for read in (checkpoints.refuse_unreadable, checkpoints.load_state_dict):
        with pytest.raises(CheckpointError) as e:
            read(path)
        assert str(e.value) == said
    # Given without --arch too: the pointer first, not "needs its architecture" and the pointer next run (final F5).
    with pytest.raises(CheckpointError) as e:
        parse_spec(str(path))
    assert str(e.value) == f"--model {path}: {said}"


def test_a_safetensors_header_length_out_of_bounds_is_not_said_to_be_cut_short(tmp_path):
    """Review 40 F4: 8 bytes that are no header length (far over safetensors' 100 MB limit) are not a file cut short."""
    path = tmp_path / "w.safetensors"
    path.write_bytes(b"\xff" * 8 + b"{}" * 100)
    with pytest.raises(CheckpointError) as e:
        checkpoints.refuse_unreadable(path)
    assert str(e.value) == (f"checkpoint {path} is not a readable safetensors file (its first 8 bytes are not a "
                            "safetensors header length: not a safetensors file); re-export it")


def test_a_checkpoint_that_cannot_be_read_is_a_message_not_a_traceback(tmp_path, monkeypatch):
    """Review 40 F3: an OSError (no permission, a failing mount) from the startup check's reads was a traceback."""
    for name in ("w.safetensors", "w.pth"):
        (tmp_path / name).write_bytes(b"PK\x03\x04" + b"\0" * 100)
        monkeypatch.setattr(checkpoints, "open", _eio, raising=False)
        with pytest.raises(CheckpointError) as e:
            checkpoints.refuse_unreadable(tmp_path / name)
        monkeypatch.undo()
        assert str(e.value) == (f"checkpoint {tmp_path / name} cannot be read (Input/output error); check that "
                                "it can be read here (its permissions, its disk)")


def _eio(*args, **kwargs):
    raise OSError(5, "Input/output error")


def test_corrupt_safetensors(tmp_path):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_model(str(path), "cpu", arch="torchvision:resnet18")


def test_torchscript_file(tmp_path):
    net = resnet18()
    path = tmp_path / "model.pt"
    torch.jit.trace(net, X).save(str(path))
    loaded = load_model(f"{path}?mean=0.5,0.5,0.5&std=0.25,0.25,0.25", "cpu")
    assert loaded.spec.kind == "torchscript"
    assert torch.allclose(loaded.module(X), net(X).detach(), atol=1e-5)
    assert loaded.preprocessing.mean == (0.5, 0.5, 0.5) and loaded.preprocessing.std == (0.25, 0.25, 0.25)
    assert loaded.sha256 == sha256(path)


@pytest.mark.parametrize("name, what",
                         [("model.ort", "ONNX Runtime"), ("model.tflite", "TensorFlow Lite"), ("m.h5", "Keras (HDF5)")])
def test_a_model_file_of_another_format_says_which_files_are_read(tmp_path, name, what):
    """Issue 23, item 11: an .onnx file was "a state dict" that needs --arch, then "corrupt or truncated" (since issue 25
    .onnx files are read: tests/models/test_onnx_model.py)."""
    path = tmp_path / name
    path.write_bytes(b"\x08\x07\x12\x04onnx")
    for arch in (None, "torchvision:resnet18"):
        with pytest.raises(SpecError) as refused:
            parse_spec(str(path), arch=arch)
        message = str(refused.value)
        assert (f"{what} model files ({path.suffix}) are not supported; a model file is an ONNX file (.onnx), a TorchScript "
                "archive") in message
        assert "state dict" in message and "corrupt" not in message and "needs its architecture" not in message
    odd = tmp_path / "model.weights"
    odd.write_bytes(b"\x08\x07\x12\x04onnx")
    with pytest.raises(SpecError, match=r"is not a model file visionaudit reads \(neither a TorchScript archive"):
        parse_spec(str(odd))
    torch.save(resnet18().state_dict(), tmp_path / "w.pth.tar")  # a torch.save file under another suffix is still read
    assert parse_spec(str(tmp_path / "w.pth.tar"), arch="torchvision:resnet18").kind == "state_dict"


@pytest.mark.parametrize("suffix", [".pkl", ".pickle"])
def test_a_torch_save_state_dict_named_pkl_loads_with_arch(tmp_path, suffix):
    """A torch.save file named .pkl/.pickle is a state dict (as before issue 23), not refused as a "pickle" format;
    a .pkl that is no torch.save file is still refused for what it holds."""
    net = resnet18()
    path = tmp_path / f"weights{suffix}"
    torch.save(net.state_dict(), path)
    loaded = load_model(str(path), "cpu", arch="torchvision:resnet18")
    assert torch.equal(loaded.module(X), net(X).detach())
    junk = tmp_path / f"notes{suffix}"
    junk.write_bytes(b"just some text")
    with pytest.raises(SpecError, match="is not a model file visionaudit reads"):
        parse_spec(str(junk), arch="torchvision:resnet18")


def test_a_folder_says_it_is_a_folder_and_which_are_read(tmp_path):
    folder = tmp_path / "weights-only"
    folder.mkdir()
    with pytest.raises(CheckpointError) as refused:
        parse_spec(str(folder))
    message = str(refused.value)
    assert f"{folder} is a folder, and only Hugging Face save_pretrained folders are read (as hf:FOLDER" in message
    assert "no such file" not in message and "model.safetensors" not in message
    (folder / "model.safetensors").write_bytes(b"")
    with pytest.raises(CheckpointError, match=rf"its weights {folder / 'model.safetensors'} load as a state dict: --model "):
        parse_spec(str(folder))


def test_a_save_pretrained_folder_given_bare_is_pointed_to_hf(tmp_path):
    """Issue 25: the folder is read as hf:FOLDER (the prefix names the kind; a folder has one id)."""
    folder = tmp_path / "hf-model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    with pytest.raises(CheckpointError, match=rf"is read as --model hf:{folder} "):
        parse_spec(str(folder))


def test_a_timm_checkpoint_not_there_is_refused_when_parsed(tmp_path, monkeypatch):
    """Review 40 F2: one home for a model file that is not there (parse_spec, whose NoSuchModelFile audit.toml words
    with its own path rule), timm's checkpoint as a state dict's; a folder names the weights file inside."""
    from visionaudit.config import _why_not_here
    from visionaudit.models.specs import NoSuchModelFile

    monkeypatch.chdir(tmp_path)
    with pytest.raises(NoSuchModelFile) as e:
        parse_spec("timm:resnet18:gone.pth")
    assert e.value.problem == "no such file gone.pth" and _why_not_here("timm:resnet18:gone.pth") == "no such file gone.pth"
    (tmp_path / "saved").mkdir()
    (tmp_path / "saved" / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(NoSuchModelFile) as e:
        parse_spec("timm:resnet18:saved")
    assert e.value.problem == ("saved is a folder; timm:NAME:CHECKPOINT names the checkpoint file: "
                               "timm:resnet18:saved/pytorch_model.bin")


def test_a_torchscript_file_is_batched_without_the_memory_probe_it_refuses(tmp_path):
    """The CPU memory probe hooks every module, and a TorchScript module refuses hooks: every test of a .pt archive
    errored at setup (RuntimeError: register_forward_hook is not supported on ScriptModules). It is not probed now: the
    batch size asked for is kept, uncapped, as for any model that cannot be probed."""
    from visionaudit.models.batching import fit_batch_size

    path = tmp_path / "model.pt"
    torch.jit.trace(resnet18(), X).save(str(path))
    choice = fit_batch_size(load_model(f"{path}?mean=0.5,0.5,0.5&std=0.25,0.25,0.25", "cpu"), 8)
    assert (choice.size, choice.bytes_per_image, choice.note) == (8, None, None)
