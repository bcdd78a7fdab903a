"""Threads ahead of the device (visionaudit/families/corruption/ahead.py): the same pixels and outcomes as each batch
in turn, bit for bit, on real images; batches in order, at most ``ahead`` in the making; a worker's error reaches
the run as it does in turn, never a hang; an error of the reader's own leaves no worker running."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from PIL import Image

from visionaudit.data.image_sets import labelled_images, load_images
from visionaudit.data.streaming import StreamedImages
from visionaudit.errors import ModelOutputError
from visionaudit.families import corruption as C
from visionaudit.families.corruption import ahead as A
from visionaudit.families.corruption import judging
from visionaudit.families.corruption import switch as W
from visionaudit.models.loading import load_model
from visionaudit.preprocessing import Geometry

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"))]
HANG = 120  # seconds: a pass that has not ended by then hangs (a failure, not a wait for ever)


def _workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("visionaudit-corrupt")]


def _within(fn, seconds: float = HANG):
    """``fn()``'s result or its exception, or a failure when it does not end in ``seconds``."""
    pool = ThreadPoolExecutor(1)
    try:
        return pool.submit(fn).result(timeout=seconds)
    except TimeoutError:
        pytest.fail(f"the pass did not end within {seconds} s: it hangs")
    finally:
        pool.shutdown(wait=False)  # a hung pass must not hang the test too


# -- the reader's contract, on a stand-in preparation ------------------------------------------------------------------


def test_batches_come_back_in_order_with_at_most_ahead_in_the_making():
    images = torch.arange(40, dtype=torch.uint8).view(40, 1, 1, 1).expand(40, 3, 2, 2).contiguous()
    lock, running, most, started = threading.Lock(), [0], [0], set()

    def prepare(batch, positions):
        with lock:
            started.add(positions[0])
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.02)  # long enough for the reader to find later batches being made
        with lock:
            running[0] -= 1
        return batch + torch.tensor(list(positions), dtype=torch.uint8).view(-1, 1, 1, 1)

    for ahead in (1, 3):
        with A.PreparedBatches(images, prepare, torch.device("cpu"), ahead) as prepared:
            assert prepared.shape == images.shape and prepared.dim() == 4 and not prepared.is_floating_point()
            first = prepared[0:6]
            time.sleep(0.2)  # the reader is busy with the first batch: the next ones are made meanwhile, unasked
            assert set(range(6, 6 * (ahead + 1), 6)) <= started, (ahead, sorted(started))
            got = torch.cat([first, *(prepared[s:s + 6] for s in range(6, 40, 6))])  # the last batch is short
        # each image i became 2 i: its own value plus its position, so a batch out of order shows
        assert torch.equal(got[:, 0, 0, 0], torch.arange(40, dtype=torch.uint8) * 2), ahead
        assert 1 <= most[0] <= ahead, (ahead, most[0])
        most[0] = 0
        started.clear()
    assert not _workers()
    with pytest.raises(TypeError, match="contiguous slices"):
        A.PreparedBatches(images, prepare, torch.device("cpu"), 1)[3]
    with pytest.raises(ValueError, match="at least 1 batch"):
        A.PreparedBatches(images, prepare, torch.device("cpu"), 0)


def test_a_streamed_set_gives_every_image_in_place(tmp_path):
    """A set larger than the decode budget is a StreamedImages, with a read-ahead of its own: read by several
    workers (one at a time, under a lock), every image comes back once, in place."""
    rng = np.random.default_rng(0)
    paths = []
    for k in range(30):
        paths.append(tmp_path / f"{k:02d}.png")
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(paths[-1])
    whole = StreamedImages(paths, Geometry(32, 32))[:]
    for ahead in (1, 4):
        with A.PreparedBatches(StreamedImages(paths, Geometry(32, 32)), lambda b, _: b, torch.device("cpu"), ahead) as prepared:
            assert torch.equal(torch.cat([prepared[s:s + 4] for s in range(0, 30, 4)]), whole), ahead


