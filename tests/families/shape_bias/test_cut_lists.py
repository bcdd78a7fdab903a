"""The shape-bias lists cut short say how many they leave out ("and N more", as the project's other cut lists,
visionaudit.formatting.first_few), not a bare "...": a reader of the 16 categories cannot tell 1 left out from 8."""

from __future__ import annotations

import pytest

from visionaudit.data.label_space import LabelSpace
from visionaudit.errors import ConfigError
from visionaudit.families.assessment import NotApplicable
from visionaudit.families.shape_bias import shape_categories
from visionaudit.families.shape_bias.categories import categories as the_16


def test_the_missing_categories_end_with_how_many_more():
    # cat, dog, bird: 3 of the 16 by name; the other 13 are missing, 8 shown: airplane .. elephant, then 5 more
    with pytest.raises(NotApplicable) as info:
        shape_categories(LabelSpace(("cat", "dog", "bird"), "test"))
    missing = [c for c in the_16() if c not in ("cat", "dog", "bird")]
    assert len(missing) == 13
    assert f"(missing: {', '.join(missing[:8])}, and 5 more)" in str(info.value), str(info.value)
    assert "..." not in str(info.value)


def test_the_category_map_problems_end_with_how_many_more():
    # 12 classes the model lacks: 10 named, then "and 2 more"
    space = LabelSpace(("cat", "dog", "bird"), "test")
    wrong = {f"thing{i}": "cat" for i in range(12)}
    with pytest.raises(ConfigError) as info:
        shape_categories(space, wrong)
    text = str(info.value)
    assert "class 'thing9' is not one of the model's 3 classes; and 2 more. Name the model's classes" in text, text
    assert "thing10" not in text and "..." not in text.split("category_map")[1].split("and the 16")[0]


def test_a_category_map_class_alike_to_two_classes_is_said_so():
    """Stop 40: 'CAT' matching 'cat' and 'Cat' alike was said to be no class of the model, the closest one offered."""
    space = LabelSpace(("cat", "Cat", "dog"), "test")
    with pytest.raises(ConfigError) as info:
        shape_categories(space, {"CAT": "cat"})
    assert "class 'CAT' matches more than one of the model's classes alike (cat, Cat): write it exactly as one" in str(
        info.value), str(info.value)
