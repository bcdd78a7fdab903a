"""The decode budget: a set over it is streamed in batches, and every consumer gets the same numbers as
from the set decoded whole (real images from imagenet-sample, a tiny model)."""

from __future__ import annotations

import os
import threading
import time

import pytest
import torch

from visionaudit import devices
from visionaudit.data import decode_budget
from visionaudit.data import image_sets as datasets
from visionaudit.data.decoding import decode_images
from visionaudit.data.streaming import StreamedImages, channel_means
from visionaudit.errors import ConfigError, DataError
from visionaudit.families.channel_bias import (
    ablation_drop,
    contribution_shares,
    gradient_shares,
)
from visionaudit.families.deployment import check_form
from visionaudit.families.robustness import evaluate_transform
from visionaudit.models.first_conv import find_first_conv
from visionaudit.models.inference import predict_logits
from visionaudit.models.loading import load_model
from visionaudit.preprocessing import Geometry

GEOM = Geometry(40, 32, "bicubic")  # small, so that 48 real images decode in a second
IMAGE_BYTES = 3 * 32 * 32


@pytest.fixture
def budget():
    """Set this process's decode budget for one test; the decoded sets and the budget are put back after."""
    kept = dict(datasets._DECODED)
    datasets._DECODED.clear()
    previous = decode_budget.set_budget(None)
    yield decode_budget.set_budget
    decode_budget.set_budget(previous)
    datasets._DECODED.clear()
    datasets._DECODED.update(kept)


@pytest.fixture(scope="module")
def sample(shared_data):
    return datasets.labelled_images(shared_data / "imagenet-sample").stratified_subset(48, seed=3)


@pytest.fixture(scope="module")
def tiny():
    return load_model("tests.tiny_models:tiny?size=32&resize=40&interpolation=bicubic", "cpu")


def test_parse_size_reads_units_as_powers_of_1024():
    assert decode_budget.parse_size("2GiB") == 2 * 1024**3
    assert decode_budget.parse_size("512M") == 512 * 1024**2
    assert decode_budget.parse_size("1.5g") == 3 * 1024**3 // 2
    assert decode_budget.parse_size("64 kb") == 64 * 1024
    assert decode_budget.parse_size("1000") == 1000
    for bad in ("lots", "2 GiB of it", "-1G", "0"):
        with pytest.raises(ConfigError, match="--audit-decode-memory must be"):
            decode_budget.parse_size(bad)


def test_default_budget_is_two_gib_or_a_quarter_of_available_memory_per_process(monkeypatch):
    monkeypatch.setattr(decode_budget, "_default", None)
    monkeypatch.setattr(decode_budget, "available_memory", lambda device: 40 * 2**30)
    assert decode_budget.default_budget(sharing=2) == 2 * 2**30  # 40 GiB / 4 / 2 = 5 GiB: the 2 GiB cap
    monkeypatch.setattr(decode_budget, "_default", None)
    monkeypatch.setattr(decode_budget, "available_memory", lambda device: 8 * 2**30)
    assert decode_budget.default_budget(sharing=4) == 2**29  # 8 GiB / 4 / 4 workers
    monkeypatch.setattr(decode_budget, "available_memory", lambda device: 2**40)
    assert decode_budget.default_budget(sharing=4) == 2**29  # measured once per process


def test_environment_sets_the_budget_when_nothing_else_does(monkeypatch, budget):
    monkeypatch.setenv(decode_budget.DECODE_MEMORY_ENV, "3MiB")
    assert decode_budget.budget() == 3 * 2**20
    budget(1000)
    assert decode_budget.budget() == 1000
    budget(None)
    monkeypatch.setenv(decode_budget.DECODE_MEMORY_ENV, "plenty")
    with pytest.raises(ConfigError, match=r"VISIONAUDIT_DECODE_MEMORY must be a size such as 2GiB, .* got 'plenty'"):
        decode_budget.budget()


@pytest.mark.slow
def test_a_set_over_the_budget_streams_and_one_within_it_is_decoded_once(sample, budget):
    budget(len(sample) * IMAGE_BYTES)  # exactly fits
    whole = datasets.load_images(sample, GEOM)
    assert isinstance(whole, torch.Tensor) and datasets.load_images(sample, GEOM) is whole
    budget(len(sample) * IMAGE_BYTES - 1)
    datasets._DECODED.clear()
    streamed = datasets.load_images(sample, GEOM)
    assert isinstance(streamed, StreamedImages) and not datasets._DECODED
    assert streamed.shape == whole.shape and streamed.dtype == torch.uint8 and streamed.dim() == 4 and len(streamed) == 48


