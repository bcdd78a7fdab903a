"""A model's own low-precision rounding, told apart from a conversion's error: a model that computes in bfloat16 or
float16 (autocast in its forward, float16 kernels) rounds a fold's float32 last bits to whole steps of its precision,
over the conversion gate's max_rel_diff (1e-4). Its failure says so (the bound is the user's, kept)."""

from __future__ import annotations

# A low precision's relative rounding step (its machine epsilon, 2^-mantissa bits); bfloat16 first, since its values
# within float16's range are float16's too (visionaudit.models.inference.low_precision_of reads them in this order).
ROUNDING_STEPS = {"bfloat16": 2.0**-7, "float16": 2.0**-10}
# A difference of at most this many of a low precision's rounding steps (relative to the largest logit) in logits that
# carry its rounding is said to be rounding: a fold's float32 last bits, rounded by the model's bfloat16 arithmetic,
# moved its logits 0.3 to 0.9 of a step (measured, CPU: a small conv net and resnet18 under bfloat16 autocast).
ROUNDING_LIKE = 4


def rounding_alone(rounding: str | None, max_rel_diff: float, model: str) -> str:
    """What a failure adds when it may be the model's own rounding, not the fold's: its logits are all values of the
    low precision ``rounding`` and differ by at most ROUNDING_LIKE of its steps; '' otherwise."""
    step = ROUNDING_STEPS.get(rounding or "")
    if step is None or not max_rel_diff <= ROUNDING_LIKE * step:
        return ""
    return (f"; its logits are all {rounding} values (the model computes, or returns, them in {rounding}), and "
            f"{max_rel_diff:.3g} of the largest logit is {max_rel_diff / step:.2g} of {rounding}'s rounding steps "
            f"({step:.3g} each): the fold is exact in float32, so this is the model's own rounding, not the fold's error; "
            f"audit it computing in float32, or hold it to its precision with max_rel_diff (and max_abs_diff) under "
            f'[models."{model}".conversion] in audit.toml')
