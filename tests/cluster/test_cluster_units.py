"""The cluster's Ray-free parts: batch planning, affinity ranking, config checks, the replica core
over a fake denoiser, and the front's protocol handling over a fake backend."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import subprocess
import sys
import threading
from types import SimpleNamespace

import pytest

from infill.types import FillRequest, FillResult
from model import protocol as P
from model.cluster.affinity import rank_replicas
from model.cluster.config import ClusterConfig, ClusterConfigError
from model.cluster.core import ReplicaCore, ReplicaLoadError, plan_batches
from model.cluster.front import Front, checked_answer
from model.sampler import SamplerOptions
from model.worker import WorkerConfig


def fill_msg(msg_id: int, prefixes: list[str], options: dict | None = None, deadline_ms: int | None = None) -> dict:
    return P.fill_message(msg_id, [FillRequest(p, "\n", 4, "python") for p in prefixes], deadline_ms,
                          P.FillOptions(**(options or {})))


class FakeDenoiser:
    """Echoes each request's prefix (upper-cased) so every answer names what it was computed for."""

    def __init__(self):
        self.options = SimpleNamespace(sampler=SamplerOptions())
        self.calls: list[tuple[list[str], int]] = []  # (prefixes, sampler steps) per call
        self.fail = False

    def fill(self, requests, cancel=None, sampler=None):
        if self.fail:
            raise RuntimeError("boom")
        steps = (sampler or self.options.sampler).steps
        self.calls.append(([r.prefix for r in requests], steps))
        return [FillResult(text=r.prefix.upper(), model_calls=1) for r in requests]


@pytest.fixture
def core():
    fake = FakeDenoiser()
    c = ReplicaCore(WorkerConfig(max_batch=4), load=lambda config: fake)
    fake.calls.clear()  # the worker's warm-up fill
    return c, fake


# ---------------------------------------------------------------- plan_batches

def test_plan_batches_groups_by_options_and_caps_requests(core):
    c, _ = core
    jobs = [c.job(fill_msg(1, ["a", "b"])), c.job(fill_msg(2, ["c"], {"steps": 3})), c.job(fill_msg(3, ["d"])),
            c.job(fill_msg(4, ["e", "f"])), c.job(fill_msg(5, ["g"], {"steps": 3}))]
    calls = plan_batches(jobs, max_batch=4)
    assert [[j.id for j in call] for call in calls] == [[1, 3], [4], [2, 5]]


def test_plan_batches_runs_an_oversized_job_alone(core):
    c, _ = core
    jobs = [c.job(fill_msg(1, ["a"])), c.job(fill_msg(2, list("abcdef"))), c.job(fill_msg(3, ["b"]))]
    assert [[j.id for j in call] for call in plan_batches(jobs, max_batch=4)] == [[1], [2], [3]]


# ---------------------------------------------------------------- ReplicaCore

def test_core_answers_each_message_from_one_shared_call(core):
    c, fake = core
    jobs = [c.job(fill_msg(i, [f"user{i}"])) for i in range(3)]
    responses = c.run(jobs)
    assert fake.calls == [(["user0", "user1", "user2"], SamplerOptions().steps)]
    assert [r["id"] for r in responses] == [0, 1, 2]
    assert [r["results"][0]["text"] for r in responses] == ["USER0", "USER1", "USER2"]
    assert all(r["results"][0]["timings"]["batch_size"] == 3 for r in responses)


def test_core_applies_options_per_call(core):
    c, fake = core
    responses = c.run([c.job(fill_msg(1, ["x"], {"steps": 2})), c.job(fill_msg(2, ["y"]))])
    assert sorted(fake.calls) == [(["x"], 2), (["y"], SamplerOptions().steps)]
    assert [r["results"][0]["text"] for r in responses] == ["X", "Y"]


