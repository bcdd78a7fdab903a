"""Image sets larger than the decode budget: decoded on demand, a few batches ahead of the reader.

:class:`StreamedImages` stands where the uint8 ``(N, 3, H, W)`` tensor of a decoded set would:
``.shape``, ``.dtype``, ``.dim()``, ``len()``, and indexing by a slice (a batch) or by rows (a fixed
subset), each answered with a decoded tensor of just those images. A reader that walks the set in
slices of one size (``images[s:s + b]``, as ``predict_logits`` does) finds the next batches already
decoding in a thread pool while the model runs the current one (PIL releases the GIL while it decodes
and resizes); at most :data:`READ_AHEAD` batches are held, so memory does not grow with the set.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Iterator, Sequence

import torch

from visionaudit.data.decoding import DECODE_THREADS, decode_or_reason, refuse_unusable
from visionaudit.devices import release_heap_fragments
from visionaudit.preprocessing import Geometry

READ_AHEAD = 2  # batches decoded ahead of the reader: enough to hide a decode behind a forward pass

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _decoder_pool() -> ThreadPoolExecutor:
    """One pool per process: streamed sets share the decoding threads rather than each starting its own."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=DECODE_THREADS, thread_name_prefix="visionaudit-decode")
        return _pool


class BatchSource:
    """What a reader such as ``predict_logits`` asks of a uint8 ``(N, C, H, W)`` set besides its slices: ``shape``
    (set by the subclass), ``dtype``, ``dim()``, ``is_floating_point()``, ``len()``. :class:`StreamedImages` and the
    corruption family's prepared batches (visionaudit/families/corruption/ahead.py) stand where such a tensor would."""

    dtype = torch.uint8
    shape: torch.Size

    def dim(self) -> int:
        return 4

    def is_floating_point(self) -> bool:
        return False

    def __len__(self) -> int:
        return self.shape[0]


class StreamedImages(BatchSource):
    """The images of ``paths`` at ``geometry``, decoded when read (see the module docstring)."""

    device = torch.device("cpu")

    def __init__(self, paths: Sequence[Path], geometry: Geometry, read_ahead: int = READ_AHEAD) -> None:
        self.paths = tuple(paths)
        self.geometry = geometry
        self.shape = torch.Size((len(self.paths), 3, geometry.crop_size, geometry.crop_size))
        self.read_ahead = read_ahead
        self._ahead: dict[tuple[int, int], list[Future]] = {}  # (start, stop) -> one future per image

    def __repr__(self) -> str:
        return f"StreamedImages({len(self)} images at {self.geometry.crop_size}x{self.geometry.crop_size})"

    def __iter__(self) -> Iterator[torch.Tensor]:
        """One ``(3, H, W)`` image at a time, read in batches (with read-ahead)."""
        for _, batch in batches(self, 16):
            yield from batch

    def __getitem__(self, index) -> torch.Tensor:
        n = len(self)
        if isinstance(index, slice):
            start, stop, step = index.indices(n)
            return self._batch(start, max(start, stop)) if step == 1 else self._rows(range(start, stop, step))
        if isinstance(index, torch.Tensor) and index.dtype == torch.bool:
            if index.shape != (n,):
                raise IndexError(f"a boolean mask over {n} images must have shape ({n},), got {tuple(index.shape)}")
            index = index.nonzero().flatten()
        if hasattr(index, "tolist"):  # tensors and numpy arrays or scalars
            index = index.tolist()
        if isinstance(index, int):
            return self._rows([self._check(index, n)])[0]
        return self._rows([self._check(int(i), n) for i in index])

    @staticmethod
    def _check(i: int, n: int) -> int:
        if not -n <= i < n:
            raise IndexError(f"image {i} is out of range for {n} images")
        return i % n

    def _submit(self, rows: Sequence[int]) -> list[Future]:
        pool = _decoder_pool()
        return [pool.submit(decode_or_reason, self.paths[i], self.geometry) for i in rows]

    def _collect(self, futures: list[Future], which: str | None = "some") -> torch.Tensor:
        """The decoded images, or one refusal naming the unusable ones among them: ``which`` says where in the set they
        are, since only they were decoded (the set's other files may hold more); None: they are the whole set."""
        out = torch.empty((len(futures), *self.shape[1:]), dtype=torch.uint8)
        bad = []
        for i, future in enumerate(futures):
            result = future.result()
            if isinstance(result, str):
                bad.append(result)
            else:
                out[i] = result
        refuse_unusable(bad, len(futures), "" if which is None else f" ({which} of the set's {len(self):,}, decoded as "
                                                                     "they are read, so the rest may hold more)")
        release_heap_fragments()  # the decoders' freed buffers would otherwise pile up (see there)
        return out

    def _forget_ahead(self, keep: Sequence[tuple[int, int]] = ()) -> None:
        for key in [k for k in self._ahead if k not in keep]:
            for future in self._ahead.pop(key):
                future.cancel()  # not started yet: never decoded; running: finishes and is dropped

    def _rows(self, rows: Sequence[int]) -> torch.Tensor:
        self._forget_ahead()
        return self._collect(self._submit(rows))

    def _batch(self, start: int, stop: int) -> torch.Tensor:
        n, size = len(self), stop - start
        futures = self._ahead.pop((start, stop), None)
        following = [(s, min(n, s + size)) for s in range(stop, min(n, stop + size * self.read_ahead), size)] if size else []
        self._forget_ahead(keep=following)
        if futures is None:
            futures = self._submit(range(start, stop))  # first in the pool's queue: the reader waits for these
        for key in following:
            if key not in self._ahead:
                self._ahead[key] = self._submit(range(*key))
        return self._collect(futures, None if (start, stop) == (0, n) else f"images {start + 1:,} to {stop:,}")


def batches(images: torch.Tensor | StreamedImages, size: int) -> Iterator[tuple[int, torch.Tensor]]:
    """``(start, images[start:start + size])`` over a tensor or a streamed set, in order."""
    for start in range(0, images.shape[0], size):
        yield start, images[start : start + size]


def channel_means(images: torch.Tensor | StreamedImages, batch_size: int = 64) -> torch.Tensor:
    """Per-channel mean (float64) over every pixel of every image, one batch at a time. The sums of uint8
    values are exact in float64, so the result does not depend on the batch size."""
    totals = torch.zeros(images.shape[1], dtype=torch.float64)
    for _, batch in batches(images, batch_size):
        totals += batch.double().sum(dim=(0, 2, 3))
    return totals / (images.shape[0] * images.shape[2] * images.shape[3])


def as_tensor(images: torch.Tensor | StreamedImages) -> torch.Tensor:
    """A decoded tensor of all of ``images``: for small, fixed sets (a configured number of images) that a
    caller needs whole."""
    return images if isinstance(images, torch.Tensor) else images[:]
