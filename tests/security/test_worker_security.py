"""The model worker as an attack surface: who may connect, what may be sent, and what comes back.

Covers what tests/model/test_worker.py and test_protocol.py leave open: the server-started worker's
private socket, every way to get the TCP token wrong, no information before authentication, the
size limit in both directions (client refuses to send, worker refuses to answer too much), msgpack
bombs in small frames, and a property test that arbitrary messages only ever get a ProtocolError.
The worker here runs a recording stand-in denoiser: the subject is the protocol, not the model.
"""

from __future__ import annotations

import os
import socket
import stat
import struct
import threading
import time

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infill.types import FillRequest, FillResult
from lsp_server.worker_client import WorkerClient, WorkerError, WorkerOptions
from model import protocol as P
from model.worker import Worker, WorkerConfig

TOKEN = "correct horse battery staple"
GOOD_REQ = {"prefix": "def f(", "suffix": "):\n", "canvas_tokens": 3, "language": "python"}


class StandIn:
    """A Denoiser that records what reached it and answers ``text`` (optionally after ``delay``)."""

    def __init__(self, text: str = "x"):
        self.text, self.seen = text, []

    def fill(self, requests, cancel=None):
        self.seen.extend(requests)
        return [FillResult(self.text, model_calls=1) for _ in requests]


def serve(config: WorkerConfig, denoiser: StandIn, unix: str | None = None, gate: threading.Event | None = None):
    """A real Worker (real sockets, real reader/model threads) around the stand-in denoiser."""

    def load(_config):
        if gate is not None:
            gate.wait(30)
        return denoiser

    worker = Worker(config, load=load)
    if unix:
        worker.bind_unix(unix)
    else:
        worker.bind_tcp("127.0.0.1", 0)
    worker.start()
    threading.Thread(target=worker.serve_forever, daemon=True).start()
    return worker


def tcp(worker: Worker) -> socket.socket:
    _, host, port = worker.address.split(":")
    s = socket.create_connection((host, int(port)), timeout=10)
    return s


def reply(s: socket.socket, msg_id: int | None = None) -> dict:
    """The next response (skipping progress events) or, with ``msg_id``, the one with that id."""
    while True:
        msg = P.check_response(P.read_frame(s))
        if msg.get("op") == "progress":
            continue
        if msg_id is None or msg.get("id") == msg_id:
            return msg


@pytest.fixture
def tcp_worker():
    denoiser = StandIn()
    worker = serve(WorkerConfig(token=TOKEN), denoiser)
    worker.loaded.wait(10)
    yield worker, denoiser
    worker.stop()


# ------------------------------------------------------------------ who may connect

@pytest.mark.slow
def test_the_worker_the_server_starts_is_on_a_private_socket():
    client = WorkerClient(WorkerOptions(device="cpu", threads=1))
    try:
        client.start()
        tmpdir = client._tmpdir
        sock_path = os.path.join(tmpdir, "worker.sock")
        assert stat.S_IMODE(os.stat(tmpdir).st_mode) == 0o700
        assert stat.S_ISSOCK(os.stat(sock_path).st_mode) and stat.S_IMODE(os.stat(sock_path).st_mode) == 0o600
        assert client.worker_pid() is not None
    finally:
        client.close()
    assert not os.path.exists(tmpdir)  # nothing left behind for someone else to reuse


@pytest.mark.parametrize("hello", [
    {"id": 1, "op": "hello"},  # no token at all
    {"id": 1, "op": "hello", "token": None},
    {"id": 1, "op": "hello", "token": ""},
    {"id": 1, "op": "hello", "token": TOKEN[:-1]},  # a prefix
    {"id": 1, "op": "hello", "token": TOKEN + "x"},
    {"id": 1, "op": "hello", "token": TOKEN.upper()},
    {"id": 1, "op": "hello", "token": TOKEN + "\x00"},
])
def test_a_wrong_or_missing_token_is_refused_and_disconnected(tcp_worker, hello):
    worker, denoiser = tcp_worker
    s = tcp(worker)
    P.write_frame(s, hello)
    answer = reply(s)
    assert answer["ok"] is False and answer["code"] == P.UNAUTHORIZED
    with pytest.raises(P.ConnectionClosed):
        reply(s)


