"""Load-time calibration: the pure choice from timings (no timing here), the machine's description,
the bf16 copy it times, and the worker's health carrying what was chosen."""

from __future__ import annotations

import socket
import threading

import pytest
import torch

from model import calibrate, modeling
from model import protocol as P
from model.calibrate import CalibrationConfig, Timing, choose_threads, decide, fill_ms, steps_within
from model.modeling import cpu_bf16_kind, load_denoiser
from model.worker import Worker, WorkerConfig

CFG = CalibrationConfig(canvas_tokens=17, budget_ms=2000, budget_share=0.5, min_steps=4, bf16_min_speedup=1.1)


def test_a_fill_is_one_first_call_and_cached_steps():
    assert fill_ms(100, 10, 17) == 260
    assert fill_ms(100, 10, 1) == 100
    assert steps_within(1000, 100, 10, 17) == 17  # everything fits
    assert steps_within(300, 100, 50, 17) == 5  # 100 + 4 * 50
    assert steps_within(90, 100, 10, 17) == 0  # not even the first call


def test_the_faster_fill_wins_and_bf16_must_be_clearly_faster():
    # bf16's first call is faster, its steps slower: the whole fill decides
    fp32, bf16 = Timing("float32", 1, 150, 145, 8.5), Timing("bfloat16", 1, 95, 90, 11)
    cal = decide([fp32, bf16], CFG)
    assert fill_ms(90, 11, 17) < fill_ms(145, 8.5, 17) < 1.1 * fill_ms(90, 11, 17)  # 266 < 281 < 293
    assert cal.dtype == "float32"  # bf16 faster, but not by the 1.1x it must beat
    assert "bfloat16 must be 1.1x faster" in cal.dtype_reason
    fast_bf16 = Timing("bfloat16", 1, 80, 70, 5)
    cal = decide([fp32, fast_bf16], CFG)
    assert cal.dtype == "bfloat16" and cal.forward_ms == 70 and cal.step_ms == 5
    assert cal.fill_ms_estimate == fill_ms(70, 5, 17) and cal.fits and cal.steps == 0 and cal.message is None


def test_settings_the_user_gave_are_kept_and_only_measured():
    fp32, bf16 = Timing("float32", 1, 150, 145, 8.5), Timing("bfloat16", 1, 80, 70, 5)
    cal = decide([fp32, bf16], CFG, dtype_setting="float32")
    assert cal.dtype == "float32" and cal.dtype_reason == "as set"
    cal = decide([fp32, bf16], CFG, steps_setting=6)
    assert cal.steps == 6 and cal.fill_calls == 6 and cal.steps_reason == "as set"
    two = Timing("float32", 2, 90, 80, 4)
    cal = decide([fp32, two], CFG, dtype_setting="float32", threads_setting=1)
    assert cal.threads == 1 and cal.threads_reason == "as set"


def test_a_slow_machine_gets_a_step_budget_and_a_too_slow_one_a_message():
    slow = Timing("float32", 1, 300, 300, 100)  # 17 calls: 1900 ms > half of 2000
    cal = decide([slow], CFG)
    assert cal.steps == steps_within(1000, 300, 100, 17) == 8
    assert cal.fill_calls == 8 and cal.fill_ms_estimate == 1000 and cal.fits and cal.message is None
    hopeless = Timing("float32", 1, 900, 900, 100)  # one call per quarter line would still be 1200 ms
    cal = decide([hopeless], CFG)
    assert cal.steps == CFG.min_steps and not cal.fits
    assert "1200 ms" in cal.message and "2000 ms" in cal.message and "float32" in cal.message


def test_nothing_timed_keeps_the_defaults():
    cal = decide([], CFG, default_dtype="bfloat16", default_threads=4)
    assert (cal.dtype, cal.threads, cal.steps, cal.fits, cal.forward_ms) == ("bfloat16", 4, 0, True, None)


def test_threads_are_the_fastest_on_the_probe_fewer_on_a_tie():
    assert choose_threads({1: 112, 2: 861})[0] == 1  # the other core is busy
    assert choose_threads({1: 100, 2: 60})[0] == 2
    assert choose_threads({1: 100, 2: 98})[0] == 1  # within 5 %: fewer threads
    assert choose_threads({1: 100, 2: 60}, setting=1) == (1, "as set")
    with pytest.raises(ValueError):
        choose_threads({})
    assert calibrate.thread_candidates(default=2, cores=2) == [1, 2]
    assert calibrate.thread_candidates(default=16, cores=8) == [1, 8, 16]


