"""A pytest plugin for tests (``-p tests.progress_every_batch``): a progress update after every batch, so that a short
run prints the lines a long one prints every few seconds (visionaudit/progress.py's ``UPDATE_EVERY``)."""

from visionaudit import progress

progress.UPDATE_EVERY = 0.0