def test_work_before_hello_never_reaches_the_model(tcp_worker):
    worker, denoiser = tcp_worker
    warmup = len(denoiser.seen)  # the worker's own warm-up fill
    s = tcp(worker)
    P.write_frame(s, {"id": 5, "op": "fill", "requests": [GOOD_REQ]})
    assert reply(s)["code"] == P.UNAUTHORIZED
    with pytest.raises(P.ConnectionClosed):
        reply(s)
    time.sleep(0.1)
    assert len(denoiser.seen) == warmup
    s = tcp(worker)  # the right token then works
    P.write_frame(s, {"id": 1, "op": "hello", "token": TOKEN})
    assert reply(s, 1)["ok"]
    P.write_frame(s, {"id": 2, "op": "fill", "requests": [GOOD_REQ]})
    assert reply(s, 2)["ok"] and len(denoiser.seen) == warmup + 1


def test_an_unauthenticated_connection_learns_nothing():
    """No progress events (model path, state) go to a TCP peer that has not sent the token."""
    gate = threading.Event()
    worker = serve(WorkerConfig(token=TOKEN), StandIn(), gate=gate)
    try:
        stranger = tcp(worker)
        friend = tcp(worker)
        P.write_frame(friend, {"id": 1, "op": "hello", "token": TOKEN})
        time.sleep(0.2)
        gate.set()  # the model finishes loading: a "ready" event is broadcast
        assert worker.loaded.wait(10)
        events = []
        friend.settimeout(5)
        while not any(e.get("state") == "ready" for e in events):
            events.append(P.read_frame(friend))
        stranger.settimeout(0.5)
        with pytest.raises(socket.timeout):
            stranger.recv(1)
    finally:
        worker.stop()


def test_the_server_side_client_needs_the_token(tcp_worker):
    worker, _ = tcp_worker
    with pytest.raises(WorkerError, match="refused"):
        WorkerClient(WorkerOptions(address=worker.address, token="guess", start_timeout_s=10)).start()
    good = WorkerClient(WorkerOptions(address=worker.address, token=TOKEN, start_timeout_s=10))
    try:
        assert good.fill([FillRequest("a", "b", 2)])[0].text == "x"
    finally:
        good.close()


def test_the_language_server_refuses_a_public_tcp_address():
    from lsp_server.server import main

    with pytest.raises(SystemExit):
        main(["--tcp", "0.0.0.0:2087"])


# ------------------------------------------------------------------ size limits, both ways

def test_the_client_refuses_to_send_an_oversized_request(tcp_worker):
    worker, denoiser = tcp_worker
    client = WorkerClient(WorkerOptions(address=worker.address, token=TOKEN, start_timeout_s=10))
    try:
        with pytest.raises(WorkerError, match="exceeds the limit"):
            client.fill([FillRequest("x" * (P.MAX_MESSAGE_BYTES + 1), "", 4)])
        assert client._pending == {}  # nothing left waiting for an answer that never comes
        assert client.fill([FillRequest("a", "b", 2)])[0].text == "x"  # the connection is intact
        assert all(len(r.prefix) < 10 for r in denoiser.seen)  # the oversized one never left the client
    finally:
        client.close()


def test_an_oversized_answer_becomes_an_error_not_a_broken_stream(tmp_path):
    denoiser = StandIn(text="y" * (P.MAX_MESSAGE_BYTES + 10))
    worker = serve(WorkerConfig(), denoiser, unix=str(tmp_path / "w.sock"))
    client = WorkerClient(WorkerOptions(address=f"unix:{tmp_path / 'w.sock'}", start_timeout_s=10))
    try:
        with pytest.raises(WorkerError, match="exceeds the limit"):
            client.fill([FillRequest("a", "b", 2)])
        denoiser.text = "ok"
        assert client.fill([FillRequest("a", "b", 2)])[0].text == "ok"
        assert client.deaths == 0
    finally:
        client.close()
        worker.stop()


@pytest.mark.parametrize("body", [
    b"\xdd\xff\xff\xff\xff",  # array32 claiming 4 billion items
    b"\xdf\xff\xff\xff\xff",  # map32 claiming 4 billion pairs
    b"\xdb\xff\xff\xff\xff",  # str32 claiming 4 GB
    b"\xc6\xff\xff\xff\xff",  # bin32 claiming 4 GB
    b"\x91" * 200_000 + b"\xc0",  # 200k nested arrays
    msgpack.packb({1: "int key"}),  # strict_map_key: only string keys
    msgpack.packb({"id": 1, "op": "health"}) + b"\x00",  # trailing bytes after the message
])
def test_msgpack_bombs_in_small_frames_are_protocol_errors(body):
    t0 = time.monotonic()
    with pytest.raises(P.ProtocolError):
        P.decode_body(body)
    assert time.monotonic() - t0 < 1.0


