"""The class-name check of a model whose classes are known only once it loads (fixtures/models.py, _check_classes):
only its own refusal, labelled images naming no class of the model, is reported as the model not loading
(review35b B3). A DataError of the images themselves, or of the note on classes without images, is not the model's:
it stays its own error, unchanged, and the model stays loaded in the report. The real runs: test_load_refusals.py."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

import fixtures.models as fm
from visionaudit.errors import DataError

MODEL_ID = "team:net"


class _Loaded(SimpleNamespace):
    def to_dict(self) -> dict:
        return {"id": self.id, "loaded": True}


def _request(images) -> SimpleNamespace:
    item = SimpleNamespace(fixturenames=("labelled_images",))
    return SimpleNamespace(config=SimpleNamespace(), session=SimpleNamespace(items=[item]),
                           getfixturevalue=lambda name: images)


@pytest.fixture
def noted(monkeypatch) -> list[dict]:
    """The model entries noted for the report; the check's collaborators replaced by ones each test steers."""
    noted: list[dict] = []
    monkeypatch.setattr(fm, "get_settings", lambda config: SimpleNamespace(classes=None))
    monkeypatch.setattr(fm, "known_before_load", lambda spec, classes: None)  # known only once loaded: checked here
    monkeypatch.setattr(fm, "note_model", lambda config, model_id, entry: noted.append(entry))
    monkeypatch.setattr(fm, "imagenet_hint", lambda space: " (HINT)")
    monkeypatch.setattr(fm, "note_uncovered", lambda *a: None)
    return noted


def _fails(*_a, **_k):
    raise DataError("PLANTED")


class _Images:
    def __init__(self, whole=None) -> None:
        self._whole = whole

    def whole(self, role):
        return self._whole() if self._whole else "IMAGES"


def test_labels_naming_no_class_are_the_models_failed_load(noted, monkeypatch):
    monkeypatch.setattr(fm, "classes_without_images", _fails)
    with pytest.raises(DataError) as info:
        fm._check_classes(_request(_Images()), MODEL_ID, _Loaded(id="net", spec=None, label_space="S"))
    assert str(info.value) == "model net: PLANTED (HINT)"
    assert noted == [{"id": "net", "loaded": False, "error": "DataError: model net: PLANTED (HINT)"}]


@pytest.mark.parametrize("where", ["the images", "the note"])
def test_a_data_error_not_of_the_models_classes_stays_its_own(noted, monkeypatch, where):
    monkeypatch.setattr(fm, "classes_without_images", lambda images, space: ["cat"])
    if where == "the note":
        monkeypatch.setattr(fm, "note_uncovered", _fails)
    images = _Images(whole=_fails if where == "the images" else None)
    with pytest.raises(DataError) as info:
        fm._check_classes(_request(images), MODEL_ID, _Loaded(id="net", spec=None, label_space="S"))
    assert str(info.value) == "PLANTED"  # not "model net: ...", no ?imagenet hint
    assert noted == []  # the model is not reported as not loaded
