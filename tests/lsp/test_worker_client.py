"""The worker client against real workers: spawn + restart after a kill, a TCP worker with a token,
cancel forwarding, and the failure events the server turns into user messages."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from infill.types import Cancelled, CancelToken, FillRequest
from lsp_server.worker_client import CanvasTooLongError, ModelLoadError, WorkerClient, WorkerError, WorkerOptions
from model import protocol as P
from model.worker import Worker, WorkerConfig

pytestmark = pytest.mark.slow

REQ = FillRequest('greeting = "', '"\n', 6, "python")
LONG = FillRequest("def f(x):\n    ", "\n", 128, "python")
SLOW = P.FillOptions(steps=128, threshold=0)  # one token per model call: a fill that takes a while


def test_spawned_worker_is_restarted_after_a_kill_and_a_request_in_flight_fails_clearly():
    events: list[tuple[str, dict]] = []
    client = WorkerClient(WorkerOptions(device="cpu", threads=1), on_event=lambda k, d: events.append((k, d)))
    try:
        (result,) = client.fill([REQ])
        assert isinstance(result.text, str) and result.model_calls >= 1
        assert [d["state"] for k, d in events if k == "progress"][-1] == "ready"
        pid = client.worker_pid()
        errors: list[Exception] = []

        def long_fill():
            try:
                client.fill([LONG], options=SLOW)
            except Exception as exc:
                errors.append(exc)

        t = threading.Thread(target=long_fill)
        t.start()
        time.sleep(0.3)
        os.kill(pid, signal.SIGKILL)
        t.join(10)
        assert len(errors) == 1 and isinstance(errors[0], WorkerError) and "stopped" in str(errors[0])
        assert any(k == "died" for k, _ in events)
        (again,) = client.fill([REQ])  # restarted on demand
        assert client.worker_pid() not in (None, pid) and client.starts == 2 and again.model_calls >= 1
        assert client.consecutive_failures == 0
    finally:
        client.close()
    assert client.worker_pid() is None


def test_cancel_is_forwarded_and_returns_quickly():
    client = WorkerClient(WorkerOptions(device="cpu", threads=1))
    try:
        client.fill([REQ])
        token = CancelToken()
        threading.Timer(0.2, token.cancel).start()
        t0 = time.monotonic()
        with pytest.raises(Cancelled):
            client.fill([LONG], token, options=SLOW)
        assert time.monotonic() - t0 < 1.5
        assert client.health()["ok"]
        client.fill([REQ])  # the worker is free again
        deadline = CancelToken(deadline=time.monotonic() + 0.05)
        with pytest.raises(Cancelled):
            client.fill([LONG], deadline, options=SLOW)
    finally:
        client.close()


@pytest.fixture(scope="module")
def tcp_worker():
    worker = Worker(WorkerConfig(device="cpu", threads=1, token="tok-123"))
    worker.bind_tcp("127.0.0.1", 0)
    worker.start()
    threading.Thread(target=worker.serve_forever, daemon=True).start()
    yield worker
    worker.stop()


def test_configured_tcp_worker_with_token(tcp_worker):
    address = tcp_worker.address  # "tcp:127.0.0.1:PORT"
    good = WorkerClient(WorkerOptions(address=address, token="tok-123"))
    try:
        assert good.fill([REQ])[0].model_calls >= 1
        assert good.worker_pid() is None  # not ours: nothing was spawned
    finally:
        good.close()
    events: list[str] = []
    bad = WorkerClient(WorkerOptions(address=address, token="wrong"), on_event=lambda k, d: events.append(k))
    with pytest.raises(WorkerError, match="refused"):
        bad.fill([REQ])
    with pytest.raises(WorkerError):
        bad.fill([REQ])
    assert events.count("failed_twice") == 1


def test_a_canvas_the_model_cannot_hold_is_refused_and_the_server_is_told(tcp_worker):
    events: list[tuple[str, dict]] = []
    client = WorkerClient(WorkerOptions(address=tcp_worker.address, token="tok-123"),
                          on_event=lambda k, d: events.append((k, d)))
    try:
        long = FillRequest("values = sorted(", ")\n", 512, "python")
        (result,) = client.fill([long], options=P.FillOptions(steps=4))
        assert result.timings["canvas_tokens"] == 512 and result.model_calls <= 4  # as asked, not cut to 128
        with pytest.raises(CanvasTooLongError, match="does not fit this model's 1024 positions"):
            client.fill([FillRequest("x = (", ")\n", P.MAX_CANVAS_TOKENS, "python")])
        assert [d["code"] for k, d in events if k == "refused"] == [P.CANVAS_TOO_LONG]
        assert client.fill([REQ])[0].model_calls >= 1  # the connection is fine
    finally:
        client.close()


def test_missing_model_is_a_model_load_error(tmp_path):
    events: list[tuple[str, dict]] = []
    client = WorkerClient(WorkerOptions(model=str(tmp_path / "nope"), device="cpu"),
                          on_event=lambda k, d: events.append((k, d)))
    try:
        with pytest.raises(ModelLoadError, match="not found"):
            client.fill([REQ])
        assert client.state == "failed"
        assert any(k == "progress" and d["state"] == "failed" for k, d in events)
    finally:
        client.close()


def test_unreachable_address_fails_with_a_clear_error():
    client = WorkerClient(WorkerOptions(address="unix:/nonexistent/infill.sock", start_timeout_s=1))
    with pytest.raises(WorkerError, match="cannot connect"):
        client.fill([REQ])


def test_close_ends_requests_in_flight():
    client = WorkerClient(WorkerOptions(device="cpu", threads=1))
    client.fill([REQ])
    errors: list[Exception] = []

    def long_fill():
        try:
            client.fill([LONG], options=SLOW)
        except Exception as exc:
            errors.append(exc)

    t = threading.Thread(target=long_fill)
    t.start()
    time.sleep(0.2)
    t0 = time.monotonic()
    client.close()
    t.join(10)
    assert time.monotonic() - t0 < 5 and len(errors) == 1 and isinstance(errors[0], WorkerError)
    with pytest.raises(WorkerError, match="closed"):
        client.fill([REQ])
