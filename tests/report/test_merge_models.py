"""`visionaudit merge` and the model of one id in every part (review 37, R2): the shards of one run may read the same
weights (sha256 equal) from other folders, as CI runners' checkouts lie (GitLab: /builds/RUNNER/N/...), and merge;
anything else of the spec that differs (a query option, the architecture), other weights or other class names are
refused, naming what differs. Parts are hand-built from the synthetic runs' (no model runs)."""

from __future__ import annotations

import copy
import re

import pytest

from tests.synthetic_runs import varied_runs
from visionaudit.models.spec_paths import form_and_options
from visionaudit.report.merge import Unmergeable, merge_reports

NAMES = ["part1.json", "part2.json"]
FOLDERS = ("/builds/r1/0/team", "/builds/r7/3/team")  # two runners' checkouts of one project
CLASSES = ["cat", "dog", "fox"]


def _parts(*models: dict) -> list[dict]:
    """The two parts of a synthetic run, its model m's entry updated with ``models[k]`` in part k (a named model: its
    id m is its ?name=, so the id says nothing of the spec)."""
    _, parts = varied_runs(7)
    for part, model in zip(parts, models):
        part["models"]["m"].update(name="m", **model)
    return parts


def _classes(folder: str, names: list[str] = CLASSES) -> dict:
    """A model entry's ``classes`` as read from ``?classes=FOLDER/classes.txt`` (LabelSpace.to_dict)."""
    return {"count": len(names), "source": f"?classes= {folder}/classes.txt", "imagenet1k": False, "names": names}


def _refusal(parts: list[dict]) -> str:
    with pytest.raises(Unmergeable) as refused:
        merge_reports(parts, NAMES)
    return str(refused.value)


@pytest.mark.parametrize("with_classes", [False, True], ids=["model-file", "model-file-and-classes-file"])
def test_the_same_weights_read_from_two_checkout_folders_merge(with_classes):
    whole, _ = varied_runs(7)
    query = lambda folder: f"?classes={folder}/classes.txt&resize=256" if with_classes else "?resize=256"  # noqa: E731
    specs = [f"{folder}/models/m.pt{query(folder)}" for folder in FOLDERS]
    parts = _parts(*({"spec": spec, **({"classes": _classes(folder)} if with_classes else {})}
                     for spec, folder in zip(specs, FOLDERS)))
    merged = merge_reports(parts, NAMES)
    # Judged on every image as the unsharded run judged it: one model, both shards' images.
    by = lambda r: {e["nodeid"]: (e["outcome"], e["metrics"]) for e in r["audits"]}  # noqa: E731
    assert by(merged) == by(whole)
    # The merged entry is part 1's; the notes say part 2 read the same weights from elsewhere.
    assert merged["models"]["m"]["spec"] == specs[0]
    assert (f"model m was given as {specs[0]} in part1.json, {specs[1]} in part2.json (from other paths; part2.json: the "
            "same weights, sha256 equal); models.m shows part1.json's entry") in merged["run"]["notes"]


def test_the_same_path_with_other_query_options_is_refused_naming_the_option():
    spec = f"{FOLDERS[0]}/models/m.pt"
    said = _refusal(_parts({"spec": f"{spec}?resize=256"}, {"spec": f"{spec}?resize=320"}))
    assert (f"model m is {spec}?resize=256 in part1.json and {spec}?resize=320 in part2.json: run every shard with the "
            "same --model (?resize= is 256 in part1.json and 320 in part2.json; of the spec only the model file's own "
            "path may differ between shards)") in said
    # In two folders too: the folder is let be, the option is not (and is the one difference named).
    said = _refusal(_parts(*({"spec": f"{folder}/models/m.pt?size={size}"} for folder, size in zip(FOLDERS, (224, 240)))))
    assert "(?size= is 224 in part1.json and 240 in part2.json; of the spec only" in said
    # A state dict read as another architecture, from one folder or two.
    said = _refusal(_parts(*({"spec": f"{folder}/models/m.pth?arch=torchvision:{arch}"}
                             for folder, arch in zip(FOLDERS, ("resnet18", "resnet34")))))
    assert "(?arch= is torchvision:resnet18 in part1.json and torchvision:resnet34 in part2.json; of the spec" in said


def test_other_weights_under_two_folders_are_refused_once_naming_the_fix():
    parts = _parts(*({"spec": f"{folder}/models/m.pt"} for folder in FOLDERS))
    parts[1]["models"]["m"]["sha256"] = "1" * 64
    # One line for one cause (review 38 N2): the other path is the other weights' file, not a second difference.
    assert _refusal(parts).splitlines()[1:] == [
        "  model m has other weights in part2.json (sha256 111111111111...) than in part1.json (000000000000...): run "
        "every shard on the same model file"]
    # What else of the spec differs is still said, on its own line.
    parts[1]["models"]["m"]["spec"] += "?resize=320"
    assert _refusal(parts).splitlines()[2] == (
        f"  model m is {FOLDERS[0]}/models/m.pt in part1.json and {FOLDERS[1]}/models/m.pt?resize=320 in part2.json: run "
        "every shard with the same --model (?resize= is not given in part1.json and 320 in part2.json; of the spec only "
        "the model file's own path may differ between shards)")