def test_default_ahead_by_device():
    # one home: the switch's values and resolution are switch.py's, not repeated nor re-exported by the threads' module
    assert not {"AUTO_AHEAD", "MAX_AHEAD", "CPU_AHEAD", "CUDA_AHEAD", "default_ahead", "resolve_ahead"} & set(vars(A))
    assert W.default_ahead(torch.device("cpu")) == W.CPU_AHEAD
    assert W.default_ahead(torch.device("cuda")) == W.CUDA_AHEAD >= 2  # the GPU must never wait: more than one
    assert W.default_ahead(torch.device("mps")) == 0  # PyTorch's MPS backend crashes on tensor ops from two threads


# -- the user's switch, batches_ahead ------------------------------------------------------------------------------------


@pytest.mark.parametrize("asked, device, codec, expected", [
    ("auto", "cpu", "libjpeg", 1), (None, "cpu", "libjpeg", 1), ("auto", "cuda", "libjpeg", 2), ("auto", "mps", "libjpeg", 0),
    ("auto", "cuda", "nvjpeg", 0),  # the defaults, as before the switch: nothing to say
    (0, "cpu", "libjpeg", 0), (0, "mps", "libjpeg", 0), (0, "cuda", "nvjpeg", 0),  # in turn is always possible
    (3, "cpu", "libjpeg", 3), (8, "cpu", "libjpeg", 8), (5, "cuda", "libjpeg", 5), (1, "cuda:1", "libjpeg", 1),
])
def test_a_number_asked_is_honoured_where_it_can_be(asked, device, codec, expected):
    assert W.resolve_ahead(torch.device(device), asked, codec) == (expected, None)


def test_a_number_that_cannot_be_honoured_runs_in_turn_and_says_why():
    ahead, why = W.resolve_ahead(torch.device("mps"), 3, "libjpeg")
    assert ahead == 0 and why == ("batches_ahead = 3 is set but the model runs on mps: each batch was prepared in turn "
                                  "(PyTorch's MPS backend crashes when two threads run tensor ops at once)")
    ahead, why = W.resolve_ahead(torch.device("cuda"), 2, "nvjpeg")
    assert ahead == 0 and why.startswith("batches_ahead = 2 is set but the JPEG round trip runs with nvJPEG (jpeg_on_device): "
                                         "each batch was prepared in turn") and "pytorch/vision#9606" in why


@pytest.mark.parametrize("asked", [9, -1, "many", 2.5, True])
def test_a_number_out_of_the_switchs_range_is_refused(asked):
    with pytest.raises(ValueError, match="batches ahead must be 'auto' or a whole number 0 to 8"):
        W.resolve_ahead(torch.device("cpu"), asked, "libjpeg")


