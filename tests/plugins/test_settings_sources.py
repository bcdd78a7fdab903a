"""Where the run's settings come from, unit-level (plugins/settings.py): the rootdir's audit.toml found by default, and
[run] keys that cannot work told as the file's (cfg45 review)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision  # noqa: F401 (imported once, at module level: its op library cannot be registered twice)

from plugins.settings import _config_path, _decode_memory, _device
from visionaudit.config import load_config
from visionaudit.errors import ConfigError, DeviceError


class _Config:
    """The few pytest.Config members the settings read: its options (none given unless said) and rootdir."""

    def __init__(self, rootpath: Path, **options) -> None:
        self.rootpath, self.options = rootpath, options

    def getoption(self, name, default=None):
        return self.options.get(name, default)


def test_a_rootdir_audit_toml_that_cannot_be_read_is_refused_not_passed_over(tmp_path):
    """cfg45 review F1: a rootdir audit.toml linking to a file no longer there (a moved shared config) or to itself
    was passed over (Path.is_file() is False for both): the run went on with the families' defaults, without a word."""
    config = _Config(tmp_path)
    assert _config_path(config) is None  # none there: the defaults, as documented
    (tmp_path / "audit.toml").mkdir()
    assert _config_path(config) is None  # a folder of that name is no config file (as before)
    (tmp_path / "audit.toml").rmdir()
    (tmp_path / "audit.toml").symlink_to(tmp_path / "shared" / "audit.toml")
    assert _config_path(config) == tmp_path / "audit.toml"
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(_config_path(config))
    (tmp_path / "audit.toml").unlink()
    (tmp_path / "audit.toml").symlink_to(tmp_path / "audit.toml")
    with pytest.raises(ConfigError, match=r"cannot be read \(Too many levels of symbolic links\)"):
        load_config(_config_path(config))
    assert _config_path(_Config(tmp_path, audit_config="ci/audit.toml")) == "ci/audit.toml"  # the option wins


def test_a_run_key_that_cannot_work_is_told_as_the_files(tmp_path):
    """cfg45: [run] device = "gpu" was told as "unknown device 'gpu'" without the file; [run] decode_memory's refusal
    named the key but not the file. The command line's --device wins over the file's."""
    path = Path("ci/audit.toml")
    with pytest.raises(ConfigError) as refused:
        _device(_Config(tmp_path), {"device": "gpu"}, path)
    assert str(refused.value) == ('ci/audit.toml: [run] device = "gpu": unknown device \'gpu\': use auto, cpu, cuda, cuda:N '
                                  "or mps (in audit.toml; or give --device on the command line, which wins over it)")
    if not torch.cuda.is_available():  # cfg45 review: a GPU runner's file on a CPU runner was "--device cuda was asked for"
        with pytest.raises(ConfigError) as refused:
            _device(_Config(tmp_path), {"device": "cuda"}, path)
        said = str(refused.value)
        assert said.startswith('ci/audit.toml: [run] device = "cuda" was asked for, but torch sees no CUDA GPU'), said
        assert "--device cuda" not in said and said.endswith("(in audit.toml; or give --device on the command line, "
                                                             "which wins over it)"), said
    assert _device(_Config(tmp_path, audit_device="cpu"), {"device": "gpu"}, path) == "cpu"
    with pytest.raises(DeviceError, match="^unknown device 'gpu'"):  # the command line's own: said as given there
        _device(_Config(tmp_path, audit_device="gpu"), {}, path)
    with pytest.raises(ConfigError, match=r"^ci/audit.toml: \[run\] decode_memory must be a size"):
        _decode_memory(_Config(tmp_path), {"decode_memory": "lots"}, path)
