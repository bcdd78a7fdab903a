"""A model spec's ?key=value values, judged from the text alone when the spec is read (hunt34): a bad one is a spec
error at startup (exit 4) naming the key, the value and what is accepted, not a load error in every test."""

from __future__ import annotations

import pytest

from visionaudit.errors import SpecError
from visionaudit.models.specs import parse_spec
from visionaudit.preprocessing import Preprocessing


@pytest.mark.parametrize("query, expected", [
    ("size=abc", "?size=abc is refused (not a whole number): size is a whole number of pixels above 0"),
    ("size=0", "?size=0 is refused (not above 0): size is a whole number of pixels above 0"),
    ("resize=-3", "?resize=-3 is refused (not above 0): resize is a whole number of pixels above 0, at least size"),
    ("size=300&resize=256", "?resize=256 is below size=300"),
    ("interpolation=lanczos", "?interpolation=lanczos is refused: interpolation is one of nearest, bilinear, bicubic"),
    ("mean=0.5,0.5", "?mean=0.5,0.5 is refused (2 values): mean is 1 or 3 comma-separated numbers from 0 to 1"),
    ("mean=0.5,x,0.5", "?mean=0.5,x,0.5 is refused (not comma-separated numbers)"),
    ("mean=123.7,116.3,103.5", "a value outside 0 to 1; in 0-255 units? divide by 255 (123.675 -> 0.485)"),
    ("std=0.2,0,0.2", "?std=0.2,0,0.2 is refused (a value not above 0): std is 1 or 3 comma-separated numbers above 0"),
    ("std=nan", "?std=nan is refused (not finite)"),
    ("mean=0.5&std=0.5,0.5,0.5", "?mean=0.5 has 1 value(s) but std=0.5,0.5,0.5 has 3"),
    ("imagenet=maybe", "?imagenet=maybe is neither true nor false; write ?imagenet=true or ?imagenet=false"),
    ("imagenet=", "?imagenet= is neither true nor false"),
    ("classes=", "?classes= needs a file of class names"),
    ("size=224&size=240", "?size= is given more than once; give it once"),
    ("arch=torchvision:resnet18", "?arch= names the architecture of a state-dict file (.pth, .safetensors); this spec "
                                  "names its architecture itself: leave ?arch= out"),
])
def test_a_bad_query_value_is_refused_from_the_spec_alone(query, expected):
    """hunt34: a value the text alone shows to be wrong is a spec error when the spec is parsed (startup, exit 4), not
    a load error in every test; the message names the key, the value and what is accepted."""
    for spec in (f"efficientnet_lite0?{query}", f"torchvision:resnet18:none?{query}", f"tests.tiny_models:tiny?{query}"):
        with pytest.raises(SpecError) as refused:
            parse_spec(spec)
        assert str(refused.value).startswith(f"--model {spec}: ") and expected in str(refused.value), str(refused.value)


def test_good_query_values_are_kept():
    parsed = parse_spec("efficientnet_lite0?size=240&resize=274&interpolation=BILINEAR&mean=0.5,0.5,0.5&std=0.5,0.5,0.5"
                        "&imagenet=yes")
    assert parsed.id == ("efficientnet_lite0?imagenet=yes&interpolation=bilinear&mean=0.5,0.5,0.5&resize=274&size=240"
                         "&std=0.5,0.5,0.5")
    assert parse_spec("tests.tiny_models:tiny?mean=0.45&std=0.23").options == {"mean": "0.45", "std": "0.23"}


def test_the_values_a_spec_gives_are_the_preprocessing_a_model_gets():
    """The checked values are the ones applied: size alone keeps the 0.875 crop ratio (floor(240 / 0.875) = 274)."""
    pre = Preprocessing().with_overrides(
        parse_spec("efficientnet_lite0?size=240&interpolation=BICUBIC&mean=0.5&std=0.25").options)
    assert (pre.crop_size, pre.resize_size, pre.interpolation, pre.mean, pre.std) == (240, 274, "bicubic", (0.5,), (0.25,))
