"""``infill cluster`` for real: a local Ray on loopback, two CPU replicas of the starter model, and
the language server's own worker client. Concurrent users get the answers computed for their own
requests; a replica killed mid-fill is replaced and its fill is retried or answered with an error,
never with another user's; SIGTERM leaves no Ray process behind. Everything has a timeout."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from infill.types import FillRequest
from lsp_server.worker_client import WorkerClient, WorkerOptions
from model import protocol as P

if not os.environ.get("CI"):  # CI installs the cluster extra, so there a missing Ray fails loudly
    pytest.importorskip("ray")

TOKEN = "cluster-test-token"
START_TIMEOUT_S = 180
STEPS = P.FillOptions(steps=4)  # the same step budget on every replica, whatever each one calibrated


def request(user: int, version: int) -> FillRequest:
    """User ``user``'s document at ``version``: a context length and canvas size no other request has."""
    lines = "".join(f"a{k} = {k}\n" for k in range(user * 3 + version))
    return FillRequest(lines + "def f(", "):\n    pass\n", 4 + user, "python")


def _descendants(root: int) -> dict[int, str]:
    """{pid: command name} of every process below ``root``."""
    out = subprocess.run(["ps", "-eo", "pid=,ppid=,comm="], capture_output=True, text=True, timeout=10).stdout
    children: dict[int, list[tuple[int, str]]] = {}
    for line in out.splitlines():
        pid, ppid, comm = line.split(None, 2)
        children.setdefault(int(ppid), []).append((int(pid), comm.strip()))
    found, todo = {}, [root]
    while todo:
        for pid, comm in children.get(todo.pop(), []):
            found[pid] = comm
            todo.append(pid)
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie has exited; only its entry is left
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture(scope="module")
def cluster():
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "model.cluster", "--tcp", "127.0.0.1:0", "--token", TOKEN, "--replicas", "2",
           "--num-cpus", "1", "--device", "cpu", "--dtype", "float32", "--threads", "1", "--retries", "2",
           "--request-timeout", "60", "--log-level", "WARNING"]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env=env)
    lines: list[str] = []
    listening = threading.Event()

    def drain():
        for line in proc.stderr:
            lines.append(line)
            if "listening on tcp:" in line:
                listening.set()

    threading.Thread(target=drain, daemon=True).start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not listening.is_set() and proc.poll() is None and time.monotonic() < deadline:
        listening.wait(0.5)
    if not listening.is_set():
        proc.kill()
        proc.wait(30)
        pytest.fail("infill cluster did not start:\n" + "".join(lines[-40:]))
    address = re.search(r"listening on (tcp:\S+)", "".join(lines)).group(1)
    yield {"address": address, "proc": proc, "lines": lines}
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)


def raw_client(address: str) -> tuple[socket.socket, dict]:
    host, port = address.removeprefix("tcp:").rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=60)
    P.write_frame(sock, {"id": 0, "op": "hello", "token": TOKEN, "version": P.PROTOCOL_VERSION})
    return sock, read_answer(sock, 0)


def read_answer(sock: socket.socket, msg_id: int) -> dict:
    while True:
        msg = P.read_frame(sock)
        if msg.get("id") == msg_id:
            return msg


