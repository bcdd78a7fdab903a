"""``visionaudit report --from-journal`` where it cannot lock, write or remove (review34c items 1 and 6): never a
traceback; the journal is removed only when the report went to the journal's own report path."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from tests.cli.test_exit_codes import NODE, OTHER, _journal
from visionaudit import exit_codes
from visionaudit.cli import main
from visionaudit.report import run_lock

T0 = float(int(datetime(2026, 3, 1, 12, 0, 0).timestamp()))


def _killed(tmp_path: Path) -> Path:
    journal = tmp_path / "k.json.journal.jsonl"
    _journal(journal, T0, finished=[NODE], started=[OTHER], end=False)
    return journal


def test_a_journal_in_a_folder_it_cannot_write_is_rebuilt_elsewhere_and_kept(tmp_path, capsys, monkeypatch):
    """A CI artifact on a read-only mount: the lock cannot be taken (tests may run as root, so the OSError is made)."""
    journal = _killed(tmp_path)

    def read_only(path, command=""):
        raise PermissionError(13, "Permission denied", str(run_lock.lock_path(path)))

    monkeypatch.setattr(run_lock, "acquire", read_only)
    out = tmp_path / "elsewhere" / "out.json"
    out.parent.mkdir()
    assert main(["report", "--from-journal", str(journal), "-o", str(out)]) == exit_codes.NOT_PASS
    assert json.loads(out.read_text())["verdict"] == "incomplete"
    assert journal.exists()
    printed = capsys.readouterr().out
    assert "the journal is kept: its lock" in printed and "Permission denied" in printed, printed


def test_a_journal_it_cannot_remove_is_kept_with_a_note(tmp_path, capsys, monkeypatch):
    journal = _killed(tmp_path)
    real_unlink = Path.unlink

    def refuse(self, missing_ok=False):
        if self == journal:
            raise PermissionError(13, "Permission denied", str(self))
        return real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", refuse)
    assert main(["report", "--from-journal", str(journal)]) == exit_codes.NOT_PASS
    assert json.loads((tmp_path / "k.json").read_text())["verdict"] == "incomplete"
    printed = capsys.readouterr().out
    assert "the journal is kept (Permission denied)" in printed and "remove it by hand" in printed, printed


def test_a_report_it_cannot_write_is_one_exit_4_message_and_the_journal_stays(tmp_path, capsys):
    journal = _killed(tmp_path)
    (tmp_path / "blocker").write_text("a file, not a folder")
    out = tmp_path / "blocker" / "x.json"
    assert main(["report", "--from-journal", str(journal), "-o", str(out)]) == exit_codes.USAGE
    err = capsys.readouterr().err
    assert f"cannot write the report {out}" in err and "give -o PATH in a folder you can write to" in err, err
    assert "Traceback" not in err and journal.exists()


def test_a_journal_rebuilt_to_another_path_is_kept_beside_its_own_report(tmp_path, capsys):
    """With -o OTHER, k.json still holds an earlier run's report: the journal is what tells the next run on k.json
    that the last one was killed."""
    journal = _killed(tmp_path)
    other = tmp_path / "other.json"
    assert main(["report", "--from-journal", str(journal), "-o", str(other)]) == exit_codes.NOT_PASS
    assert json.loads(other.read_text())["verdict"] == "incomplete"
    assert journal.exists() and not (tmp_path / "k.json").exists()
    printed = capsys.readouterr().out
    assert f"the journal is kept: its report path {tmp_path / 'k.json'} was not written (-o)" in printed, printed
    # and to its own path, given as -o, it is removed
    assert main(["report", "--from-journal", str(journal), "-o", str(tmp_path / "k.json")]) == exit_codes.NOT_PASS
    assert not journal.exists()


def _naming_page(journal: Path, html: str) -> None:
    """The journal's run line naming ``html`` as the run's --audit-html page (plugins/json_report.py writes it)."""
    lines = [json.loads(line) for line in journal.read_text().splitlines()]
    lines[0]["html"] = html
    journal.write_text("".join(json.dumps(line) + "\n" for line in lines))


def test_a_journals_page_outside_the_reports_folder_is_never_written(tmp_path, capsys):
    """review43 F1: the page a journal names was written (or, failing that, removed) wherever it pointed: ../, an
    absolute path, a link out of the folder, the report's own name (the rebuilt report replaced by HTML)."""
    run, outside = tmp_path / "run", tmp_path / "outside"
    run.mkdir(), outside.mkdir()
    victim = outside / "victim.html"
    (run / "link.html").symlink_to(victim)
    for html in ("../outside/victim.html", str(victim), "link.html", "k.json", "sub/../../outside/victim.html", "a\0.html"):
        victim.write_text("precious")
        journal = _killed(run)
        _naming_page(journal, html)
        assert main(["report", "--from-journal", str(journal)]) == exit_codes.NOT_PASS
        assert victim.read_text() == "precious", html
        assert json.loads((run / "k.json").read_text())["verdict"] == "incomplete", html
        printed = capsys.readouterr().out
        assert f"html: the journal names the page {html}, " in printed and "not rendered" in printed, printed
        assert f"python -m visionaudit html {run / 'k.json'} -o PAGE.html renders it" in printed, printed
    journal = _killed(run)
    _naming_page(journal, "pages/p.html")  # inside the report's folder: rendered
    (run / "pages").mkdir()
    assert main(["report", "--from-journal", str(journal)]) == exit_codes.NOT_PASS
    assert "<!DOCTYPE html>" in (run / "pages" / "p.html").read_text()
    assert f"html: {run / 'pages' / 'p.html'} (rendered from the rebuilt report)" in capsys.readouterr().out


