"""``infill bench latency`` names the machine and the worker's choice: read from the worker's own
health reply (a real worker process on a tiny checkpoint) and printed in one place."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from benchmarks.latency import machine_lines, worker_health
from model.calibrate import CalibrationConfig, Timing, decide
from tests.model.conftest import tiny_checkpoint, tiny_tokenizer  # noqa: F401  (fixtures)


def test_the_printout_names_the_cpu_its_flags_and_the_choice():
    cal = decide([Timing("float32", 1, 150, 145, 8.5), Timing("bfloat16", 1, 80, 70, 5)],
                 CalibrationConfig(canvas_tokens=17)).to_wire()
    cal["machine"] = {"cpu": "AMD EPYC", "physical_cores": 2, "logical_cpus": 2, "torch_threads_default": 2,
                      "torch_cpu_capability": "AVX512", "flags": {"amx_tile": False, "avx512_bf16": True}}
    machine, choice = machine_lines(cal, "the server's worker")
    assert "AMD EPYC" in machine and "2 cores" in machine and "amx_tile=no" in machine and "avx512_bf16=yes" in machine
    assert "chose bfloat16 (bfloat16 fill" in choice and "1 thread(s)" in choice and "WARNING" not in choice
    cal["message"] = "a single-line fill takes about 3000 ms"
    assert "WARNING: a single-line fill takes about 3000 ms" in machine_lines(cal, "x")[1]
    assert "not measured" in machine_lines(None, "the server's worker")[0]


def test_worker_health_reads_a_real_worker_and_none_without_one(tiny_checkpoint, tmp_path):
    assert worker_health(None) is None
    assert worker_health(os.getpid()) is None  # no --socket on this process's command line
    sock = str(tmp_path / "w.sock")
    proc = subprocess.Popen([sys.executable, "-m", "model.worker", "--socket", sock, "--model", str(tiny_checkpoint),
                             "--device", "cpu", "--dtype", "float32", "--threads", "1", "--log-level", "WARNING"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        health = None
        while time.monotonic() < deadline:
            health = worker_health(proc.pid)
            if health and health["state"] == "ready":
                break
            time.sleep(0.2)
        assert health and health["state"] == "ready", health
        cal = health["calibration"]
        assert cal["dtype"] == health["dtype"] == "float32" and cal["dtype_reason"] == "as set"
        assert cal["threads"] == 1 and cal["forward_ms"] > 0 and cal["machine"]["physical_cores"] >= 1
    finally:
        proc.terminate()
        proc.wait(30)