def test_the_run_follows_the_switch_and_records_what_it_could_not_do():
    """Devices this machine lacks (MPS, CUDA) stand in by the model's device type: only the run's construction reads
    it (no pass is made on them here)."""
    import dataclasses

    tiny = load_model("tests.tiny_models:tiny")
    images, labels, ids = torch.zeros(2, 3, 224, 224, dtype=torch.uint8), torch.zeros(2, dtype=torch.long), ["a", "b"]

    def run(device: str, **kwargs) -> C.CorruptionRun:
        return C.CorruptionRun(dataclasses.replace(tiny, device=torch.device(device)), images, labels, ids, **kwargs)

    assert (run("cpu", ahead=4).ahead, run("cpu", ahead="auto").ahead, run("cpu").ahead) == (4, 1, 1)
    assert run("cpu", ahead=4).not_honoured == {} and run("cuda", ahead=4).ahead == 4
    on_mps = run("mps", ahead=2)
    assert on_mps.ahead == 0 and on_mps.not_honoured["batches_ahead"].startswith("batches_ahead = 2 is set but the "
                                                                                 "model runs on mps")
    nvjpeg = run("cuda", ahead=2, jpeg_on_device=True)
    assert nvjpeg.codec == "nvjpeg" and nvjpeg.ahead == 0 and "nvJPEG" in nvjpeg.not_honoured["batches_ahead"]
    assert "jpeg_on_device" not in nvjpeg.not_honoured  # asked and done
    on_cpu = run("cpu", jpeg_on_device=True)
    assert on_cpu.codec == "libjpeg" and on_cpu.not_honoured == {
        "jpeg_on_device": "jpeg_on_device is set but the model runs on cpu: the round trip used libjpeg"}
    assert run("mps", jpeg_on_device=True).not_honoured["jpeg_on_device"].endswith("runs on mps: the round trip used libjpeg")
    assert run("cpu", jpeg=False, jpeg_on_device=True).not_honoured == {}  # no round trip: nothing asked of a codec
    # no round trip, so no nvJPEG anywhere (the JPEG-compression corruption is on the CPU): the batches go ahead
    for asked, ahead in [(2, 2), ("auto", W.CUDA_AHEAD)]:
        no_trip = run("cuda", jpeg=False, jpeg_on_device=True, ahead=asked)
        assert (no_trip.ahead, no_trip.not_honoured) == (ahead, {}), asked
    assert run("cpu", ahead=0, jpeg_on_device=True).ahead == 0  # in turn, and the codec's word alone
    # every corruption entry records it (and a shard's measurement, which visionaudit merge judges again)
    corrupted = judging.Corrupted(on_mps, None, "kernels", None, False)
    assert corrupted.protocol_metrics(True)["not_honoured"] == on_mps.not_honoured
    assert "not_honoured" not in judging.Corrupted(run("cpu"), None, "kernels", None, False).protocol_metrics(True)


# -- the reader's wait: does the device wait for the CPU's share? --------------------------------------------------------


@pytest.mark.parametrize("prepare_s, read_s", [(0.2, 0.05), (0.02, 0.1)])
def test_the_readers_wait_is_what_the_preparation_leaves_it(prepare_s, read_s):
    """A stand-in preparation that takes ``prepare_s`` per batch, one batch ahead, and a reader that takes ``read_s``
    on each (the forward pass). After the first batch (the pipeline filling: all of ``prepare_s``) the reader waits
    prepare_s - read_s per batch when the preparation is the slower (the one worker makes batch k+1 while the reader
    reads batch k), and nothing when it is the faster. Checked against the test's own clock (from the reader's asking
    for a batch to its having it), so that sleeps overrunning on a loaded machine move both alike; the tolerances are
    tens of ms, above a loaded machine's scheduling noise (a thread's wake-up takes ~5 ms on 2 busy cores)."""
    n, size = 8, 4
    images = torch.zeros(n * size, 3, 2, 2, dtype=torch.uint8)
    asked, got, prepared_s, read = [], [], [], []

    def prepare(batch, positions):
        start = time.perf_counter()
        time.sleep(prepare_s)
        prepared_s.append(time.perf_counter() - start)
        return batch

    with A.PreparedBatches(images, prepare, torch.device("cpu"), 1) as prepared:
        for s in range(0, n * size, size):
            asked.append(time.perf_counter())
            prepared[s:s + size]
            got.append(time.perf_counter())
            time.sleep(read_s)
            read.append(time.perf_counter() - got[-1])
    wait = prepared.wait
    assert wait.batches == n
    # by the test's clock: the reader is kept from its asking to its having the batch (the call is within it)
    by_clock = [got[k] - asked[k] for k in range(n)]
    assert by_clock[0] - 0.02 <= wait.first <= by_clock[0] and wait.first >= 0.9 * prepare_s, (wait.first, by_clock[0])
    assert sum(by_clock[1:]) - 0.01 * n <= wait.rest <= sum(by_clock[1:]), (wait.rest, by_clock)
    # the closed form, with the durations the sleeps really took
    slack = (n - 1) * (np.mean(prepared_s) - np.mean(read))
    if prepare_s > read_s:
        assert wait.rest == pytest.approx(slack, rel=0.1, abs=0.01 * n), (wait.rest, slack)
    else:  # near nothing beside the reader's own time
        assert slack < 0 and wait.rest <= 0.1 * sum(read[:-1]), (wait.rest, slack)


