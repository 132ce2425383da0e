"""The model worker over real sockets with the real starter model: permissions, batching, cancel,
deadlines, bad messages, size limit and the token check."""

from __future__ import annotations

import os
import socket
import stat
import struct
import threading
import time

import pytest

from model import protocol as P
from model.worker import Worker, WorkerConfig, build_parser, main, parse_tcp

pytestmark = pytest.mark.slow

PY_REQ = {"prefix": "def add(a, b):\n    return ", "suffix": "\n\nprint(add(1, 2))\n", "canvas_tokens": 6,
          "language": "python"}


class Client:
    """A bare protocol client that records progress events next to responses."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.sock.settimeout(60)
        self.events: list[dict] = []

    def send(self, msg: dict) -> None:
        P.write_frame(self.sock, msg)

    def recv(self, msg_id: int | None = None) -> dict:
        while True:
            msg = P.check_response(P.read_frame(self.sock))
            if msg.get("op") == "progress":
                self.events.append(msg)
                continue
            if msg_id is None or msg["id"] == msg_id:
                return msg

    def call(self, msg: dict) -> dict:
        self.send(msg)
        return self.recv(msg["id"])


def fill(msg_id: int, canvas: int = 6, **extra) -> dict:
    return {"id": msg_id, "op": "fill", "requests": [{**PY_REQ, "canvas_tokens": canvas}], "deadline_ms": None,
            "options": {}, **extra}


@pytest.fixture(scope="module")
def unix_worker(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("w") / "worker.sock")
    worker = Worker(WorkerConfig(device="cpu", threads=1))
    worker.bind_unix(path)
    worker.start()
    threading.Thread(target=worker.serve_forever, daemon=True).start()
    yield worker, path
    worker.stop()


def connect_unix(path: str) -> Client:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return Client(s)


def test_unix_socket_is_private(unix_worker):
    _, path = unix_worker
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode == 0o600, oct(mode)


def test_requests_sent_during_load_are_batched_and_answered(unix_worker):
    worker, path = unix_worker
    c = connect_unix(path)
    for i in (1, 2, 3):
        c.send(fill(i))
    answers = {m["id"]: m for m in (c.recv() for _ in range(3))}
    assert set(answers) == {1, 2, 3}
    for m in answers.values():
        assert m["ok"], m
        (result,) = m["results"]
        assert isinstance(result["text"], str) and result["model_calls"] >= 1
    if c.events[0]["state"] == "loading":
        # all three arrived while the model was loading: one denoiser call served them together
        assert {m["results"][0]["timings"]["batch_size"] for m in answers.values()} == {3.0}
    assert c.events and c.events[-1]["state"] == "ready"
    health = c.call({"id": 9, "op": "health"})
    assert health["ok"] and health["state"] == "ready" and health["requests"] >= 3


def test_batched_fill_of_several_requests_keeps_order(unix_worker):
    _, path = unix_worker
    c = connect_unix(path)
    msg = fill(1)
    msg["requests"] = [{**PY_REQ, "canvas_tokens": n} for n in (1, 3, 5)]
    reply = c.call(msg)
    assert reply["ok"] and len(reply["results"]) == 3
    # one more canvas token each: the prefix's trailing space is healed (re-generated with the next word)
    assert [r["timings"]["canvas_tokens"] for r in reply["results"]] == [2.0, 4.0, 6.0]


def test_cancel_returns_quickly_and_the_next_request_works(unix_worker):
    _, path = unix_worker
    c = connect_unix(path)
    c.call(fill(1, canvas=2))  # model loaded
    c.send(fill(2, canvas=128, options={"steps": 128, "threshold": 0}))
    time.sleep(0.05)
    t0 = time.monotonic()
    c.send({"id": 3, "op": "cancel", "target": 2})
    answers = {m["id"]: m for m in (c.recv() for _ in range(2))}
    assert time.monotonic() - t0 < 1.0
    assert answers[3] == {"id": 3, "ok": True, "cancelled": True}
    assert answers[2]["ok"] is False and answers[2]["code"] == P.CANCELLED
    assert c.call(fill(4))["ok"]
    assert c.call({"id": 5, "op": "cancel", "target": 999})["cancelled"] is False


def test_deadline_stops_long_work(unix_worker):
    _, path = unix_worker
    c = connect_unix(path)
    reply = c.call(fill(1, canvas=128, deadline_ms=30, options={"steps": 128, "threshold": 0}))
    assert reply["ok"] is False and reply["code"] == P.CANCELLED


def test_bad_messages_get_errors_and_never_stop_the_worker(unix_worker):
    _, path = unix_worker
    c = connect_unix(path)
    c.sock.sendall(struct.pack(">I", 3) + b"\xc1\xc1\xc1")  # undecodable body, framing intact
    assert c.recv()["code"] == P.BAD_REQUEST
    assert c.call({"id": 1, "op": "fill", "requests": "nope"})["code"] == P.BAD_REQUEST
    assert c.call({"id": 2, "op": "nonsense"})["code"] == P.BAD_REQUEST
    assert c.call(fill(3, options={"no_such_option": 1}))["code"] == P.BAD_REQUEST
    assert c.call(fill(4, options={"steps": -3}))["code"] == P.BAD_REQUEST
    assert c.call(fill(5))["ok"]


def test_a_long_canvas_is_filled_at_its_full_length(unix_worker):
    # infill.maxTokens allows up to P.MAX_CANVAS_TOKENS; the denoiser used to cut every canvas to 128
    _, path = unix_worker
    c = connect_unix(path)
    msg = fill(1, options={"steps": 4})
    msg["requests"] = [{**PY_REQ, "prefix": "values = sorted(", "suffix": ")\n", "canvas_tokens": 512}]
    reply = c.call(msg)
    assert reply["ok"], reply
    (result,) = reply["results"]
    assert result["timings"]["canvas_tokens"] == 512.0 and result["timings"]["context_dropped"] == 0
    assert result["model_calls"] <= 4  # the per-call steps option reached the sampler


def test_a_canvas_the_model_cannot_hold_is_refused_and_batched_neighbours_are_served(unix_worker):
    _, path = unix_worker
    c = connect_unix(path)
    c.call(fill(1, canvas=2))  # model loaded
    assert c.call({"id": 2, "op": "health"})["max_position"] == 1024  # the starter model's positions
    c.send(fill(5, canvas=48, options={"steps": 48, "threshold": 0}))  # busy: the next two queue up together
    c.send(fill(3, canvas=P.MAX_CANVAS_TOKENS))
    c.send(fill(4))
    answers = {m["id"]: m for m in (c.recv() for _ in range(3))}
    assert answers[3]["ok"] is False and answers[3]["code"] == P.CANVAS_TOO_LONG
    assert "1024 tokens does not fit this model's 1024 positions" in answers[3]["error"]
    assert answers[4]["ok"] and answers[5]["ok"], answers
    assert answers[4]["results"][0]["timings"]["batch_size"] == 1.0  # served alone after the refusal


def test_hello_of_another_protocol_version_is_refused(unix_worker):
    _, path = unix_worker
    c = connect_unix(path)
    reply = c.call({"id": 1, "op": "hello", "version": P.PROTOCOL_VERSION - 1})
    assert reply["ok"] is False and "protocol version" in reply["error"]
    with pytest.raises(P.ConnectionClosed):
        c.recv()


def test_oversized_frame_gets_an_error_and_the_connection_closes(unix_worker):
    _, path = unix_worker
    c = connect_unix(path)
    c.sock.sendall(struct.pack(">I", P.MAX_MESSAGE_BYTES + 1))
    assert c.recv()["code"] == P.TOO_LARGE
    with pytest.raises(P.ConnectionClosed):
        c.recv()
    assert connect_unix(path).call(fill(1))["ok"]  # the worker itself is fine


@pytest.fixture(scope="module")
def tcp_worker():
    worker = Worker(WorkerConfig(device="cpu", threads=1, token="s3cret-token"))
    worker.bind_tcp("127.0.0.1", 0)
    worker.start()
    threading.Thread(target=worker.serve_forever, daemon=True).start()
    yield worker
    worker.stop()


def connect_tcp(worker: Worker) -> Client:
    _, host, port = worker.address.split(":")
    return Client(socket.create_connection((host, int(port))))


def test_tcp_requires_hello_with_the_right_token(tcp_worker):
    c = connect_tcp(tcp_worker)
    reply = c.call({"id": 1, "op": "health"})
    assert reply["code"] == P.UNAUTHORIZED
    with pytest.raises(P.ConnectionClosed):
        c.recv()

    c = connect_tcp(tcp_worker)
    assert c.call({"id": 1, "op": "hello", "token": "wrong"})["code"] == P.UNAUTHORIZED
    with pytest.raises(P.ConnectionClosed):
        c.recv()

    c = connect_tcp(tcp_worker)
    hello = c.call({"id": 1, "op": "hello", "token": "s3cret-token"})
    assert hello["ok"] and hello["version"] == P.PROTOCOL_VERSION
    assert c.call(fill(2))["ok"]


def test_tcp_without_token_or_on_a_public_address_is_refused():
    with pytest.raises(SystemExit, match="token"):
        Worker(WorkerConfig(device="cpu")).bind_tcp("127.0.0.1", 0)
    with pytest.raises(SystemExit, match="loopback"):
        Worker(WorkerConfig(device="cpu", token="t")).bind_tcp("0.0.0.0", 0)
    with pytest.raises(SystemExit):
        main(["--tcp", "127.0.0.1:0", "--device", "cpu"])


def test_socket_path_that_is_not_a_socket_is_not_replaced(tmp_path):
    victim = tmp_path / "file.txt"
    victim.write_text("keep me")
    with pytest.raises(SystemExit, match="not a socket"):
        Worker(WorkerConfig()).bind_unix(str(victim))
    assert victim.read_text() == "keep me"


def test_command_line():
    assert parse_tcp("127.0.0.1:8000") == ("127.0.0.1", 8000)
    assert parse_tcp("[::1]:9") == ("::1", 9)
    args = build_parser().parse_args(["--socket", "/tmp/x.sock", "--model", "m", "--device", "cpu"])
    assert (args.socket, args.model, args.device, args.dtype) == ("/tmp/x.sock", "m", "cpu", "auto")
    assert build_parser().parse_args(["--socket", "a", "--dtype", "float32"]).dtype == "float32"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--socket", "a", "--dtype", "int4"])
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--socket", "a", "--tcp", "127.0.0.1:1"])
