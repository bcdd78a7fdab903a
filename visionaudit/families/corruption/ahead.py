"""A corruption pass's batches prepared in CPU threads ahead of the device.

Each batch of a condition's pass is corrupted (the kernels' per-image draws are made on the CPU, and shot noise's
Poisson counts and the JPEG-compression corruption run there outright), then goes through the JPEG
round trip (on the CPU with the default codec), and only then to the model. Done in turn, the device waits for
all of it. :class:`PreparedBatches` stands where the pass's uint8 images would (as
visionaudit.data.streaming.StreamedImages does for decoding): a reader that walks it in slices of one size, as
``predict_logits`` does, finds the next batches already being prepared in worker threads while the device runs
the current one. At most ``ahead`` batches are in the making at once (one thread each), so memory does not grow
with the set.

The same pixels as the pass in turn, bit for bit: each batch is prepared whole by one thread with the same
function on the same inputs (the draws are seeded per (seed, corruption, sample id), not by order), torch's
intra-op thread count is the process's in every thread (so its parallel reductions split alike), and the batches
come back in order. An error in a worker is raised to the reader when it reaches that batch, as the pass in turn
raises it; leaving the ``with`` block (done, or on an error of the reader's own) cancels what has not started and
waits for what has.

How many batches ahead: ``[audits.corruption] batches_ahead``. Its values, each device's default and where a number
cannot be honoured (then the batches are prepared in turn and the run says why) have one home,
visionaudit.families.corruption.switch; this module only runs the threads it is given.

Whether the device waits: :class:`ReaderWait` adds up how long the reader (the thread that runs the forward passes)
waited for each prepared batch, the first apart (the pipeline filling); benchmarks/corruptions.py ``--ahead`` prints it.
Here the wait is the whole of :meth:`PreparedBatches.__getitem__` (all of it is time the device is not fed): what a
worker had not finished of the batch when the reader asked, which is its slice of the set (a decode, for a streamed
set), the copy to the device and ``prepare``, and the handing of the next batches to the workers. In turn the pass
times ``prepare`` alone (CorruptionRun): the slice and the copy are then made by ``predict_logits`` outside it, as
in a pass with nothing to prepare.
"""

from __future__ import annotations

import contextlib
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from visionaudit.data.streaming import BatchSource

# prepare(batch on the model's device, positions of its images in the pass) -> the batch as the model is to see it
Prepare = Callable[[torch.Tensor, Sequence[int]], torch.Tensor]


@dataclass
class ReaderWait:
    """How long the reader waited for the prepared batches of one pass, in seconds: for the first batch (the pipeline
    filling: nothing could be ready before the pass began) and for all the others together (0 when the preparation
    keeps up with the reader). In turn, the reader prepares each batch itself: all of that time is waiting."""

    first: float = 0.0
    rest: float = 0.0
    batches: int = 0

    def add(self, seconds: float) -> None:
        if self.batches == 0:
            self.first = seconds
        else:
            self.rest += seconds
        self.batches += 1


class PreparedBatches(BatchSource):
    """``prepare`` applied to ``images`` (uint8 ``(N, C, H, W)`` on the CPU, or a StreamedImages set) batch by
    batch, read by contiguous slices (see the module docstring)."""

    def __init__(self, images: torch.Tensor, prepare: Prepare, device: torch.device, ahead: int) -> None:
        if ahead < 1:
            raise ValueError(f"ahead must be at least 1 batch, got {ahead}")
        self.images, self.prepare, self.device, self.ahead = images, prepare, torch.device(device), ahead
        self.shape = images.shape
        self._pool: ThreadPoolExecutor | None = None
        self._pending: dict[tuple[int, int], Future] = {}
        self._reading = threading.Lock()  # a StreamedImages set is read by one thread at a time (its read-ahead is not shared)
        self.wait = ReaderWait()  # the reader's wait for each batch (the module docstring)

    def __enter__(self) -> "PreparedBatches":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Cancel the batches not started, wait for those being prepared (a worker is never left running)."""
        for future in self._pending.values():
            future.cancel()
        self._pending.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _make(self, start: int, stop: int) -> torch.Tensor:
        """One batch, in a worker thread: as the reader's thread would make it (inference mode, the device)."""
        guard = torch.cuda.device(self.device) if self.device.type == "cuda" else contextlib.nullcontext()
        with self._reading:
            batch = self.images[start:stop]
        with guard, torch.inference_mode():
            return self.prepare(batch.to(self.device), range(start, stop))

    def _submit(self, key: tuple[int, int]) -> Future:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.ahead, thread_name_prefix="visionaudit-corrupt")
        return self._pool.submit(self._make, *key)

    def __getitem__(self, index) -> torch.Tensor:
        if not isinstance(index, slice) or index.step not in (None, 1):
            raise TypeError(f"prepared batches are read by contiguous slices (images[start:stop]), got {index!r}")
        n = len(self)
        start, stop, _ = index.indices(n)
        stop = max(start, stop)
        size = stop - start
        began = time.perf_counter()  # the whole call is time the device is not fed: the reader's wait
        future = self._pending.pop((start, stop), None)
        # the batches a reader walking in steps of this size asks for next; anything else is dropped
        following = [(s, min(n, s + size)) for s in range(stop, min(n, stop + size * self.ahead), size)] if size else []
        for key in [k for k in self._pending if k not in following]:
            self._pending.pop(key).cancel()
        if future is None:
            future = self._submit((start, stop))  # first in the queue: the reader waits for this one
        for key in following:
            if key not in self._pending:
                self._pending[key] = self._submit(key)
        try:
            return future.result()
        finally:
            self.wait.add(time.perf_counter() - began)