@pytest.mark.slow
def test_least_recently_used_sets_make_room(sample, budget):
    a, b, c = (sample.select(list(range(i, i + 10)), name=f"part{i}") for i in (0, 10, 20))
    budget(25 * IMAGE_BYTES)  # two sets of 10 fit, not three
    first = datasets.load_images(a, GEOM)
    datasets.load_images(b, GEOM)
    assert datasets.load_images(a, GEOM) is first  # a is now the most recently used
    datasets.load_images(c, GEOM)
    assert [k[0][0] for k in datasets._DECODED] == ["part0", "part20"]  # b made room
    assert sum(t.nbytes for t in datasets._DECODED.values()) <= 25 * IMAGE_BYTES


@pytest.mark.slow
def test_streamed_images_index_like_the_decoded_tensor(sample):
    whole = decode_images(sample.paths, GEOM)
    streamed = StreamedImages(sample.paths, GEOM)
    assert torch.equal(torch.cat([streamed[s : s + 5] for s in range(0, 48, 5)]), whole)  # 5 does not divide 48
    mask = torch.zeros(48, dtype=torch.bool)
    mask[[3, 40]] = True
    for index in ([7, 2, 47], torch.tensor([0, 5]), slice(1, 30, 7), mask, slice(40, 100)):
        assert torch.equal(streamed[index], whole[index]), index
    assert torch.equal(streamed[-1], whole[-1]) and torch.equal(streamed[torch.tensor(4)], whole[4])
    assert streamed[10:10].shape == (0, 3, 32, 32)
    assert torch.equal(torch.stack(list(streamed)), whole)
    assert torch.equal(channel_means(streamed, 7), whole.double().mean(dim=(0, 2, 3)))
    with pytest.raises(IndexError, match="image 48 is out of range for 48 images"):
        streamed[[1, 48]]


@pytest.mark.slow
def test_reading_in_order_decodes_the_next_batches_ahead_and_holds_no_more(sample, monkeypatch):
    """While the reader holds batch k, batches k+1 and k+2 are decoding or done; k+3 is not started."""
    from visionaudit.data import streaming

    started: list[int] = []
    real = streaming.decode_or_reason
    lock = threading.Lock()

    def counting(path, geometry):
        with lock:
            started.append(sample.paths.index(path))
        return real(path, geometry)

    monkeypatch.setattr(streaming, "decode_or_reason", counting)
    streamed = StreamedImages(sample.paths, GEOM)
    streamed[0:8]
    deadline = time.monotonic() + 10
    while len(started) < 24 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)
    assert sorted(started) == list(range(24))  # this batch and the two after it, no more
    assert sorted(streamed._ahead) == [(8, 16), (16, 24)]
    streamed[[1, 2]]  # a jump elsewhere drops the read-ahead
    assert not streamed._ahead


@pytest.mark.slow
def test_an_unreadable_file_in_a_streamed_batch_is_named(tmp_path, sample):
    bad = tmp_path / "n01440764_broken.JPEG"
    bad.write_text("not a jpeg")
    streamed = StreamedImages((*sample.paths[:3], bad), GEOM)
    assert streamed[0:2].shape == (2, 3, 32, 32)
    with pytest.raises(DataError, match=r"(?s)1 of 2 images \(images 3 to 4 of the set's 4, decoded as they are read, "
                                        r"so the rest may hold more\) cannot be used.*n01440764_broken.JPEG is unreadable"):
        streamed[2:4]


def test_streamed_16_bit_images_are_scaled_and_float_ones_refused(tmp_path):
    """The streamed path decodes as the whole one does: a hand-written 16-bit PNG of 8-bit pixels x 257 gives
    those pixels; a float TIFF is named with its mode, and where in the set the batch that holds it is (stop 43: "1 of 2
    images", a batch's count, read as the whole set's, and the set's other files were not looked at)."""
    from PIL import Image

    from tests.data.test_image_sets import gray16_png

    eight = [[(5 * x + 3 * y) % 256 for x in range(32)] for y in range(32)]
    png = gray16_png(tmp_path / "g16.png", [[v * 257 for v in row] for row in eight])
    tif = tmp_path / "f32.tif"
    Image.new("F", (32, 32), 0.5).save(tif)
    streamed = StreamedImages((png, tif, png), Geometry(32, 32, "bicubic", crop=False))
    assert torch.equal(streamed[0], torch.tensor(eight, dtype=torch.uint8).expand(3, 32, 32))
    with pytest.raises(DataError, match=r"(?s)^1 of 2 images \(images 1 to 2 of the set's 3, decoded as they are read, so "
                                        r"the rest may hold more\) cannot be used.*f32.tif cannot be used: .*PIL mode F"):
        streamed[0:2]
    with pytest.raises(DataError, match=r"^1 of 1 images \(some of the set's 3, decoded as they are read"):
        streamed[[1]]
    # Review 43 F4: a batch that is the whole set has no rest that "may hold more": the set's count, as decoded whole.
    with pytest.raises(DataError, match=r"^1 of 2 images cannot be used; replace or remove them:\n"):
        StreamedImages((png, tif), Geometry(32, 32, "bicubic", crop=False))[0:2]


