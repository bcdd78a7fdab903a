"""One table of exit codes for every command (visionaudit/exit_codes.py): 0 pass, 1 not pass, 2 interrupted,
4 usage or unreadable input; and the CLI's --version."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from visionaudit import exit_codes
from visionaudit.cli import build_parser, main
from visionaudit.version import __version__

ROOT = Path(__file__).resolve().parents[2]
NODE = "test_a.py::test_a[tests.tiny_models:tiny]"
OTHER = "test_a.py::test_b[tests.tiny_models:tiny]"


def test_the_table_is_pytests_numbers():
    assert (exit_codes.PASS, exit_codes.NOT_PASS, exit_codes.INTERRUPTED, exit_codes.USAGE) == (
        pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED, pytest.ExitCode.INTERRUPTED, pytest.ExitCode.USAGE_ERROR)
    assert [code for code, _ in exit_codes.TABLE] == [0, 1, 2, 4]
    assert exit_codes.for_verdict("pass") == 0
    assert exit_codes.for_verdict("incomplete") == exit_codes.for_verdict("fail") == 1


def test_readmes_table_and_every_help_say_the_tables_words():
    """review35b B2: --help still said only "a gate failed" for 1 after README's row added a model that did not load;
    README's rows are now the table's words, and --help prints them (no Markdown backticks)."""
    readme = (ROOT / "README.md").read_text().split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    rows = {int(line.split("|")[1]): line.split("|", 2)[2].rsplit("|", 1)[0].strip()
            for line in readme.splitlines() if line[:4] in ("| 0 ", "| 1 ", "| 2 ", "| 4 ")}
    assert rows == dict(exit_codes.TABLE)
    assert "MODEL did not load" in rows[exit_codes.NOT_PASS] and "before any model loads" in rows[exit_codes.USAGE]
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for name, parser in sub.choices.items():
        for code, what in exit_codes.TABLE:
            assert f"{code} {what.replace('`', '')}" in (parser.epilog or ""), (name, code)


def test_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"visionaudit {__version__}"


def test_every_command_has_a_description_and_the_exit_codes():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for name, parser in sub.choices.items():
        assert parser.description, name
        assert "4 usage" in (parser.epilog or ""), name
    assert {a.dest: a.help for a in sub._choices_actions}.keys() == sub.choices.keys()  # a line each in the listing


def test_a_usage_error_exits_4_not_argparses_2(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["no-such-command"])
    assert stop.value.code == exit_codes.USAGE
    with pytest.raises(SystemExit) as stop:
        main(["compare", "only-one.json"])
    assert stop.value.code == exit_codes.USAGE


def test_compare_on_a_truncated_report_exits_4_like_the_baseline_option(tmp_path, capsys):
    whole = tmp_path / "whole.json"
    whole.write_text(json.dumps({"schema_version": 3, "audits": [], "verdict": "pass"}))
    truncated = tmp_path / "truncated.json"
    truncated.write_text(whole.read_text()[:25])
    assert main(["compare", str(truncated), str(whole)]) == exit_codes.USAGE
    assert f"old report {truncated} is not readable JSON" in capsys.readouterr().err


def _journal(path: Path, t0: float, finished: list[str], started: list[str], end: bool) -> None:
    """A journal as a run writes it (plugins/json_report.py, plugins/collector.py), with the lines' times."""
    def entry(nodeid: str) -> dict:
        return {"nodeid": nodeid, "audit": "accuracy", "model": "tests.tiny_models:tiny", "params": {}, "outcome": "passed",
                "duration": 1.0, "metrics": {"clean_top1": 0.9}, "thresholds": {}, "tables": {}, "message": None, "worker": None}

    start = datetime.fromtimestamp(t0).astimezone().isoformat(timespec="seconds")
    lines = [{"event": "run", "run": {"start": start, "end": start, "duration": 0.0, "command": "pytest", "exit_status": None,
                                      "versions": {}, "seed": 0}, "models": [], "spellings": {}, "time": t0},
             {"event": "collected", "nodeids": [NODE, OTHER], "time": t0 + 1}]
    t = t0 + 1
    for nodeid in finished:
        t += 20
        lines += [{"event": "started", "nodeid": nodeid, "time": t - 20},
                  {"event": "finished", "entry": entry(nodeid), "time": t}]
    for nodeid in started:
        t += 1.5
        lines.append({"event": "started", "nodeid": nodeid, "time": t})
    if end:
        t += 0.5
        lines.append({"event": "end", "exit_status": 0, "time": t})
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