def test_bf16_instructions_come_from_the_flags_or_the_probe(monkeypatch):
    monkeypatch.setattr(modeling, "cpu_has_amx", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    assert cpu_bf16_kind(frozenset({"avx512f", "avx512_bf16"})) == "avx512_bf16"
    assert cpu_bf16_kind(frozenset({"avx512f", "amx_bf16", "amx_tile"})) == "amx"
    assert cpu_bf16_kind(frozenset({"avx2"})) is None
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    assert cpu_bf16_kind(frozenset()) == "avx512_bf16"


def test_the_machine_is_described():
    info = calibrate.machine_info()
    assert info["physical_cores"] >= 1 and info["logical_cpus"] >= info["physical_cores"]
    assert set(info["flags"]) >= {"amx_tile", "avx512_bf16", "avx512f"}
    assert info["bf16"] in (None, "amx", "avx512_bf16")


def test_the_bf16_copy_equals_loading_the_checkpoint_as_bf16(tiny_checkpoint):
    fp32 = load_denoiser(tiny_checkpoint, device="cpu", dtype="float32")
    copy = calibrate.as_bf16(fp32)
    direct = load_denoiser(tiny_checkpoint, device="cpu", dtype="bfloat16")
    assert fp32.dtype == torch.float32 and copy.dtype == torch.bfloat16  # the original is untouched
    for (name, a), (_, b) in zip(copy.model.state_dict().items(), direct.model.state_dict().items()):
        assert a.dtype == b.dtype and torch.equal(a, b), name
    for (name, a), (_, b) in zip(copy.model.named_buffers(), direct.model.named_buffers()):
        assert a.dtype == b.dtype, name  # the rotary frequencies stay float32


def test_load_calibrated_times_the_real_model_and_keeps_given_settings(tiny_checkpoint, monkeypatch):
    threads = torch.get_num_threads()
    small = CalibrationConfig(prefix_tokens=24, suffix_tokens=8, canvas_tokens=6, timed_steps=2, probe_tokens=8)
    try:
        den = calibrate.load_calibrated(tiny_checkpoint, device="cpu", dtype="float32", threads=1, config=small)
        cal = den.calibration
        assert den.dtype == torch.float32 and cal.dtype == "float32" and cal.dtype_reason == "as set"
        assert cal.threads == 1 and torch.get_num_threads() == 1 and cal.probes_ms == {}
        assert cal.forward_ms > 0 and cal.step_ms > 0 and cal.context_tokens == 32
        assert [t["dtype"] for t in cal.timings] == ["float32"]
        assert den.options.sampler.steps == cal.steps
        (res,) = den.fill([_req()])
        assert isinstance(res.text, str)
        # auto on a CPU with bf16 instructions times both dtypes and serves the one it chose
        monkeypatch.setattr(calibrate, "machine_info", lambda: {**_info(), "bf16": "avx512_bf16"})
        den = calibrate.load_calibrated(tiny_checkpoint, device="cpu", dtype="auto", threads=1, config=small)
        cal = den.calibration
        assert sorted(t["dtype"] for t in cal.timings) == ["bfloat16", "float32"]
        assert str(den.dtype) == f"torch.{cal.dtype}"
    finally:
        torch.set_num_threads(threads)


def _info() -> dict:
    return {"cpu": "test", "logical_cpus": 1, "physical_cores": 1, "torch_threads_default": 1,
            "torch_cpu_capability": None, "bf16": None, "flags": {}}


def _req():
    from infill.types import FillRequest

    return FillRequest("def f(a", "):\n    pass\n", 4, "python")


def test_the_worker_health_carries_the_calibration(tiny_checkpoint, tmp_path):
    small = CalibrationConfig(prefix_tokens=24, suffix_tokens=8, canvas_tokens=6, timed_steps=2, probe_tokens=8)
    threads = torch.get_num_threads()

    def load(config: WorkerConfig):
        return calibrate.load_calibrated(config.model, config.device, config.dtype, config.threads, small)

    worker = Worker(WorkerConfig(model=str(tiny_checkpoint), device="cpu", dtype="float32", threads=1), load=load)
    path = str(tmp_path / "w.sock")
    worker.bind_unix(path)
    worker.start()
    threading.Thread(target=worker.serve_forever, daemon=True).start()
    try:
        assert worker.loaded.wait(60)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        P.write_frame(s, {"id": 1, "op": "health"})
        while True:
            msg = P.read_frame(s)
            if msg.get("id") == 1:
                break
        cal = msg["calibration"]
        assert msg["ok"] and msg["dtype"] == cal["dtype"] == "float32"
        assert cal["threads"] == 1 and cal["forward_ms"] > 0 and cal["fill_ms_estimate"] > 0
        assert cal["fits"] is True and cal["message"] is None and "cpu" in cal["machine"]
        s.close()
    finally:
        worker.stop()
        torch.set_num_threads(threads)