def test_parts_that_loaded_the_model_are_compared_with_each_other_where_part_1_never_loaded_it():
    """Review 38 M1: part 1 was the only yardstick; a part 1 that never loaded the model (nothing recorded) let shards 2
    and 3 run other weights from other folders and merge, the merged entry saying loaded: false."""
    whole, parts = varied_runs(7, count=3)
    names = ["part1.json", "part2.json", "part3.json"]
    folders = ("/builds/r1/0/team", "/builds/r7/3/team", "/builds/r9/1/team")
    for part, folder, loaded in zip(parts, folders, ({"loaded": False, "error": None}, {"sha256": "1" * 64},
                                                     {"sha256": "2" * 64})):
        part["models"]["m"] = {"spec": f"{folder}/m.pt", "name": "m", **loaded}
    with pytest.raises(Unmergeable) as refused:
        merge_reports(copy.deepcopy(parts), names)
    assert str(refused.value).splitlines()[1:] == [
        "  model m has other weights in part3.json (sha256 222222222222...) than in part2.json (111111111111...): run "
        "every shard on the same model file"]
    # The same weights in parts 2 and 3: merged, the entry of the first part that loaded it, and the note says why.
    parts[2]["models"]["m"]["sha256"] = "1" * 64
    merged = merge_reports(parts, names)
    assert merged["models"]["m"] == parts[1]["models"]["m"]
    assert ("model m was given as /builds/r7/3/team/m.pt in part2.json, /builds/r1/0/team/m.pt in part1.json, "
            "/builds/r9/1/team/m.pt in part3.json (from other paths; part1.json never loaded it: none of its tests ran "
            "there; part3.json: the same weights, sha256 equal); models.m shows part2.json's entry") in merged["run"]["notes"]
    by = lambda r: {e["nodeid"]: (e["outcome"], e["metrics"]) for e in r["audits"]}  # noqa: E731
    assert by(merged) == by(whole)


def test_class_lists_of_the_same_names_and_other_ids_are_refused_naming_the_ids():
    parts = _parts(*({"spec": "m.pt", "classes": {**_classes("."), "ids": ids}} for ids in (["a", "b", "c"], ["a", "b", "x"])))
    assert ("model m has other classes in part2.json than in part1.json (their class lists differ (ids)): give every "
            "shard the same class names") in _refusal(parts)


def test_a_class_file_under_two_folders_must_name_the_same_classes():
    # Recorded in both parts and different: refused as other classes, naming the first output that differs.
    specs = [f"{folder}/models/m.pt?classes={folder}/classes.txt" for folder in FOLDERS]
    parts = _parts({"spec": specs[0], "classes": _classes(FOLDERS[0])},
                   {"spec": specs[1], "classes": _classes(FOLDERS[1], ["cat", "wolf", "fox"])})
    said = _refusal(parts)
    assert ("model m has other classes in part2.json than in part1.json (output 1 is 'dog' in part1.json, 'wolf' in "
            "part2.json): give every shard the same class names (?classes=, --audit-classes)") in said
    assert "?classes= is" not in said  # the class names were compared, not the file's path
    # One spec, one path, but the file differed between the checkouts (another commit): refused all the same.
    one_path = copy.deepcopy(parts)
    one_path[1]["models"]["m"]["spec"] = specs[0]
    assert "model m has other classes in part2.json than in part1.json (output 1 is 'dog'" in _refusal(one_path)
    # Not recorded (a part of schema 3): the file's path is all there is to compare.
    for part in parts:
        part["models"]["m"].pop("classes")
    said = _refusal(parts)
    assert (f"(?classes= is {FOLDERS[0]}/classes.txt in part1.json and {FOLDERS[1]}/classes.txt in part2.json; of the "
            "spec only") in said


def test_a_spec_apart_from_its_model_files_path():
    """What merge compares of two specs of the same weights: every kind's own file or folder stands as FILE; the
    query, ?reference='s and ?arch='s paths included, stays as in the canonical form."""
    assert form_and_options("/a/m.pt?resize=256&name=x") == ("FILE", {"resize": "256"})
    assert form_and_options("timm:resnet18:/a/w.safetensors?size=8") == ("timm:resnet18:FILE", {"size": "8"})
    assert form_and_options("hf:/a/vit") == ("hf:FILE", {})
    assert form_and_options("hf:org/vit@v2") == ("hf:org/vit@v2", {})  # a hub repo id: no path
    assert form_and_options("/a/m.onnx?reference=/a/m.pth?arch=torchvision:resnet18") == (
        "FILE", {"reference": "/a/m.pth?arch=torchvision:resnet18"})
    assert form_and_options("tests.tiny_models:tiny?classes=./c.txt") == ("tests.tiny_models:tiny", {"classes": "c.txt"})


