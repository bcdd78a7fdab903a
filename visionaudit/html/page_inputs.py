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
    still there; the page says what it lacks and why."""
    from visionaudit.html.page import write_html
    from visionaudit.html.thumbnails import ImageSource, transform_strips

    said = ["rendered by python -m visionaudit report --from-journal from the report rebuilt from the journal of a run "
            "that did not finish"]
    references = [p for p in inputs.get("shape_bias_references") or [] if isinstance(p, str)]
    gone = [p for p in references if not Path(p).is_file()]
    if gone:
        said.append(f"the per-category human references of {', '.join(gone)} are not drawn: the journal names them, "
                    "and they are no longer there")
    strips, images = None, None
    if not inputs:  # a journal from before stop 44
        said.append("the journal does not say which reference files or data root the run's page had (a journal from "
                    "before visionaudit's stop 44): no human references per category, no images")
    elif inputs.get("data") and Path(inputs["data"]).is_dir():
        images = ImageSource(Path(inputs["data"]), inputs.get("images"))
        try:
            strips = transform_strips(report, images.data_root, inputs.get("images"))
        except Exception:  # noqa: BLE001  (an unreadable image: the page goes without the strip, as the run's does)
            strips = None
    elif inputs.get("data"):
        said.append(f"no images: the run's data root {inputs['data']} is no longer there (python -m visionaudit html "
                    "REPORT.json -o PAGE.html --data DIR draws them)")
    kept = [p for p in references if p not in gone]
    return write_html(path, report, kept, strips, images=images, page_notes=said)