def test_a_kept_journals_page_is_left_and_said_without_a_none(tmp_path, capsys):
    """review43 F2: a kept journal (REPORT.journal.jsonl.<mtime>) has no report path of its own: the line said
    "not None"; and a page that is not there was said to hold an earlier run's page."""
    journal = _killed(tmp_path)
    _naming_page(journal, "page.html")
    kept = journal.rename(journal.with_name(journal.name + ".1767225600"))
    assert main(["report", "--from-journal", str(kept), "-o", str(tmp_path / "out.json")]) == exit_codes.NOT_PASS
    printed = capsys.readouterr().out
    assert "None" not in printed and "earlier run's page" not in printed, printed
    assert (f"html: {tmp_path / 'page.html'} is left as it is (the report went to {tmp_path / 'out.json'}, not the "
            "run's own report path)") in printed, printed
    assert not (tmp_path / "page.html").exists()


def test_a_report_given_for_a_journal_is_named_as_one_with_what_to_run_instead(tmp_path, capsys):
    """Stop 42's notes: --from-journal REPORT.json suggested -o (its name is not REPORT.journal.jsonl), and with -o it
    said "not a journal line". Both say it is a report, that it needs no rebuilding, and where its journal would be."""
    journal = _killed(tmp_path)
    report = tmp_path / "k.json"
    assert main(["report", "--from-journal", str(journal)]) == exit_codes.NOT_PASS and not journal.exists()
    capsys.readouterr()
    for extra in ([], ["-o", str(tmp_path / "other.json")]):
        assert main(["report", "--from-journal", str(report), *extra]) == exit_codes.USAGE
        err = capsys.readouterr().err
        assert f"{report} is a visionaudit report (verdict incomplete), not a journal" in err, err
        assert f"python -m visionaudit html {report} -o report.html" in err and "there is no k.json.journal.jsonl" in err
        assert "-o PATH" not in err and "not a journal line" not in err and "Traceback" not in err
    assert not (tmp_path / "other.json").exists()
    _killed(tmp_path)  # a later run on k.json was killed: its journal is what to give
    assert main(["report", "--from-journal", str(report)]) == exit_codes.USAGE
    assert f"python -m visionaudit report --from-journal {journal}" in capsys.readouterr().err


