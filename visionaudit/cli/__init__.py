"""``python -m visionaudit``: commands that do not need pytest.

One module per command, each with its parser builder (``add_parser``) and its ``run``; the options a
command shares with the pytest run come from visionaudit/cli/options.py. Every command exits with the
codes of visionaudit/exit_codes.py, as a pytest run does: 4 for a usage error or unreadable input, 2 when
interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys

from visionaudit import exit_codes
from visionaudit.errors import VisionAuditError
from visionaudit.version import __version__

from . import (
    compare,
    convert_checkpoint,
    families,
    fetch,
    html,
    merge,
    report,
    shape_bias,
)

COMMANDS = (fetch, convert_checkpoint, shape_bias, report, compare, merge, html, families)


class Parser(argparse.ArgumentParser):
    """argparse's, with a usage error exiting 4 (argparse's own is 2, which the table keeps for interrupted)."""

    def error(self, message: str):
        self.print_usage(sys.stderr)
        self.exit(exit_codes.USAGE, f"{self.prog}: error: {message}\n")


EPILOG = "exit codes (every command, and pytest runs): " + "; ".join(f"{code} {what.replace('`', '')}"
                                                                      for code, what in exit_codes.TABLE)


SCRIPT = "visionaudit"  # pyproject's [project.scripts]; visionaudit/__main__.py says "python -m visionaudit"


def build_parser(prog: str = SCRIPT) -> argparse.ArgumentParser:
    """The commands' parser; ``prog``, the name the user typed, heads --help and every usage error (subcommands too)."""
    parser = Parser(prog=prog, description="visionaudit commands that do not need pytest "
                    "(the audits themselves run as pytest audits --model SPEC ...)", epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"visionaudit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    for command_parser in sub.choices.values():
        command_parser.epilog = command_parser.epilog or EPILOG
    return parser


class ReaderGone:
    """A command's stdout or stderr: once its reader has gone (``python -m visionaudit compare A B | head`` read its
    lines and closed the pipe; ``shape-bias ... 2>&1 | head``, whose progress is on stderr), the rest of the output is
    dropped, quietly, and the command runs on to its own exit code (a gate job under ``set -o pipefail`` reads it; merge
    has its report to write, shape-bias its result on a stdout still read), not a BrokenPipeError traceback."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._gone()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._gone()

    def _gone(self) -> None:
        # What the stream still buffers is flushed again as Python exits: on /dev/null, that says nothing.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        except (OSError, ValueError):  # no file descriptor (a test's captured stdout): nothing is left to flush there
            pass

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def main(argv: list[str] | None = None, prog: str = SCRIPT) -> int:
    """Every command, its stdout and stderr each a :class:`ReaderGone` (flushed here: a pipe closed after the last
    write is found now, not by Python's own flush at exit, which would print a traceback and exit 120)."""
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = ReaderGone(stdout), ReaderGone(stderr)
    try:
        return _main(argv, prog)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = stdout, stderr


def _main(argv: list[str] | None, prog: str) -> int:
    parser = build_parser(prog)
    args, extra = parser.parse_known_args(argv)
    if extra:  # argparse would say it with the top-level usage; the command's own usage says what it takes
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        sub.choices[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.func(args)
    except VisionAuditError as e:
        print(f"error: {e}", file=sys.stderr)
        return exit_codes.USAGE
    except KeyboardInterrupt:
        print("interrupted; run the same command again to resume", file=sys.stderr)
        return exit_codes.INTERRUPTED
