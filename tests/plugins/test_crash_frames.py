"""What a crashed worker's entry keeps of faulthandler's dump: the fatal error and the crashing thread's innermost frames,
whatever the other threads' blocks before it and the extension-module list after it (their lengths vary by install)."""

from __future__ import annotations

from plugins.worker_channel import crash_frames

FATAL = "Fatal Python error: Segmentation fault"


def _dump(frames: int) -> str:
    other = ["Thread 0x00007f0000000001 (most recent call first):",
             *(f'  File "execnet/gateway_base.py", line {n} in receive' for n in range(1, 6))]
    current = ["Current thread 0x00007f0000000002 (most recent call first):",
               '  File "x.py", line 1 in crashed_here',
               *(f'  File "caller.py", line {n} in caller_{n}' for n in range(2, frames + 1))]
    # Python 3.14 adds the C stack after a blank line: not a Python frame.
    tail = ["", "Current thread's C stack trace (most recent call first):", '  Binary file "python3", at _PyEval_EvalFrame+0x1a',
            "", "Extension modules: torch._C, numpy.core._multiarray_umath, cuda.bindings._lib (total: 3)"]
    return "\n".join([FATAL, "", *other, "", *current, *tail])


def test_the_fatal_line_and_the_crashing_threads_innermost_30_frames_are_kept():
    """rep40 review F3: the rule was checked only through one install's stack, whose depth and extension list vary."""
    kept = crash_frames(_dump(40)).splitlines()
    assert kept[0] == FATAL
    assert kept[1] == "Current thread 0x00007f0000000002 (most recent call first):"
    assert kept[2] == '  File "x.py", line 1 in crashed_here'  # the frame that crashed, first
    assert sum(line.startswith('  File "') for line in kept) == 30
    assert kept[-1] == '  File "caller.py", line 30 in caller_30'
    text = "\n".join(kept)
    assert "Thread 0x00007f0000000001" not in text and "gateway_base" not in text and "Extension modules" not in text
    assert "C stack" not in text


def test_a_short_crashing_thread_ends_at_its_blank_line():
    kept = crash_frames(_dump(3)).splitlines()
    assert kept == [FATAL, "Current thread 0x00007f0000000002 (most recent call first):", '  File "x.py", line 1 in crashed_here',
                    '  File "caller.py", line 2 in caller_2', '  File "caller.py", line 3 in caller_3']


def test_a_dump_without_a_current_thread_comes_back_as_its_head():
    dump = FATAL + "\n\nStack (most recent call first):\n" + "\n".join(f'  File "y.py", line {n} in f' for n in range(400))
    kept = crash_frames(dump)
    assert dump.startswith(kept) and kept.startswith(FATAL + "\n\nStack (most recent call first):")
    assert 2000 <= len(kept) <= 3000