def test_a_shard_killed_before_its_tests_were_journalled_is_not_said_to_be_left_none(tmp_path, capsys):
    """Review 43 (integ) F1: a shard run killed after its run line, before collection, rebuilt with no test; the
    shard rule ("ran no test: the selection left it none; merge joins this part") gave it a cause it did not have,
    beside the page's "Interrupted". A stopped part's cause is the incomplete section's."""
    journal = tmp_path / "k.json.journal.jsonl"
    run = {"start": datetime.fromtimestamp(T0).astimezone().isoformat(timespec="seconds"), "duration": 0.0,
           "command": "pytest audits --audit-shard 2/2", "exit_status": None, "versions": {}, "seed": 0,
           "shard": {"index": 2, "count": 2}, "selection": {"selected": 0, "deselected": 0, "by": []}}
    journal.write_text(json.dumps({"event": "run", "run": run, "models": [], "spellings": {}, "time": T0}) + "\n")
    assert main(["report", "--from-journal", str(journal)]) == exit_codes.NOT_PASS
    report = json.loads((tmp_path / "k.json").read_text())
    assert report["verdict"] == "incomplete" and report["incomplete"]["interrupted"], report
    assert "left it none" not in (report["verdict_reason"] or ""), report["verdict_reason"]
    assert "left it none" not in capsys.readouterr().out


def _journal_of(report: dict, path: Path, html: str, page_inputs: dict | None) -> None:
    """A journal holding ``report``'s run, as plugins/json_report.py and plugins/collector.py write one: the run line
    (naming the page and, from stop 44, what it is drawn with), the models, samples and every test, then killed."""
    t = T0
    lines = [{"event": "run", "run": {k: v for k, v in report["run"].items() if k != "exit_status"},
              "models": list(report["models"]), "spellings": {}, "html": html, "time": t},
             {"event": "collected", "nodeids": [e["nodeid"] for e in report["audits"]], "time": t + 1},
             {"event": "tests", "tests": {e["nodeid"]: {"audit": e["audit"], "model": e["model"], "params": e["params"]}
                                          for e in report["audits"]}, "time": t + 1},
             {"event": "samples", "samples": report["samples"], "time": t + 1},
             *({"event": "model", "id": m, "info": info, "time": t + 2} for m, info in report["models"].items()),
             *({"event": "finished", "entry": e, "time": t + 3} for e in report["audits"])]
    if page_inputs is not None:
        lines[0]["page_inputs"] = page_inputs
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


@pytest.mark.slow  # the real data: the images under each transform, and the nine observers' decisions
def test_the_page_rebuilt_from_a_journal_is_the_runs_page(tmp_path, capsys, shared_data, browser):
    """stop 43's notes: the page `report --from-journal` rendered lacked the per-category human references and the
    images under each transform that the run's page has. The journal says what the page was drawn with (the reference
    files, the data root, the images); the rebuilt page is the run's page, in a browser: the same figures, the same
    images; what differs is only what it says about itself, and what the journal cannot give (files no longer there)
    is said on the page."""
    from tests.browser import visit
    from tests.html.fixture_reports import TWO
    from visionaudit.html.page import write_html
    from visionaudit.html.thumbnails import ImageSource, transform_strips
    from visionaudit.report.journal import rebuild

    references = sorted((shared_data / "texture-vs-shape-raw").glob("*.csv"))
    inputs = {"shape_bias_references": [str(p) for p in references], "data": str(shared_data), "images": None}
    journal = tmp_path / "k.json.journal.jsonl"
    _journal_of(TWO, journal, "page.html", inputs)
    rebuilt = rebuild(journal)
    runs_page = write_html(tmp_path / "run.html", rebuilt, references, transform_strips(rebuilt, shared_data),
                           images=ImageSource(shared_data))  # as plugins/html_page.py draws the run's own
    assert main(["report", "--from-journal", str(journal)]) == exit_codes.NOT_PASS
    assert f"html: {tmp_path / 'page.html'} (rendered from the rebuilt report)" in capsys.readouterr().out
    run_seen, seen = visit(runs_page), visit(tmp_path / "page.html")
    assert [f["label"] for f in seen.figures] == [f["label"] for f in run_seen.figures] and seen.figures
    assert [i["alt"] for i in seen.images] == [i["alt"] for i in run_seen.images]
    assert any(" of sample 1" in i["alt"] for i in seen.images) and all(i["loaded"] for i in seen.images), seen.images
    html = (tmp_path / "page.html").read_text()
    assert "humans (given decisions), per category" in html and html.count("<svg") == runs_page.read_text().count("<svg")
    text = " ".join(seen.text.split())
    assert "This page: rendered by python -m visionaudit report --from-journal" in text, text[:2000]
    assert [c for c in seen.console if c["level"] in ("SEVERE", "WARNING")] == []
    # the data root gone and one reference file gone: said, the rest drawn
    (tmp_path / "page.html").unlink()
    gone = tmp_path / "gone.csv"
    inputs = {**inputs, "data": str(tmp_path / "moved"), "shape_bias_references": [str(references[0]), str(gone)]}
    _journal_of(TWO, journal, "page.html", inputs)
    assert main(["report", "--from-journal", str(journal)]) == exit_codes.NOT_PASS
    text = " ".join(visit(tmp_path / "page.html").text.split())
    assert (f"This page: the per-category human references of {gone} are not drawn: the journal names them, and they "
            "are no longer there.") in text, text[:2000]
    assert f"no images: the run's data root {tmp_path / 'moved'} is no longer there" in text
    assert "humans (given decisions), per category" in (tmp_path / "page.html").read_text()  # the one still there