def test_report_from_journal_exits_1_when_its_verdict_is_not_pass_and_ends_at_the_last_line(tmp_path, capsys):
    t0 = float(int(datetime(2026, 3, 1, 12, 0, 0).timestamp()))
    journal = tmp_path / "killed.json.journal.jsonl"
    _journal(journal, t0, finished=[NODE], started=[OTHER], end=False)  # killed while the second test ran
    assert main(["report", "--from-journal", str(journal)]) == exit_codes.NOT_PASS
    data = json.loads((tmp_path / "killed.json").read_text())
    assert data["verdict"] == "incomplete"
    # The last line, OTHER's start, came 1 + 20 + 1.5 s after the run began (the run line's own end is its start).
    assert data["run"]["duration"] == pytest.approx(22.5)
    assert datetime.fromisoformat(data["run"]["end"]).timestamp() == pytest.approx(t0 + 22.5, abs=1)

    done = tmp_path / "done.json.journal.jsonl"
    _journal(done, t0, finished=[NODE, OTHER], started=[], end=True)
    assert main(["report", "--from-journal", str(done)]) == exit_codes.PASS
    assert json.loads((tmp_path / "done.json").read_text())["run"]["duration"] == pytest.approx(41.5)


def test_a_journal_that_is_not_one_exits_4(tmp_path, capsys):
    odd = tmp_path / "odd.json.journal.jsonl"
    odd.write_text("not json\nnor this\n")
    assert main(["report", "--from-journal", str(odd)]) == exit_codes.USAGE


def test_interrupted_is_2(monkeypatch, capsys):
    from visionaudit.cli import families

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(families, "run", interrupted)
    assert main(["families"]) == exit_codes.INTERRUPTED