def test_the_worker_survives_bombs_and_keeps_serving(tmp_path):
    denoiser = StandIn()
    worker = serve(WorkerConfig(), denoiser, unix=str(tmp_path / "w.sock"))
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect(str(tmp_path / "w.sock"))
        for body in (b"\xdd\xff\xff\xff\xff", b"\x91" * 200_000 + b"\xc0", msgpack.packb({1: 2})):
            s.sendall(struct.pack(">I", len(body)) + body)
            assert reply(s)["code"] == P.BAD_REQUEST
        P.write_frame(s, {"id": 9, "op": "fill", "requests": [GOOD_REQ]})
        assert reply(s, 9)["ok"]
    finally:
        worker.stop()


# ------------------------------------------------------------------ strict schema, as a property

VALID = [
    {"id": 1, "op": "hello", "token": "t"},
    {"id": 2, "op": "health"},
    {"id": 3, "op": "cancel", "target": 1},
    {"id": 4, "op": "fill", "requests": [dict(GOOD_REQ)], "deadline_ms": 100, "options": {"steps": 2}},
]
OPTIONAL = {"token", "deadline_ms", "options", "language"}
scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**64, 2**64), st.floats(allow_nan=True),
                    st.text(max_size=20), st.binary(max_size=20))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                      max_leaves=10)


@st.composite
def mutated(draw):
    """A valid message with one field added, removed or replaced (at the top or inside a fill request)."""
    msg = {k: (list(v) if isinstance(v, list) else v) for k, v in draw(st.sampled_from(VALID)).items()}
    target = msg
    if msg["op"] == "fill" and draw(st.booleans()):
        target = msg["requests"][0] = dict(msg["requests"][0])
    how = draw(st.sampled_from(["add", "remove", "replace"]))
    key = draw(st.sampled_from(sorted(target)))
    if how == "add":
        new_key = draw(st.text(min_size=1, max_size=10).filter(lambda k: k not in target))
        target[new_key] = draw(values)
    elif how == "remove":
        del target[key]
    else:
        target[key] = draw(values)
    return msg, how, key


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_messages_pass_only_if_still_valid_else_protocol_error(case):
    msg, how, key = case
    try:
        P.check_request(msg)
    except P.ProtocolError:
        return
    # strict: an unknown field is never accepted, and only optional fields may be missing
    assert how == "replace" or (how == "remove" and key in OPTIONAL), f"accepted after {how} {key!r}: {msg!r}"
    # a replaced value that passed must have the right type
    assert isinstance(msg["id"], int) and not isinstance(msg["id"], bool) and msg["id"] >= 0
    for r in msg.get("requests", []):
        assert isinstance(r["prefix"], str) and isinstance(r["suffix"], str)
        assert type(r["canvas_tokens"]) is int and 1 <= r["canvas_tokens"] <= P.MAX_CANVAS_TOKENS


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_arbitrary_bytes_decode_to_a_map_or_a_protocol_error(body):
    try:
        assert isinstance(P.decode_body(body), dict)
    except P.ProtocolError:
        pass


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    denoiser = StandIn()
    path = str(tmp_path_factory.mktemp("live") / "w.sock")
    worker = serve(WorkerConfig(), denoiser, unix=path)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    yield s, denoiser
    worker.stop()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutated())
def test_a_live_worker_answers_every_mutated_message_and_stays_up(live, case):
    s, denoiser = live
    msg, _, _ = case
    if isinstance(msg.get("id"), int) and not isinstance(msg["id"], bool) and msg.get("op") == "hello":
        return  # a hello with a valid id is fine on an unauthenticated unix socket; not the point here
    try:
        P.write_frame(s, msg)
    except P.ProtocolError:
        return  # the client side refuses to encode it at all (e.g. an int over 64 bits)
    answer = reply(s)
    valid = True
    try:
        P.check_request(msg)
    except P.ProtocolError:
        valid = False
    if not valid:
        assert answer["ok"] is False and answer["code"] == P.BAD_REQUEST, answer
    before = len(denoiser.seen)
    P.write_frame(s, {"id": 10**9, "op": "fill", "requests": [GOOD_REQ]})
    assert reply(s, 10**9)["ok"]  # still serving on the same connection
    assert len(denoiser.seen) == before + 1
    assert all(isinstance(r.prefix, str) and isinstance(r.suffix, str) for r in denoiser.seen)