def test_core_answers_cancelled_and_failed_fills_with_errors(core):
    c, fake = core
    cancelled = c.job(fill_msg(1, ["a"]))
    cancelled.token.cancel()
    live = c.job(fill_msg(2, ["b"]))
    first, second = c.run([cancelled, live])
    assert (first["ok"], first["code"]) == (False, P.CANCELLED)
    assert second["ok"] and second["results"][0]["text"] == "B"
    fake.fail = True
    (failed,) = c.run([c.job(fill_msg(3, ["c"]))])
    assert (failed["id"], failed["ok"], failed["code"]) == (3, False, P.INTERNAL)


def test_core_refuses_bad_messages(core):
    c, _ = core
    with pytest.raises(P.ProtocolError):
        c.job({"id": 1, "op": "fill", "requests": []})
    with pytest.raises(P.ProtocolError):
        c.job({"id": 1, "op": "health"})


def test_core_raises_when_the_model_cannot_load():
    def broken(config):
        raise FileNotFoundError("no checkpoint at /nowhere")

    with pytest.raises(ReplicaLoadError, match="no checkpoint"):
        ReplicaCore(WorkerConfig(), load=broken)


# ---------------------------------------------------------------- affinity

def test_rank_replicas_is_stable_and_moves_only_the_lost_replicas_keys():
    replicas = ["r1", "r2", "r3"]
    keys = [f"conn-{i}" for i in range(300)]
    first = {k: rank_replicas(k, replicas)[0] for k in keys}
    assert first == {k: rank_replicas(k, list(reversed(replicas)))[0] for k in keys}  # order-free
    counts = {r: sum(1 for v in first.values() if v == r) for r in replicas}
    assert min(counts.values()) > 60, counts  # each replica takes a fair share
    after = {k: rank_replicas(k, ["r1", "r3"])[0] for k in keys}
    moved = {k for k in keys if after[k] != first[k]}
    assert moved == {k for k in keys if first[k] == "r2"}  # only r2's keys moved
    assert all(after[k] == rank_replicas(k, replicas)[1] for k in moved)  # each to its own second choice


# ---------------------------------------------------------------- config

@pytest.mark.parametrize("change, flag", [
    ({"worker": WorkerConfig(token=None)}, "--token"),
    ({"host": "0.0.0.0"}, "--allow-remote"),
    ({"replicas": 0}, "--replicas"),
    ({"num_cpus": 0.0, "num_gpus": 0.0}, "--num-cpus"),
    ({"num_gpus": 1.0, "worker": WorkerConfig(token="t", device="cpu")}, "--num-gpus"),
    ({"max_ongoing": 2}, "--max-ongoing"),
    ({"batch_wait_ms": -1.0}, "--batch-wait-ms"),
    ({"retries": 9}, "--retries"),
])
def test_config_names_the_flag_it_refuses(change, flag):
    config = dataclasses.replace(ClusterConfig(worker=WorkerConfig(token="t")), **change)
    with pytest.raises(ClusterConfigError, match=flag):
        config.validate()


def test_config_keeps_the_token_out_of_replicas_and_gives_gpu_replicas_cuda():
    config = ClusterConfig(worker=WorkerConfig(token="t"), num_gpus=1.0, allow_remote=True, host="0.0.0.0").validate()
    assert config.replica_worker().token is None and config.replica_worker().device == "cuda"
    assert config.user_config() == {"batching": True, "batch_wait_ms": 10.0}