def test_an_onnx_files_reference_model_under_two_folders_is_refused_naming_it():
    """?reference= names a torch model whose weights the ONNX file's sha256 does not cover: its path is compared."""
    specs = [f"{folder}/m.onnx?reference={folder}/m.pth?arch=torchvision:resnet18" for folder in FOLDERS]
    said = _refusal(_parts(*({"spec": spec} for spec in specs)))
    # The fix named is the one that works (review 38 M2): every shard ran the same --model string already.
    assert (f"model m is {specs[0]} in part1.json and {specs[1]} in part2.json: write ?reference='s path relative to the "
            f"checkout (the same string in every shard) (?reference= is {FOLDERS[0]}/m.pth?arch=torchvision:resnet18 in "
            f"part1.json and {FOLDERS[1]}/m.pth?arch=torchvision:resnet18 in part2.json; of the spec only") in said
    # Another reference model, not only another path to it: the same --model, as before.
    said = _refusal(_parts(*({"spec": f"{folder}/m.onnx?reference={folder}/m.pth?arch=torchvision:{arch}"}
                             for folder, arch in zip(FOLDERS, ("resnet18", "resnet34")))))
    assert re.search(r": run every shard with the same --model \(\?reference= is /builds/r1/0/team/m.pth\?arch=torch", said)
    assert "relative to the checkout" not in said


def test_a_model_one_shard_never_loaded_may_be_named_from_another_folder_there():
    """A model whose selected tests all run whole in shard 1 (deployment, channel bias) is not loaded in shard 2: its
    entry there has no sha256, and nothing of it was read. Its spec's folder may differ; its options may not."""
    parts = _parts({"spec": f"{FOLDERS[0]}/models/m.pt"}, {"spec": f"{FOLDERS[0]}/models/m.pt"})
    for part, folder, loaded in zip(parts, FOLDERS, ({"sha256": "2" * 64}, {"loaded": False, "error": None})):
        part["models"]["w"] = {"spec": f"{folder}/models/w.pt?size=224", "name": "w", **loaded}
    merged = merge_reports(copy.deepcopy(parts), NAMES)
    assert merged["models"]["w"]["sha256"] == "2" * 64
    assert (f"model w was given as {FOLDERS[0]}/models/w.pt?size=224 in part1.json, {FOLDERS[1]}/models/w.pt?size=224 in "
            "part2.json (from other paths; part2.json never loaded it: none of its tests ran there); models.w shows "
            "part1.json's entry") in merged["run"]["notes"]
    # Its class file is not read there either (review 38 M2): its path may differ too, the merged entry's classes
    # being those of the part that loaded it.
    classed = copy.deepcopy(parts)
    for part, folder in zip(classed, FOLDERS):
        part["models"]["w"]["spec"] += f"&classes={folder}/classes.txt"
    classed[0]["models"]["w"]["classes"] = _classes(FOLDERS[0])
    assert merge_reports(classed, NAMES)["models"]["w"]["classes"] == _classes(FOLDERS[0])
    # ?classes= given in one part only is a difference, loaded or not (review 38c F5)
    classed[1]["models"]["w"]["spec"] = f"{FOLDERS[1]}/models/w.pt?size=224"
    assert f"?classes= is {FOLDERS[0]}/classes.txt in part1.json and not given in part2.json" in _refusal(classed)
    parts[1]["models"]["w"]["spec"] = f"{FOLDERS[1]}/models/w.pt?size=240"
    assert "(?size= is 224 in part1.json and 240 in part2.json; of the spec only" in _refusal(parts)
    parts[1]["models"]["w"].update(spec=f"{FOLDERS[1]}/models/w.pt?size=224", error="RuntimeError: no such file")
    assert (f"model w is {FOLDERS[0]}/models/w.pt?size=224 in part1.json and {FOLDERS[1]}/models/w.pt?size=224 in "
            "part2.json: run every shard with the same --model (it did not load in part2.json: its weights could not be "
            "compared)") in _refusal(parts)


def test_parts_that_read_a_models_outputs_in_two_forms_are_refused():
    # One shard's load found probabilities (read as their logarithms), the other's logits: their numbers merged as one
    # model's, the merged entry saying the first part's form.
    parts = _parts({"outputs": "probabilities"}, {"outputs": "logits"})
    said = _refusal(parts)
    assert ("model m returns probabilities in part1.json and logits in part2.json (as each part's load found, or its "
            "?outputs= said)") in said and "?outputs=" in said
    assert merge_reports(_parts({"outputs": "logits"}, {}), NAMES)["models"]["m"]["outputs"] == "logits"  # older: logits
