"""Labelled images for any label space: class-name folders, CSV manifests, WNID folders with a stray folder
(visionaudit/data/image_sets.py, visionaudit/data/manifest.py), bound to a model's classes by name."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from PIL import Image

from visionaudit.data import image_sets as datasets
from visionaudit.data.label_space import LabelSpace, imagenet1k, output_indices
from visionaudit.errors import DataError, UnusableImages

TEN = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
SPACE = LabelSpace(TEN, "test classes")


def _image(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".bmp": "BMP"}[path.suffix.lower()]
    Image.new("RGB", (8, 8), (10, 20, 30)).save(path, format=fmt)
    return path


def test_class_name_folders_bind_by_name_with_any_extension_case(tmp_path):
    # Folder names as people write them: case, spaces, - and _ ignored; extensions in any case.
    files = {"Airplane": ["a.jpg", "b.JPEG"], "auto mobile": ["c.png"], "TRUCK": ["d.WebP", "e.BMP"], "cat": []}
    for folder, names in files.items():
        (tmp_path / folder).mkdir()
        for name in names:
            _image(tmp_path / folder / name)
    (tmp_path / "cat" / ".DS_Store").write_text("")  # hidden: nobody's data
    s = datasets.labelled_images(tmp_path)
    assert s.labels is None and s.classes is None  # not bound until a model reads it
    bound = s.for_classes(SPACE)
    expected = {"Airplane/a.jpg": 0, "Airplane/b.JPEG": 0, "TRUCK/d.WebP": 9, "TRUCK/e.BMP": 9, "auto mobile/c.png": 1}
    assert dict(zip(bound.sample_ids, bound.labels)) == expected
    # Classes without images, said by name (the set covers 3 of the 10)
    assert datasets.classes_without_images(s, SPACE) == [n for n in TEN if n not in ("airplane", "automobile", "truck")]


def test_the_labels_of_class_name_folders_not_yet_matched_to_a_model_name_the_call_that_matches_them(tmp_path):
    """Stop 43: docs' Python example (quickstart, architecture) says "or any labelled images", but a team's class-name
    folders have no labels until matched to a model's classes: label_tensor() said only "has no class labels". The
    example's call for them, for_classes(model.label_space), gives the class file's order."""
    for folder in ("truck", "Airplane"):
        _image(tmp_path / folder / "a.png")
    s = datasets.labelled_images(tmp_path)
    with pytest.raises(DataError, match=r"has no class labels: its images name their classes; match them to a model's "
                                        r"output indices: images.for_classes\(model.label_space\)$"):
        s.label_tensor()
    assert s.for_classes(SPACE).label_tensor().tolist() == [TEN.index("airplane"), TEN.index("truck")]  # sorted paths
    with pytest.raises(DataError, match=r"has no class labels$"):  # stimuli name no classes to match
        datasets.ImageSet("stimuli", tmp_path, ()).label_tensor()


def test_a_file_that_is_not_an_image_is_named(tmp_path):
    _image(tmp_path / "cat" / "a.jpg")
    (tmp_path / "cat" / "notes.txt").write_text("x")
    with pytest.raises(DataError, match=r"1 file\(s\) .* cannot be used: cat/notes.txt\. Each image goes in its class's folder"):
        datasets.labelled_images(tmp_path)
    (tmp_path / "cat" / "notes.txt").unlink()
    _image(tmp_path / "loose.PNG")  # an image beside the class folders has no class
    (tmp_path / "README.md").write_text("x")  # other files beside them are not images: fine
    with pytest.raises(DataError, match=r"1 file\(s\) .* cannot be used: loose.PNG\."):
        datasets.labelled_images(tmp_path)


def test_a_label_that_could_be_two_classes_is_refused_not_given_to_the_first(tmp_path):
    """Stop 40: with classes 'cat' and 'Cat' (a team's file may hold both), a label 'CAT' matches each loosely and
    neither exactly, and a name several classes share ('cell', three ImageNet-21k classes) is none in particular:
    their images went to the first without a word. Exact, unshared names and WNIDs bind as before. (CSV labels: a
    folder per spelling would need a case-sensitive file system.)"""
    space = LabelSpace(("cat", "Cat", "dog", "sea lion", "sea_lion"), "test classes")
    assert [space.index(n) for n in ("cat", "Cat", "dog", "DOG", "sea lion", "sea_lion")] == [0, 1, 2, 2, 3, 4]
    assert [space.index(n) for n in ("CAT", "sealion", "Sea Lion")] == [None, None, None]
    for name in ("a.png", "b.png", "c.png", "d.png"):
        _image(tmp_path / name)
    manifest = tmp_path / "labels.csv"
    manifest.write_text("a.png,cat\nb.png,Cat\nc.png,DOG\n")
    bound = datasets.labelled_images(manifest).for_classes(space)
    assert dict(zip(bound.sample_ids, bound.labels)) == {"a.png": 0, "b.png": 1, "c.png": 2}
    manifest.write_text("a.png,cat\nb.png,CAT\nc.png,dgo\nd.png,SeaLion\n")
    with pytest.raises(DataError) as e:
        datasets.labelled_images(manifest).for_classes(space)
    said = str(e.value)
    assert "2 class name(s) of the images in " in said and " match more than one class of the model alike" in said
    assert "'CAT' (cat, Cat); 'SeaLion' (sea lion, sea_lion); name each folder (or CSV label) as exactly one class" in said
    assert "1 class name(s) of the images in" in said and "'dgo' (closest class: 'dog')" in said  # the unmatched too

    shared = LabelSpace(("cell", "cell", "cell", "dog"), "test 21k", ("n1", "n2", "n3", "n4"))
    manifest.write_text("a.png,cell\nb.png,n2\nc.png,dog\n")
    with pytest.raises(DataError, match=r"'cell' \(cell \(n1\), cell \(n2\), cell \(n3\)\); name each folder \(or "
                                        r"CSV label\) as exactly one class, or by its WNID"):
        datasets.labelled_images(manifest).for_classes(shared)
    manifest.write_text("b.png,n2\nc.png,dog\n")
    assert datasets.labelled_images(manifest).for_classes(shared).labels == (1, 3)
    # Stop 41: a name matching a shared name only loosely ('Cell') is none of them either, not the first.
    assert shared.index("Cell") is None and shared.ambiguous("Cell") == ("cell (n1)", "cell (n2)", "cell (n3)")
    _image(tmp_path / "folders" / "Cell" / "a.png")
    with pytest.raises(DataError, match=r"'Cell' \(cell \(n1\), cell \(n2\), cell \(n3\)\); name each folder"):
        datasets.labelled_images(tmp_path / "folders").for_classes(shared)


def test_imagenets_corgi_and_sweater_are_told_apart(tmp_path):
    """ImageNet-1k's one pair alike up to case: 'Cardigan' (the Welsh corgi) and 'cardigan' (the sweater). A folder
    'CARDIGAN' gave the sweaters to the corgi (output 264, the first) without a word."""
    space = imagenet1k("test")
    corgi, sweater = space.index("n02113186"), space.index("n02963159")
    assert (space.names[corgi], space.names[sweater]) == ("Cardigan", "cardigan") and corgi < sweater
    _image(tmp_path / "CARDIGAN" / "a.png")
    with pytest.raises(DataError, match=r"'CARDIGAN' \(Cardigan \(n02113186\), cardigan \(n02963159\)\)"):
        datasets.labelled_images(tmp_path).for_classes(space)
    (tmp_path / "CARDIGAN").rename(tmp_path / "cardigan")
    assert datasets.labelled_images(tmp_path).for_classes(space).labels == (sweater,)


def test_unmatched_folders_are_named_with_the_closest_class(tmp_path):
    for folder in ("cats", "truck", "Horsе"):  # the last with a Cyrillic 'е': looks right, is not
        _image(tmp_path / folder / "a.png")
    with pytest.raises(DataError) as e:
        datasets.labelled_images(tmp_path).for_classes(SPACE)
    text = str(e.value)
    assert "2 class name(s)" in text and "'cats' (closest class: 'cat')" in text and "'truck'" not in text
    # Two names that print alike are shown escaped, so that the difference can be seen
    assert "'Hors\\u0435' (closest class: 'horse'; the two differ in characters that print alike, shown escaped)" in text


def test_accents_match_however_they_are_composed_and_invisible_marks_are_ignored(tmp_path):
    """macOS and zip write folder names decomposed (NFD: e + U+0301), classes files are mostly composed (NFC:
    U+00E9): the same name either way round. A byte-order mark or a zero-width space is no part of a name."""
    space = LabelSpace(("caf\u00e9", "cre\u0300me", "bird"), "test classes")
    folders = {"cafe\u0301": 0, "cr\u00e8me": 1, "CAF\u00c9 2": None, "\ufeffbird": 2, "bi\u200brd": 2}
    assert {f: space.index(f) for f in folders} == folders
    for folder in ("cafe\u0301", "cr\u00e8me", "bi\u200brd"):
        _image(tmp_path / folder / "a.png")
    bound = datasets.labelled_images(tmp_path).for_classes(space)
    assert sorted(zip(bound.sample_ids, bound.labels)) == sorted(
        [("cafe\u0301/a.png", 0), ("cr\u00e8me/a.png", 1), ("bi\u200brd/a.png", 2)])


def test_a_folder_among_wnid_folders_is_not_dropped(tmp_path):
    # issue 23, item 3: cats/ and a typo beside WNID folders stop the ImageNet-1k binding, named with the closest
    for folder in ("n01440764", "n01443537", "cats", "n0144O764"):
        _image(tmp_path / folder / "a.jpg")
    s = datasets.labelled_images(tmp_path)
    assert len(s) == 4 and s.classes is None
    with pytest.raises(DataError) as e:
        s.for_classes(imagenet1k())
    text = str(e.value)
    assert "2 class name(s)" in text and "'n0144O764' (closest class: 'tench (n01440764)')" in text and "'cats'" in text
    # WNID folders only: bound to ImageNet-1k as they are read, as before
    (tmp_path / "cats" / "a.jpg").unlink(), (tmp_path / "cats").rmdir()
    (tmp_path / "n0144O764" / "a.jpg").unlink(), (tmp_path / "n0144O764").rmdir()
    s = datasets.labelled_images(tmp_path)
    assert s.labels == (0, 1) and s.classes == imagenet1k()


def test_a_folder_inside_a_class_folder_stops_named(tmp_path):
    # Its images would be left out without a word (or put in a class nobody chose): refused, named, with the fix.
    _image(tmp_path / "n01440764" / "a.JPEG")
    _image(tmp_path / "n01440764" / "sub" / "x.JPEG")
    _image(tmp_path / "n01443537" / "b.JPEG")
    with pytest.raises(DataError, match=r"1 folder\(s\) inside the class folders of .*: n01440764/sub/\. Nested folders "
                                        r"are not read; move the images up into their class folder or list them "
                                        r"in a CSV manifest"):
        datasets.labelled_images(tmp_path)


def test_a_number_folder_is_not_an_output_index(tmp_path):
    # A stray 7/ among WNID folders (or class-name folders) is no class, not class 7.
    for folder in ("n01440764", "n01443537", "7"):
        _image(tmp_path / folder / "a.jpg")
    with pytest.raises(DataError, match=r"1 class name\(s\) .* '7'"):
        datasets.labelled_images(tmp_path).for_classes(imagenet1k())
    (tmp_path / "n01440764" / "a.jpg").rename(tmp_path / "7" / "b.jpg")
    (tmp_path / "n01440764").rmdir(), (tmp_path / "n01443537" / "a.jpg").unlink(), (tmp_path / "n01443537").rmdir()
    _image(tmp_path / "cat" / "a.jpg")
    with pytest.raises(DataError, match=r"'7'"):
        datasets.labelled_images(tmp_path).for_classes(SPACE)
    # Where the model's classes are its output indices, those are their names: 7/ is class 7.
    from visionaudit.data.label_space import output_indices

    (tmp_path / "cat" / "a.jpg").unlink(), (tmp_path / "cat").rmdir()
    bound = datasets.labelled_images(tmp_path).for_classes(output_indices(10))
    assert dict(zip(bound.sample_ids, bound.labels)) == {"7/a.jpg": 7, "7/b.jpg": 7}


def test_csv_manifest_with_names_and_indices(tmp_path):
    _image(tmp_path / "img" / "x.jpg")
    _image(tmp_path / "img" / "deep" / "y.PNG")
    _image(tmp_path / "z.webp")
    manifest = tmp_path / "labels.csv"
    manifest.write_text("path,label\nimg/x.jpg,Ship\nimg/deep/y.PNG,3\n\nz.webp,auto_mobile\n")
    s = datasets.labelled_images(manifest)
    assert s.name == "labels" and s.label_names == ("Ship", "3", "auto_mobile")
    bound = s.for_classes(SPACE)
    assert dict(zip(bound.sample_ids, bound.labels)) == {"img/x.jpg": 8, "img/deep/y.PNG": 3, "z.webp": 1}
    # without a header too
    manifest.write_text("img/x.jpg,ship\n")
    assert datasets.labelled_images(manifest).for_classes(SPACE).labels == (8,)


def test_csv_manifest_refuses_every_bad_row_by_line(tmp_path):
    _image(tmp_path / "in" / "ok.jpg")
    _image(tmp_path / "outside.jpg")
    (tmp_path / "in" / "doc.txt").write_text("x")
    manifest = tmp_path / "in" / "labels.csv"
    manifest.write_text(f"path,label\nok.jpg,cat\n../outside.jpg,cat\n{tmp_path / 'outside.jpg'},cat\nmissing.jpg,dog\n"
                        "doc.txt,dog\nok.jpg\n")
    with pytest.raises(DataError) as e:
        datasets.labelled_images(manifest)
    text = str(e.value)
    assert "5 row(s) unusable" in text
    for needle in ("line 3: ../outside.jpg is outside", "line 4: ", "line 5: no such file missing.jpg",
                   "line 6: doc.txt is not an image", "line 7: 'ok.jpg' is not one path,label pair"):
        assert needle in text
    manifest.write_text("ok.jpg,cat\nok.jpg,dog\n")
    with pytest.raises(DataError, match=r"1 row\(s\) unusable: line 2: ok.jpg listed again \(first on line 1\)"):
        datasets.labelled_images(manifest)


def test_a_manifest_names_every_problem_at_once_with_every_rows_label(tmp_path):
    # Repeats were said only once every row was usable: a run for the rows, another for the repeats.
    _image(tmp_path / "tench" / "c.jpg")
    _image(tmp_path / "cats" / "a.jpg")
    manifest = tmp_path / "labels.csv"
    manifest.write_text("path,label\ntench/c.jpg,tench\ncats/a.jpg,cat\nnope.jpg,tenhc\ntench/c.jpg,tench\n")
    with pytest.raises(UnusableImages) as e:
        datasets.labelled_images(manifest)
    assert str(e.value) == (f"CSV manifest {manifest}: 2 row(s) unusable: line 4: no such file nope.jpg; line 5: "
                            "tench/c.jpg listed again (first on line 2). Fix or remove those rows")
    # every row's label, the broken rows' too, for the check against the models' classes in the same message
    assert e.value.labels == ("tench", "cat", "tenhc", "tench") and e.value.numeric and e.value.root == tmp_path.resolve()
    assert pickle.loads(pickle.dumps(e.value)).labels == e.value.labels  # as it crosses to another process


def test_many_bad_rows_show_the_first_ten_of_each_kind_and_a_count(tmp_path):
    _image(tmp_path / "ok.jpg")
    manifest = tmp_path / "labels.csv"
    manifest.write_text("".join(f"gone{i}.jpg,cat\n" for i in range(25)) + "ok.jpg,cat\n" * 13)
    with pytest.raises(DataError) as e:
        datasets.labelled_images(manifest)
    text = str(e.value)
    assert "37 row(s) unusable: line 1: no such file gone0.jpg; " in text
    assert "line 10: no such file gone9.jpg; and 15 more; line 27: ok.jpg listed again (first on line 26)" in text
    assert "line 36: ok.jpg listed again (first on line 26); and 2 more. Fix" in text and "gone10.jpg" not in text


def test_class_folders_name_nested_folders_and_stray_files_at_once_with_the_folder_names(tmp_path):
    # Nested folders stopped the run alone; stray files were said on the next run, then the folder names.
    for path in ("tench/a.jpg", "tench/sub/b.jpg", "cats/c.jpg", "n0144O764/d.jpg", "stray.jpg"):
        _image(tmp_path / path)
    (tmp_path / "tench" / "notes.txt").write_text("x")
    with pytest.raises(UnusableImages) as e:
        datasets.labelled_images(tmp_path)
    assert len(e.value.problems) == 2
    assert e.value.problems[0].startswith(f"1 folder(s) inside the class folders of {tmp_path}: tench/sub/. ")
    assert e.value.problems[1].startswith(f"2 file(s) of {tmp_path} cannot be used: tench/notes.txt, stray.jpg. ")
    assert set(e.value.labels) == {"cats", "n0144O764", "tench"} and not e.value.numeric


def test_flat_files_without_a_class_are_named_together(tmp_path):
    _image(tmp_path / "n01440764_ok.jpg")
    _image(tmp_path / "holiday.jpg")
    _image(tmp_path / "n99999999_thing.jpg")
    with pytest.raises(DataError, match=r"2 file\(s\) of .* cannot be used: holiday.jpg: cannot tell its class; "
                                        r"n99999999_thing.jpg: 'n99999999' is not an ImageNet-1k WNID"):
        datasets.labelled_images(tmp_path)


def test_csv_label_out_of_range_is_unmatched(tmp_path):
    _image(tmp_path / "a.jpg")
    (tmp_path / "m.csv").write_text("a.jpg,10\n")
    with pytest.raises(DataError, match="'10'"):
        datasets.labelled_images(tmp_path / "m.csv").for_classes(SPACE)


def test_csv_numbers_are_names_only_where_the_class_names_are_numbers(tmp_path):
    """Review 43 F3: a number in a CSV is a class name, else an output index. With classes named "1".."10" (1-based
    ids) and labels written as output indices 0..9, "0" (no name: index 0) and "1" (the name of index 0) both became
    class "1", every label from 1 up one class off, without a word. Numbers are names only there, and "0" is refused."""
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        _image(tmp_path / name)
    numbered = LabelSpace(tuple(str(i) for i in range(1, 11)), "class file ids.txt")
    (tmp_path / "m.csv").write_text("a.jpg,0\nb.jpg,1\nc.jpg,10\n")
    with pytest.raises(DataError, match=r"1 class name\(s\) of the images in .* match no class of the model .*: '0'.*"
                                        r"the model's class names are numbers, so a number in a CSV is a class name, not "
                                        r"an output index$"):
        datasets.labelled_images(tmp_path / "m.csv").for_classes(numbered)
    (tmp_path / "m.csv").write_text("b.jpg,1\nc.jpg,10\n")
    assert datasets.labelled_images(tmp_path / "m.csv").for_classes(numbered).labels == (0, 9)  # by name
    (tmp_path / "m.csv").write_text("a.jpg,0\nb.jpg,ship\n")  # names that are no numbers: a number is an output index
    assert datasets.labelled_images(tmp_path / "m.csv").for_classes(SPACE).labels == (0, 8)
    # Classes nobody named: their names are the indices, and numbers match as before.
    assert [output_indices(10).index(n, numeric=True) for n in ("0", "07", "10")] == [0, 7, None]


def test_stratified_subset_of_unbound_folders_spreads_over_folders(tmp_path):
    for folder in ("cat", "dog"):
        for i in range(5):
            _image(tmp_path / folder / f"{i}.png")
    sub = datasets.labelled_images(tmp_path).stratified_subset(4, seed=1)
    assert sorted(sub.label_names) == ["cat", "cat", "dog", "dog"]


def test_missing_data_accepts_a_manifest(tmp_path):
    _image(tmp_path / "a.jpg")
    (tmp_path / "m.csv").write_text("a.jpg,cat\n")
    assert datasets.missing_data(str(tmp_path), str(tmp_path / "m.csv"), {datasets.LABELLED}) == []
    assert datasets.missing_data(str(tmp_path), str(tmp_path / "nope.csv"), {datasets.LABELLED})


def test_names_in_one_non_latin_script_print_readably_and_homoglyphs_escaped():
    """Two different names in one script ('кошки', 'кошка'; '金毛猫', '金毛犬') differ visibly: printed as they are.
    A Cyrillic letter standing in for a Latin one at the same place is a look-alike: printed escaped."""
    from visionaudit.data.label_space import look_alike, name_and_closest

    assert not look_alike("кошки", "кошка") and not look_alike("金毛猫", "金毛犬")
    assert name_and_closest("кошки", "кошка") == "'кошки' (closest class: 'кошка')"
    assert look_alike("Horsе", "horse") and look_alike("cat\u200b", "cat") and not look_alike("café", "cafe")


def test_labelled_images_from_python_on_a_missing_folder_names_the_call_not_only_the_option(tmp_path):
    """Review 34c: a Python call was told `point --audit-images at ...`, a pytest option it did not use."""
    with pytest.raises(DataError) as e:
        datasets.labelled_images(tmp_path / "foo")
    assert str(e.value).startswith(f"labelled images not found at {tmp_path / 'foo'}; give labelled_images() "
                                   "(--audit-images in a run) a folder of class folders"), e.value


def test_symbolic_links_to_nothing_are_named_not_left_out(tmp_path):
    """Stop 40: a link whose image is not there (a DVC or git-annex file not fetched, a mount missing, a loop) was
    neither a file nor a folder, so its image was left out without a word (a class folder's link, its whole class)."""
    _image(tmp_path / "cat" / "a.jpg")
    _image(tmp_path / "dog" / "b.jpg")
    (tmp_path / "dog" / "c.jpg").symlink_to("/nonexistent/c.jpg")
    (tmp_path / "dog" / "loop1").symlink_to("loop2")
    (tmp_path / "dog" / "loop2").symlink_to("loop1")
    (tmp_path / "bird").symlink_to(tmp_path / "not-mounted")
    with pytest.raises(UnusableImages) as e:
        datasets.labelled_images(tmp_path)
    assert list(e.value.problems) == [f"4 symbolic link(s) of {tmp_path} lead to nothing: bird -> {tmp_path}/not-mounted, "
                                "dog/c.jpg -> /nonexistent/c.jpg, dog/loop1 -> loop2, dog/loop2 -> loop1. Their images are "
                                "not there (a DVC or git-annex file not fetched, a mount missing, a loop): restore them or "
                                "remove the links."]


def test_a_flat_files_link_to_nothing_is_named(tmp_path):
    _image(tmp_path / "n01440764_ok.jpg")
    (tmp_path / "n01443537_gone.jpg").symlink_to("/nonexistent/n01443537_gone.jpg")
    with pytest.raises(DataError, match=r"^1 symbolic link\(s\) of .* lead to nothing: n01443537_gone.jpg -> "
                                        r"/nonexistent/n01443537_gone.jpg\. Their images are not there"):
        datasets.labelled_images(tmp_path)


@pytest.mark.parametrize("link, target", [
    (".#notes.txt", "root@host.123:1700000000"),  # an Emacs lock file is always a link to nothing
    ("README.md", ".git/annex/objects/xx/README.md"),  # a git-annex file not fetched that is no image
    (".cache", "/nonexistent/cache"),
])
def test_a_link_to_nothing_that_would_not_be_read_is_left_alone(tmp_path, link, target):
    """Review 40 F1: only links that would have been read (a class folder, an image) are refused; hidden names and
    other files are ignored at the root as their real files are."""
    _image(tmp_path / "cat" / "a.jpg")
    _image(tmp_path / "dog" / "b.jpg")
    (tmp_path / link).symlink_to(target)
    assert sorted(p.name for p in datasets.labelled_images(tmp_path).paths) == ["a.jpg", "b.jpg"]


def test_a_class_folders_link_whose_name_has_a_dot_is_named_not_left_out(tmp_path):
    """Final review 40 F3: 'St. Bernard' has a "suffix" (". Bernard") that names no file type: a class folder's link,
    refused as the others are (it was ignored as a file, its class left out without a word)."""
    _image(tmp_path / "cat" / "a.jpg")
    (tmp_path / "St. Bernard").symlink_to("/nonexistent/st-bernard")
    with pytest.raises(UnusableImages, match=r"1 symbolic link\(s\) of .* lead to nothing: St\. Bernard -> "):
        datasets.labelled_images(tmp_path)


def test_a_hidden_link_to_nothing_beside_flat_files_is_left_alone(tmp_path):
    _image(tmp_path / "n01440764_ok.jpg")
    (tmp_path / ".#n01440764_ok.jpg").symlink_to("root@host.1:1")
    assert [p.name for p in datasets.labelled_images(tmp_path).paths] == ["n01440764_ok.jpg"]