@pytest.mark.slow
def test_every_consumer_gives_the_same_numbers_streamed_or_whole(sample, tiny):
    """Logits, per-image outcomes under a transform, channel measures and a deployment form: bit for bit."""
    whole = decode_images(sample.paths, GEOM)
    streamed = StreamedImages(sample.paths, GEOM)
    labels = sample.label_tensor()
    clean = predict_logits(tiny, whole, batch_size=5)
    assert torch.equal(predict_logits(tiny, streamed, batch_size=5), clean)
    ids = sample.sample_ids
    a = evaluate_transform(tiny, whole, labels, clean, "rotation", seed=1, batch_size=5, resamples=50, sample_ids=ids)
    b = evaluate_transform(tiny, streamed, labels, clean, "rotation", seed=1, batch_size=5, resamples=50, sample_ids=ids)
    assert (a.correct == b.correct).all() and a.top1 == b.top1 and a.flip_rate == b.flip_rate
    assert ablation_drop(tiny, whole, labels, clean, batch_size=5) == ablation_drop(tiny, streamed, labels, clean, batch_size=5)
    assert gradient_shares(tiny, whole, labels, batch_size=5) == gradient_shares(tiny, streamed, labels, batch_size=5)
    first = find_first_conv(tiny.module, (1, 3, 32, 32))
    assert contribution_shares(tiny, first, whole, 5) == contribution_shares(tiny, first, streamed, 5)
    assert check_form(tiny, whole, clean, "torchscript") == check_form(tiny, streamed, clean, "torchscript")


def test_option_then_audit_toml_then_environment_set_each_process_budget_and_cache(suite, monkeypatch, tmp_path):
    from visionaudit.models import logit_cache

    suite.makepyfile(test_seen="""
from visionaudit.data import decode_budget
from visionaudit.models import logit_cache

def test_seen():
    print("SEEN", decode_budget.budget(), logit_cache.cache_dir())
""")
    outer = (decode_budget.budget(), logit_cache.cache_dir())
    monkeypatch.setenv(decode_budget.DECODE_MEMORY_ENV, "7MiB")
    monkeypatch.setenv(logit_cache.CACHE_ENV, str(tmp_path / "env-cache"))
    seen = lambda result: next(line[line.index("SEEN"):] for line in result.outlines if "SEEN" in line)  # noqa: E731
    assert seen(suite.runpytest("-s")) == f"SEEN {7 * 2**20} {tmp_path / 'env-cache'}"
    suite.makefile(".toml", audit='[run]\ndecode_memory = "5MiB"\ncache = "toml-cache"\n')
    assert seen(suite.runpytest("-s")) == f"SEEN {5 * 2**20} toml-cache"
    assert seen(suite.runpytest("-s", "--audit-decode-memory=3M", "--audit-cache=opt")) == f"SEEN {3 * 2**20} opt"
    assert (decode_budget.budget(), logit_cache.cache_dir()) == outer  # the outer run's settings, put back
    result = suite.runpytest("--audit-decode-memory=lots")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--audit-decode-memory must be a size such as 2GiB, 512MiB or a number of bytes, got 'lots'" in result.stderr.str()


def _rss() -> int:
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_freed_heap_memory_past_the_limit_goes_back_to_the_os():
    """The tuned heap never trims by itself; release_heap_fragments does, once the process has grown past its limit."""
    assert devices.retain_freed_cpu_memory() and devices._libc is not None  # glibc on Linux, as in CI
    devices.release_heap_fragments(1 << 40)  # where the growth is counted from

    def churn():  # 256 MiB allocated and freed in this thread's own arena
        kept = [torch.ones(1 << 20) for _ in range(64)]
        del kept

    thread = threading.Thread(target=churn)
    thread.start()
    thread.join()
    before = _rss()
    assert devices._libc.mallinfo2().fordblks > 200 << 20
    assert devices.release_heap_fragments(128 << 20)
    assert _rss() < before - (150 << 20)
    assert not devices.release_heap_fragments(128 << 20)  # nothing left past the limit