def test_cli_checks_options_without_importing_ray():
    code = ("import sys, model.cluster.cli as c; rc = c.main(['--replicas', '0', '--token', 't']); "
            "assert 'ray' not in sys.modules, 'ray imported'; sys.exit(rc)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2, run.stderr
    assert "--replicas must be at least 1" in run.stderr
    help_ = subprocess.run([sys.executable, "-m", "model.cluster", "--help"], capture_output=True, text=True,
                           timeout=60)
    assert help_.returncode == 0 and "--batch-wait-ms" in help_.stdout


# ---------------------------------------------------------------- front

class FakeBackend:
    """Answers fills by echo after ``delay`` seconds; ``wrong_id`` answers with another id."""

    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self.wrong_id = False
        self.affinities: list[str] = []

    async def fill(self, msg, affinity):
        self.affinities.append(affinity)
        await asyncio.sleep(self.delay)
        results = [P.result_to_wire(FillResult(text=r["prefix"].upper(), model_calls=1)) for r in msg["requests"]]
        return {"id": msg["id"] + (1 if self.wrong_id else 0), "ok": True, "results": results}

    async def describe(self, affinity=None):
        return {"state": "ready", "message": "2 of 2 replicas running", "replicas": 2}


@pytest.fixture
def front():
    backend = FakeBackend()
    loop = asyncio.new_event_loop()
    f = Front(backend, token="s3cret")
    address = loop.run_until_complete(f.start("127.0.0.1", 0))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    host, port = address.removeprefix("tcp:").rsplit(":", 1)
    yield backend, (host, int(port))
    asyncio.run_coroutine_threadsafe(f.stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def connect(address, token="s3cret") -> socket.socket:
    sock = socket.create_connection(address, timeout=10)
    P.write_frame(sock, {"id": 0, "op": "hello", "token": token})
    return sock


def read_until(sock, want_id):
    while True:
        msg = P.read_frame(sock)
        if msg.get("id") == want_id:
            return msg


def test_front_refuses_a_wrong_token_and_requires_hello(front):
    _, address = front
    sock = connect(address, token="guess")
    assert read_until(sock, 0)["code"] == P.UNAUTHORIZED
    with pytest.raises(P.ConnectionClosed):
        P.read_frame(sock)
    sock = socket.create_connection(address, timeout=10)
    P.write_frame(sock, fill_msg(1, ["a"]))
    assert read_until(sock, 1)["code"] == P.UNAUTHORIZED


def test_front_answers_each_fill_with_its_own_id_and_text(front):
    backend, address = front
    sock = connect(address)
    hello = read_until(sock, 0)
    assert hello["ok"] and hello["state"] == "ready" and hello["session"].startswith("conn-")
    for i in range(1, 6):
        P.write_frame(sock, fill_msg(i, [f"doc{i}"]))
    answers = {}
    while len(answers) < 5:
        msg = P.read_frame(sock)
        if "id" in msg and msg["id"] > 0:
            answers[msg["id"]] = msg["results"][0]["text"]
    assert answers == {i: f"DOC{i}" for i in range(1, 6)}
    assert set(backend.affinities) == {hello["session"]}  # one connection, one affinity key
    P.write_frame(sock, {"id": 9, "op": "fill", "requests": "nope"})
    assert read_until(sock, 9)["code"] == P.BAD_REQUEST  # a bad message is answered, the connection stays
    P.write_frame(sock, {"id": 10, "op": "health"})
    assert read_until(sock, 10)["replicas"] == 2


def test_front_cancel_answers_the_fill_as_cancelled(front):
    backend, address = front
    backend.delay = 5.0
    sock = connect(address)
    read_until(sock, 0)
    P.write_frame(sock, fill_msg(1, ["slow"]))
    P.write_frame(sock, {"id": 2, "op": "cancel", "target": 1})
    assert read_until(sock, 1)["code"] == P.CANCELLED
    assert read_until(sock, 2)["cancelled"] is True


def test_front_never_delivers_an_answer_for_another_id(front):
    backend, address = front
    backend.wrong_id = True
    sock = connect(address)
    read_until(sock, 0)
    P.write_frame(sock, fill_msg(5, ["mine"]))
    answer = read_until(sock, 5)
    assert answer["ok"] is False and answer["code"] == P.INTERNAL


def test_checked_answer_refuses_a_short_result_list():
    msg = fill_msg(3, ["a", "b"])
    short = {"id": 3, "ok": True, "results": [P.result_to_wire(FillResult(text="A", model_calls=1))]}
    assert checked_answer(msg, short)["code"] == P.INTERNAL
    assert checked_answer(msg, "garbage")["code"] == P.INTERNAL
    error = P.error_response(3, "cancelled", P.CANCELLED)
    assert checked_answer(msg, error) == error