def test_python_m_visionaudit_exits_with_the_table(tmp_path):
    truncated = tmp_path / "t.json"
    truncated.write_text('{"schema_version": 3, "aud')
    proc = subprocess.run([sys.executable, "-m", "visionaudit", "compare", str(truncated), str(truncated)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 4, proc.stderr
    assert "Traceback" not in proc.stderr


def test_fetch_from_an_unreachable_server_exits_4(tmp_path, capsys):
    """Review of issues 23/24: fetch exited 1 (a gate failed) when the server could not be reached; the data cannot
    be had from here, which the table's 4 says (docs/report.md)."""
    import socket

    with socket.socket() as s:  # a loopback port nothing listens on: refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps({"edges": {"upstream": "e", "files": {"a.png": "0" * 64}}}))
    code = main(["fetch", "edges", "--dest", str(tmp_path / "d"), "--base-url", f"http://127.0.0.1:{port}",
                 "--manifest", str(manifest)])
    assert code == exit_codes.USAGE
    assert "cannot reach the download server 127.0.0.1:" in capsys.readouterr().err
    table = (ROOT / "docs" / "report.md").read_text()
    row = next(line for line in table.splitlines() if line.startswith("| 4 |"))
    assert "`fetch` cannot reach" in row


@pytest.mark.parametrize("content", ["{}", "[]", '{"audits": []}'])
def test_a_json_that_is_not_a_report_is_refused_alike_by_merge_compare_and_html(tmp_path, capsys, content):
    """hunt34: merge said "has schema None" (and a JSON list was a traceback) where compare and html said what it is."""
    odd = tmp_path / "notrep.json"
    odd.write_text(content)
    for argv in (["merge", str(odd), "-o", str(tmp_path / "m.json")], ["compare", str(odd), str(odd)],
                 ["html", str(odd), "-o", str(tmp_path / "p.html")]):
        assert main(argv) == exit_codes.USAGE, argv
        err = capsys.readouterr().err
        assert f"{odd} is not a visionaudit report (no schema_version or audits)" in err, (argv, err)
        assert "schema None" not in err and "Traceback" not in err
    assert not (tmp_path / "m.json").exists()


def test_report_from_journal_removes_the_journal_it_rebuilt_and_refuses_a_live_runs(tmp_path, capsys):
    """docs/report.md: the journal is removed once the report is written; left beside REPORT, the next run on REPORT
    would keep it as a killed run's not yet rebuilt and warn again (hunt34). A live run's journal is not rebuilt."""
    from visionaudit.report.run_lock import acquire, lock_path

    t0 = float(int(datetime(2026, 3, 1, 12, 0, 0).timestamp()))
    live = tmp_path / "live.json.journal.jsonl"
    _journal(live, t0, finished=[NODE], started=[OTHER], end=False)
    held = acquire(tmp_path / "live.json", "pytest audits --audit-json live.json")  # the run writing it still goes
    try:
        assert main(["report", "--from-journal", str(live)]) == exit_codes.USAGE
    finally:
        held.release()
    err = capsys.readouterr().err
    assert f"{live} is the journal of a run still going (pid {os.getpid()}" in err, err
    assert live.exists() and not (tmp_path / "live.json").exists()  # touched neither

    killed = tmp_path / "killed.json.journal.jsonl"
    _journal(killed, t0, finished=[NODE], started=[OTHER], end=False)
    assert main(["report", "--from-journal", str(killed)]) == exit_codes.NOT_PASS
    assert json.loads((tmp_path / "killed.json").read_text())["verdict"] == "incomplete"
    assert not killed.exists() and not lock_path(tmp_path / "killed.json").exists()
    assert "the journal is removed" in capsys.readouterr().out


HALF_REFUSAL = "is not a whole visionaudit report: it has no run, verdict, aggregates; give the --audit-json file"


def _half_report(tmp_path: Path) -> Path:
    half = tmp_path / "half.json"
    half.write_text(json.dumps({"schema_version": 7, "audits": []}))
    return half


def test_compare_refuses_a_half_report_as_html_does(tmp_path):
    """fixsmall: compare read {"schema_version": 7, "audits": []} as a report with verdict None (INCOMPLETE, exit 1)
    where html refused it with exit 4; compare now refuses it on either side, from the same check and message."""
    half, refusal = _half_report(tmp_path), HALF_REFUSAL
    whole = ROOT / "tests" / "report_fixtures" / "report_two_models.json"  # schema 3: still read
    for old, new, role in ((half, half, "old report"), (whole, half, "new report"), (half, whole, "old report")):
        proc = subprocess.run([sys.executable, "-m", "visionaudit", "compare", str(old), str(new)], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == exit_codes.USAGE and f"{role} {half} {refusal}" in proc.stderr, (role, proc.stderr)
        assert "Traceback" not in proc.stderr and "INCOMPLETE" not in proc.stdout
    kept = subprocess.run([sys.executable, "-m", "visionaudit", "compare", str(whole), str(whole)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert kept.returncode == exit_codes.NOT_PASS and "regression(s)" in kept.stdout, kept.stderr  # its verdict is fail


@pytest.mark.slow
def test_the_baseline_gate_refuses_a_half_report_at_startup(tmp_path, shared_data):
    from tests.audit_runs import audit

    half = _half_report(tmp_path)
    proc, _ = audit(tmp_path, shared_data, "gate", "-k", "test_clean_top1", f"--audit-baseline={half}")
    assert proc.returncode == exit_codes.USAGE and f"baseline report {half} {HALF_REFUSAL}" in proc.stderr, proc.stderr[-2000:]


def test_html_on_a_report_without_its_run_verdict_or_aggregates_exits_4(tmp_path, capsys):
    """Review 34c nit: {"schema_version": 6, "audits": []} passed the not-a-report check and ended in KeyError."""
    half = tmp_path / "half.json"
    half.write_text(json.dumps({"schema_version": 6, "audits": []}))
    assert main(["html", str(half), "-o", str(tmp_path / "p.html")]) == exit_codes.USAGE
    err = capsys.readouterr().err
    assert f"report {half} is not a whole visionaudit report: it has no run, verdict, aggregates" in err, err
    assert not (tmp_path / "p.html").exists()


@pytest.mark.parametrize("content, kind", [("5", "number"), ("[1]", "list")])
def test_a_json_that_is_not_an_object_is_refused_by_html_any_schema_and_compare(tmp_path, content, kind):
    """review35a F1: html --any-schema on `5` was a TypeError traceback, and on `[1]` said it "has no run, verdict,
    aggregates"; compare refuses it as not a report too."""
    odd = tmp_path / "odd.json"
    odd.write_text(content)
    for argv, said in ((["html", str(odd), "--any-schema", "-o", str(tmp_path / "p.html")],
                        f"report {odd} is not a visionaudit report: it holds a JSON {kind}, not an object"),
                       (["compare", str(odd), str(odd)], f"{odd} is not a visionaudit report")):
        proc = subprocess.run([sys.executable, "-m", "visionaudit", *argv], cwd=ROOT, capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == exit_codes.USAGE and said in proc.stderr, (argv, proc.stderr)
        assert "Traceback" not in proc.stderr and "has no run" not in proc.stderr
    assert not (tmp_path / "p.html").exists()


@pytest.mark.parametrize("damage, said", [
    ({"audits": {"x": 1}}, "its audits is an object, not a list"),
    ({"audits": [1]}, "its audits[0] is a number, not an object"),
    ({"models": []}, "its models is a list, not an object"),
    ({"run": "x"}, "its run is a string, not an object"),
    ({"shard": "2/2"}, "its run.shard is '2/2', not an object of index and count"),
])
def test_a_report_of_another_shape_is_refused_by_compare_html_and_merge(tmp_path, capsys, damage, said):
    """Stop 40: a hand-edited report whose sections are of another JSON type passed the checks of its keys, then ended
    in a traceback (AttributeError, TypeError): compare and merge exit 1, the baseline gate an INTERNALERROR (exit 3)
    with no report written."""
    whole = json.loads((ROOT / "tests" / "report_fixtures" / "report_two_models.json").read_text())
    part1 = json.loads(json.dumps(whole))
    part1["run"]["shard"] = {"index": 1, "count": 2}
    if "shard" in damage:
        whole["run"]["shard"] = damage["shard"]
    else:
        whole.update(damage)
    odd, first = tmp_path / "odd.json", tmp_path / "part1.json"
    odd.write_text(json.dumps(whole))
    first.write_text(json.dumps(part1))
    commands = [["merge", str(first), str(odd), "-o", str(tmp_path / "m.json")]]
    if "shard" not in damage:
        commands += [["compare", str(odd), str(first)], ["html", str(odd), "-o", str(tmp_path / "p.html")]]
    for command in commands:
        capsys.readouterr()
        assert main(command) == exit_codes.USAGE, command
        err = capsys.readouterr().err
        assert f"{odd} is not a whole visionaudit report: {said}" in err, (command, err)
    assert not (tmp_path / "m.json").exists() and not (tmp_path / "p.html").exists()


@pytest.mark.parametrize("command", ["merge", "html"])
@pytest.mark.parametrize("output, said", [
    ("{tmp}", "-o/--output {tmp} is a directory; give a file path, such as {tmp}/report."),
    ("{tmp}/afile/x", "-o/--output {tmp}/afile/x: {tmp}/afile is a file, not a folder; give a path in a folder you can "),
    ("", "-o/--output is empty (an unset variable?); give a file path, such as report."),
    # review 40 F2: a path the check cannot stat (a name too long) was a traceback from the check itself
    ("{tmp}/" + "x" * 300 + "/r", "-o/--output {tmp}/" + "x" * 300 + "/r: {tmp}/" + "x" * 300 + "/r cannot be reached "
     "(File name too long); give a path in a folder you can write to"),
])
def test_an_output_path_that_cannot_be_written_exits_4_before_the_work(tmp_path, capsys, command, output, said):
    """Stop 40: merge -o and html -o on a folder, under a file or empty merged the parts (or made the page), then ended
    in a traceback from the write (IsADirectoryError, FileExistsError, OSError), exit 1, nothing written."""
    (tmp_path / "afile").write_text("x")
    whole = ROOT / "tests" / "report_fixtures" / "report_two_models.json"
    out = output.format(tmp=tmp_path)
    args = ["merge", str(whole), str(whole), "-o", out] if command == "merge" else ["html", str(whole), "-o", out]
    assert main(args) == exit_codes.USAGE
    err = capsys.readouterr().err
    assert err.startswith(f"error: {said.format(tmp=tmp_path)}"), err
    assert (tmp_path / "afile").read_text() == "x"


def test_families_check_readme_on_a_missing_file_exits_4(tmp_path, capsys):
    assert main(["families", "--check-readme", str(tmp_path / "README.md")]) == exit_codes.USAGE
    err = capsys.readouterr().err
    assert f"--check-readme {tmp_path / 'README.md'} cannot be read (No such file or directory)" in err, err


@pytest.mark.parametrize("args, said", [
    (["compare", "", "{whole}"], "error: old report is empty (an unset variable?)"),
    (["compare", "{whole}", ""], "error: new report is empty (an unset variable?)"),
    (["html", "", "-o", "{tmp}/p.html"], "error: report is empty (an unset variable?)"),
    (["merge", "{whole}", "", "-o", "{tmp}/m.json"], "error: a report path is empty (an unset variable?)"),
])
def test_an_empty_report_argument_is_said_to_be_empty(tmp_path, capsys, args, said):
    """Stop 40: `compare "$PREV" report.json` with PREV unset read the working directory: "report . is not readable JSON
    ([Errno 21] Is a directory: '.')"."""
    whole = ROOT / "tests" / "report_fixtures" / "report_two_models.json"
    assert main([a.format(whole=whole, tmp=tmp_path) for a in args]) == exit_codes.USAGE
    err = capsys.readouterr().err
    assert err.startswith(said) and "give the --audit-json file of a run" in err, err


@pytest.mark.parametrize("what", ["folder", "binary"])
def test_a_journal_that_cannot_be_read_exits_4(tmp_path, capsys, what):
    """Stop 40: a folder (or `--from-journal ""`: the working directory) or a binary file was a traceback (exit 1)."""
    journal = tmp_path / "r.json.journal.jsonl"
    journal.mkdir() if what == "folder" else journal.write_bytes(b"\x80\x9e\xff" * 10)
    assert main(["report", "--from-journal", str(journal), "-o", str(tmp_path / "r2.json")]) == exit_codes.USAGE
    err = capsys.readouterr().err
    assert err.startswith(f"error: journal {journal} cannot be read (") and "give the REPORT.journal.jsonl file" in err, err
    assert not (tmp_path / "r2.json").exists()


@pytest.mark.parametrize("args, flag", [
    (["compare", "{whole}", "{whole}", "--config", ""], "--config"),
    (["compare", "{whole}", "{whole}", "--model", "a", "--baseline-as", " "], "--baseline-as"),
    (["html", "{whole}", "-o", "{tmp}/p.html", "--baseline", ""], "--baseline"),
    (["html", "{whole}", "-o", "{tmp}/p.html", "--baseline", "{whole}", "--config", ""], "--config"),
    (["html", "{whole}", "-o", "{tmp}/p.html", "--baseline", "{whole}", "--model", "a", "--baseline-as", ""],
     "--baseline-as"),
    (["html", "{whole}", "-o", "{tmp}/p.html", "--data", ""], "--data"),
    (["html", "{whole}", "-o", "{tmp}/p.html", "--shape-bias-reference", ""], "--shape-bias-reference"),
    (["shape-bias", "--model", "x", "--data", " "], "--data"),
    (["report", "--from-journal", ""], "--from-journal"),
    (["report", "--from-journal", "", "-o", "{tmp}/r.json"], "--from-journal"),
])
def test_an_empty_option_of_a_command_is_said_to_be_empty(tmp_path, capsys, args, flag):
    """Review 40 F3, F7: `compare A B --config "$CFG"` with CFG unset compared with the built-in tolerances without a
    word, `html --baseline ""` made a page with no comparison, an empty --baseline-as fell back to pairing by spec, and
    `report --from-journal ""` said the working directory was not named REPORT.journal.jsonl."""
    whole = ROOT / "tests" / "report_fixtures" / "report_two_models.json"
    assert main([a.format(whole=whole, tmp=tmp_path) for a in args]) == exit_codes.USAGE
    err = capsys.readouterr().err
    assert err.startswith(f"error: {flag} is empty (an unset variable?); give "), err
    assert (f"or leave {flag} out" in err) == (flag != "--from-journal"), err  # a required one cannot be left out
    assert list(tmp_path.iterdir()) == []


def test_compare_with_a_config_that_is_not_there_names_its_own_option(tmp_path, capsys):
    """cfg45 review F8: compare --config's refusal said "pass --audit-config PATH", the run's option, not compare's."""
    missing, looping = tmp_path / "nope.toml", tmp_path / "loop.toml"
    looping.symlink_to(looping)
    for config, said in [(missing, "does not exist; pass --config PATH"), (looping, "cannot be read (Too many levels")]:
        assert main(["compare", "old.json", "new.json", "--config", str(config)]) == exit_codes.USAGE
        err = capsys.readouterr().err
        assert f"config file {config} {said}" in err and "--audit-config" not in err, err