def test_ray_concurrent_clients_get_the_fills_computed_for_their_own_requests(cluster):
    users, versions = 6, 3
    reference = WorkerClient(WorkerOptions(address=cluster["address"], token=TOKEN, request_timeout_s=60))
    try:
        expected = {}  # (user, version) -> context tokens of that request, from a fill of its own
        for u in range(users):
            for v in range(versions):
                (r,) = reference.fill([request(u, v)], options=STEPS)
                expected[u, v] = r.timings["context_tokens"]
                assert r.timings["canvas_tokens"] == 4 + u
        assert len(set(expected.values())) == users * versions  # each request tells itself apart
    finally:
        reference.close()

    def user(u: int) -> list:
        client = WorkerClient(WorkerOptions(address=cluster["address"], token=TOKEN, request_timeout_s=60))
        try:
            with ThreadPoolExecutor(versions) as pool:  # a user's versions in flight together on one connection
                futures = [pool.submit(client.fill, [request(u, v)], None, None, STEPS) for v in range(versions)]
                return [(u, v, f.result(timeout=90)[0]) for v, f in enumerate(futures)]
        finally:
            client.close()

    with ThreadPoolExecutor(users) as pool:
        answers = [a for f in [pool.submit(user, u) for u in range(users)] for a in f.result(timeout=120)]
    assert len(answers) == users * versions
    for u, v, result in answers:
        assert result.timings["canvas_tokens"] == 4 + u, (u, v, result.timings)
        assert result.timings["context_tokens"] == expected[u, v], (u, v, result.timings)
        assert result.model_calls >= 1 and isinstance(result.text, str)
    assert max(r.timings["batch_size"] for _, _, r in answers) > 1  # users shared model calls


def test_ray_killed_replica_is_replaced_and_its_fill_retried_or_refused(cluster):
    slow_request = FillRequest("import os\n", "", 128, "python", False, None, -20.0)  # never stops early
    slow = P.fill_message(1, [slow_request], None, P.FillOptions(steps=128, threshold=0.0))
    sock, hello = raw_client(cluster["address"])
    assert hello["ok"] and hello["replicas"] == 2
    P.write_frame(sock, slow)
    reference = read_answer(sock, 1)  # the same fill, undisturbed: its size tells it apart
    assert reference["ok"], reference
    ref_timings = reference["results"][0]["timings"]

    slow["id"] = 2
    P.write_frame(sock, slow)
    victim = None
    for probe in range(3, 200):  # the replica this connection's fills go to, once it holds fill 2
        P.write_frame(sock, {"id": probe, "op": "health"})
        health = read_answer(sock, probe)
        if 2 in (health.get("in_flight") or []):
            victim = health["replica_pid"]
            break
        time.sleep(0.05)
    assert victim, "fill 2 never showed up in its replica"
    os.kill(victim, signal.SIGKILL)

    other, _ = raw_client(cluster["address"])  # another user, during the failover
    P.write_frame(other, P.fill_message(7, [request(1, 0)], None, STEPS))
    answer = read_answer(sock, 2)
    if answer["ok"]:  # retried on a live replica: the fill computed for this very request
        timings = answer["results"][0]["timings"]
        assert (timings["canvas_tokens"], timings["context_tokens"]) == (
            ref_timings["canvas_tokens"], ref_timings["context_tokens"])
    else:
        assert answer["code"] == P.INTERNAL and "replica" in answer["error"], answer
    assert any("replica lost" in line for line in cluster["lines"]), "the front never saw the replica die"
    print("fill on the killed replica:", "retried" if answer["ok"] else answer["error"])
    theirs = read_answer(other, 7)
    if theirs["ok"]:
        assert theirs["results"][0]["timings"]["canvas_tokens"] == 5

    deadline = time.monotonic() + 150
    probe = 1000
    while True:  # Ray starts a replica in place of the killed one
        probe += 1
        P.write_frame(other, {"id": probe, "op": "health"})
        health = read_answer(other, probe)
        if health.get("replicas") == 2 and health.get("state") == "ready" and health.get("replica_pid") != victim:
            break
        assert time.monotonic() < deadline, f"no replacement replica: {health}"
        time.sleep(1.0)
    P.write_frame(other, P.fill_message(8, [request(2, 1)], None, STEPS))
    after = read_answer(other, 8)
    assert after["ok"] and after["results"][0]["timings"]["canvas_tokens"] == 6
    sock.close()
    other.close()


def test_ray_sigterm_leaves_no_process_behind(cluster):
    proc = cluster["proc"]
    below = _descendants(proc.pid)
    names = set(below.values())
    assert {"raylet", "gcs_server"} <= names, names
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(90) == 0, "".join(cluster["lines"][-30:])
    deadline = time.monotonic() + 30
    while (left := {pid: name for pid, name in below.items() if _alive(pid)}) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left, f"still running after shutdown: {left}"
