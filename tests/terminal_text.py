"""Reading what a pytest run printed, for tests that check a message is said exactly once."""

from __future__ import annotations

import re

# pytest's own recap of failures; on CI (the CI or BUILD_NUMBER variable set) it prints each message in full
# instead of cutting it at the terminal width, so it repeats what the run already said where it happened.
_SUMMARY = re.compile(r"^=+ short test summary info =+$", re.MULTILINE)


def said_once(output: str, text: str) -> bool:
    """True when `text` is printed once in the run's own output, and at most once more in pytest's recap."""
    body, recap = (_SUMMARY.split(output, maxsplit=1) + [""])[:2]
    return body.count(text) == 1 and recap.count(text) <= 1
