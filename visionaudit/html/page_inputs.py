"""What a run's page is drawn with beside its report (the per-category human references, the data root its images come
from), kept in the journal, so that the page ``report --from-journal`` renders for a killed run is the page the run
would have written: what the journal cannot give (a reference file or a data root no longer there) is said on it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence


def page_inputs(references: Sequence[str | Path], data: str | Path | None, images: str | None) -> dict[str, Any]:
    """The journal's ``page_inputs``: absolute paths, as the run saw them (``data``: its data root, None when it had
    none to give)."""
    return {"shape_bias_references": [str(Path(p).resolve()) for p in references],
            "data": str(Path(data).resolve()) if data is not None else None, "images": images}


def write_rebuilt_page(path: str | Path, report: dict[str, Any], inputs: dict[str, Any]) -> Path:
    """The page of a report rebuilt from a journal, drawn with the run's ``inputs`` (:func:`page_inputs`) where they are
    still there and still what they were (a journal is a file anyone can edit or move); the page says what it lacks
    and why, and is written all the same."""
    from visionaudit.html.page import write_html
    from visionaudit.html.thumbnails import ImageSource, transform_strips

    said = ["rendered by python -m visionaudit report --from-journal from the report rebuilt from the journal of a run "
            "that did not finish"]
    if not inputs:  # a journal from before stop 44
        said.append("the journal does not say which reference files or data root the run's page had (a journal from "
                    "before visionaudit's stop 44): no human references per category, no images")
    listed = inputs.get("shape_bias_references") or []
    listed = listed if isinstance(listed, list) else [listed]
    data, images = inputs.get("data"), inputs.get("images")
    if not all(isinstance(p, str) for p in listed) or not isinstance(data, (str, type(None))) \
            or not isinstance(images, (str, type(None))):
        said.append("the journal's page_inputs are not what a run writes (paths and names as text): what is not is left "
                    "out")
    references = [p for p in listed if isinstance(p, str)]
    gone = [p for p in references if not Path(p).is_file()]
    if gone:
        said.append(f"the per-category human references of {', '.join(gone)} are not drawn: the journal names them, "
                    "and they are no longer there")
    unread = [p for p in references if p not in gone and not _decisions(p)]
    if unread:
        said.append(f"the per-category human references of {', '.join(unread)} are not drawn: they are no longer "
                    "decision CSVs the page can read")
    strips, source = None, None
    images = images if isinstance(images, str) else None
    if isinstance(data, str) and Path(data).is_dir():
        source = ImageSource(Path(data), images)
        try:
            strips = transform_strips(report, source.data_root, images)
        except Exception:  # noqa: BLE001  (an unreadable image: the page goes without the strip, as the run's does)
            strips = None
    elif isinstance(data, str):
        said.append(f"no images: the run's data root {data} is no longer there (python -m visionaudit html "
                    "REPORT.json -o PAGE.html --data DIR draws them)")
    kept = [p for p in references if p not in gone and p not in unread]
    return write_html(path, report, kept, strips, images=source, page_notes=said)


def _decisions(path: str) -> bool:
    """Whether ``path`` still reads as the decision CSV the run's page drew."""
    from visionaudit.families.shape_bias.decisions_csv import shape_bias_from_csv

    try:
        shape_bias_from_csv(path)
    except Exception:  # noqa: BLE001  (any way it fails to read, the page goes without it and says so)
        return False
    return True