def test_the_readers_wait_is_the_whole_call(monkeypatch):
    """Everything the reader does in ``prepared[a:b]`` keeps the device unfed, the handing of batches to the workers
    too (on the first call the pool starts its threads): a hand-over made slow (50 ms each, in the reader's thread)
    is in the wait, though the preparation itself takes nothing."""
    submit = A.PreparedBatches._submit

    def slow_submit(self, key):
        time.sleep(0.05)
        return submit(self, key)

    monkeypatch.setattr(A.PreparedBatches, "_submit", slow_submit)
    images = torch.zeros(8, 3, 2, 2, dtype=torch.uint8)
    with A.PreparedBatches(images, lambda batch, _: batch, torch.device("cpu"), 1) as prepared:
        for s in range(0, 8, 4):
            prepared[s:s + 4]
    # the first call hands over its own batch and the next; the second has its batch made already and hands over none
    assert prepared.wait.first >= 0.1 and prepared.wait.rest < 0.05, prepared.wait


def test_in_turn_the_reader_waits_for_all_of_the_preparation(monkeypatch):
    """In turn (``ahead = 0``) the reader prepares each batch itself: its wait, recorded per pass, is the preparation's
    whole time; one batch ahead, with a reader (the tiny model) far faster, it is about the same (the device waits)."""
    def slow(batch, ids, seed, severity):
        time.sleep(0.05)
        return batch

    monkeypatch.setattr(C, "kernel_for", lambda name: slow)
    for ahead in (0, 1):
        run = _tiny_run(ahead)
        run.condition("fog", 3)
        wait = run.waits["fog severity 3"]
        assert wait.batches == 5 and wait.first >= 0.05, ahead  # 40 images in batches of 8
        assert 4 * 0.05 * (0.8 if ahead else 1.0) <= wait.rest <= 4 * 0.05 + 1.0, (ahead, wait)
    assert not _workers()


# -- errors -------------------------------------------------------------------------------------------------------------