def test_report_from_journal_reads_the_journal_once(tmp_path, capsys, monkeypatch):
    """stop 43's notes: `report --from-journal` read the journal five times (whether it is a report, twice; the
    rebuild; again for the page's name). Once: the page's name and inputs come with the rebuilt report."""
    journal = _killed(tmp_path)
    _naming_page(journal, "page.html")
    real_open, reads = Path.open, []

    def counting(self, *args, **kwargs):
        if self.resolve() == journal.resolve():
            reads.append(args[0] if args else kwargs.get("mode", "r"))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", counting)
    assert main(["report", "--from-journal", str(journal)]) == exit_codes.NOT_PASS
    assert "<!DOCTYPE html>" in (tmp_path / "page.html").read_text()
    assert reads == ["r"], reads


def test_a_run_that_ends_while_its_journal_is_read_keeps_its_own_report(tmp_path, capsys, monkeypatch):
    """review44 F1: the journal is read before its run's lock is taken. A run still going that ends in between writes
    its complete report and removes its journal: the partial report read before must not be written over it."""
    from visionaudit.report import journal as journal_module

    journal = _killed(tmp_path)
    own = tmp_path / "k.json"
    real = journal_module.rebuild_journal

    def the_run_ends_meanwhile(path):
        rebuilt = real(path)
        if journal.exists():  # the run's end, as plugins/json_report.py does it: its report, then no journal
            own.write_text('{"the run": "complete"}')
            journal.unlink()
        return rebuilt

    monkeypatch.setattr(journal_module, "rebuild_journal", the_run_ends_meanwhile)
    assert main(["report", "--from-journal", str(journal)]) == exit_codes.USAGE
    assert json.loads(own.read_text()) == {"the run": "complete"}
    assert "its run ended and wrote its own report" in capsys.readouterr().err


def test_page_inputs_the_journal_gets_wrong_are_said_on_the_page_not_its_loss(tmp_path, capsys):
    """review44 F2: a journal is a file a user can edit or move. A reference file that is there but no decision CSV,
    a data root or image set that is no string: the page is still written, from what is right, saying what it left
    out (the page was lost: 'html: ... not written (DataError ...)')."""
    from tests.html.fixture_reports import TWO

    good = tmp_path / "observer.csv"  # the authors' raw-data format, three trials
    good.write_text("subj,session,trial,rt,object_response,category,condition,imagename\n"
                    "subject-01,1,1,1.0,clock,clock,0,0001_s_clock_00_clock4-chair1.png\n"
                    "subject-01,1,2,1.0,chair,clock,0,0002_s_clock_00_clock5-chair2.png\n"
                    "subject-01,1,3,1.0,bird,bird,0,0003_s_bird_00_bird1-bear2.png\n")
    bad = tmp_path / "notes.csv"
    bad.write_text("this is no decision file\n")
    journal = tmp_path / "k.json.journal.jsonl"
    _journal_of(TWO, journal, "page.html", {"shape_bias_references": [str(good), str(bad), 7], "data": ["x"], "images": 3})
    assert main(["report", "--from-journal", str(journal)]) == exit_codes.NOT_PASS
    assert f"html: {tmp_path / 'page.html'} (rendered from the rebuilt report)" in capsys.readouterr().out
    html = (tmp_path / "page.html").read_text()
    assert "humans (given decisions), per category" in html  # the good reference is drawn
    assert f"the per-category human references of {bad} are not drawn" in html, html[:3000]
    assert "the journal&#39;s page_inputs are not what a run writes" in html, html[:3000]