def _tiny_run(ahead: int, spec: str = "tests.tiny_models:tiny") -> C.CorruptionRun:
    images = torch.randint(0, 256, (40, 3, 224, 224), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    return C.CorruptionRun(load_model(spec), images, torch.zeros(40, dtype=torch.long), [f"i{k}" for k in range(40)],
                           ahead=ahead)


def test_a_workers_error_reaches_the_run_as_in_turn_never_a_hang(monkeypatch):
    def failing(batch, ids, seed, severity):
        if "i20" in ids:  # the third batch of eight
            raise ValueError(f"fog: cannot corrupt {ids[0]}..{ids[-1]}")
        return batch

    monkeypatch.setattr(C, "kernel_for", lambda name: failing)
    said = {}
    for ahead in (0, 1, 3):
        run = _tiny_run(ahead)
        with pytest.raises(ValueError) as caught:
            _within(lambda run=run: run.condition("fog", 3))
        said[ahead] = str(caught.value)
        assert not _workers(), ahead
    assert said[1] == said[3] == said[0] == "fog: cannot corrupt i16..i23"


def test_an_error_of_the_readers_own_leaves_no_worker_running():
    """NaN logits: predict_logits raises in the reader's thread while the workers prepare the next batches."""
    run = _tiny_run(3, "tests.tiny_models:nan_outputs")
    with pytest.raises(ModelOutputError, match="NaN or infinite logits for image 0"):
        _within(lambda: run.condition("gaussian_noise", 1))
    assert not _workers()


# -- the same bits on real images ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fifty(shared_data):
    return labelled_images(shared_data / "imagenet-sample").stratified_subset(48, 0)


@pytest.mark.slow
@pytest.mark.parametrize("device", DEVICES)
def test_threads_ahead_give_the_same_pixels_and_outcomes_bit_for_bit(fifty, device):
    """48 real images, fog and speckle noise (draws on the CPU) at two severities with the JPEG round trip, and the
    JPEG round trip alone: each batch's pixels the same with two threads ahead as in turn; and lite0's top-1 output
    and right/wrong per image, and the condition's numbers, for one severity of each (the passes are the slow part)."""
    model = load_model("efficientnet_lite0", device)
    subset = fifty.for_classes(model.label_space)
    images = load_images(subset, C.PROTOCOL_GEOMETRY)
    in_turn = C.CorruptionRun(model, images, subset.label_tensor(), subset.sample_ids, seed=3, ahead=0)
    threads = C.CorruptionRun(model, images, subset.label_tensor(), subset.sample_ids, seed=3, ahead=2)
    size = 16
    conditions = [("fog", 2), ("fog", 5), ("speckle_noise", 1), ("speckle_noise", 4), (None, None)]
    for corruption, severity in conditions:
        kernel = corruption and C.kernel_for(corruption)
        prepare = in_turn.prepare(kernel and (lambda b, ids, k=kernel, s=severity: k(b, ids, in_turn.seed, s)), True)
        with A.PreparedBatches(images, prepare, model.device, 2) as prepared:
            for s in range(0, len(images), size):
                expected = prepare(images[s:s + size].to(model.device), range(s, s + size))
                assert torch.equal(prepared[s:s + size], expected), (corruption, severity, s)
    threads._clean = in_turn.clean()  # the clean pass prepares nothing: it never goes through the threads
    for corruption, severity in [("fog", 5), ("speckle_noise", 4)]:
        a, b = in_turn.condition(corruption, severity), threads.condition(corruption, severity)
        assert (a.predicted == b.predicted).all() and (a.correct == b.correct).all(), (corruption, severity)
        assert (a.error, a.p_value, a.discordant) == (b.error, b.p_value, b.discordant)
    if model.device.type == "cuda":  # nvJPEG: in turn whatever is asked (pytorch/vision#9606), and the run says so
        asked = C.CorruptionRun(model, images, subset.label_tensor(), subset.sample_ids, seed=3, jpeg_on_device=True, ahead=2)
        assert asked.codec == "nvjpeg" and asked.ahead == 0 and "nvJPEG" in asked.not_honoured["batches_ahead"]
    assert not _workers()


@pytest.mark.slow
def test_the_most_threads_ahead_give_the_same_pixels_bit_for_bit(fifty):
    """At the switch's top value (MAX_AHEAD, 8 workers at once), pixels only (no forward pass): 24 real images in 8
    batches of 3, speckle noise and shot noise (per-image draws and Poisson counts on the CPU) and the JPEG-compression
    corruption, each with the JPEG round trip: every batch as in turn."""
    subset = fifty.stratified_subset(24, 0)
    images = load_images(subset, C.PROTOCOL_GEOMETRY)
    run = C.CorruptionRun(load_model("tests.tiny_models:tiny"), images, subset.label_tensor(), subset.sample_ids, seed=3, ahead=0)
    size = 3
    for corruption in ("speckle_noise", "shot_noise", "jpeg_compression"):
        kernel = C.kernel_for(corruption)
        prepare = run.prepare(lambda b, ids, k=kernel: k(b, ids, run.seed, 3), True)
        with A.PreparedBatches(images, prepare, torch.device("cpu"), W.MAX_AHEAD) as prepared:
            got = [prepared[s:s + size] for s in range(0, len(images), size)]
        for s, batch in zip(range(0, len(images), size), got):
            assert torch.equal(batch, prepare(images[s:s + size], range(s, s + size))), (corruption, s)
    assert W.MAX_AHEAD == 8 and not _workers()
