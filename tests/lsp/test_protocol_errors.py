"""Bodies that are not UTF-8 JSON, sent to the real ``infill serve`` over stdio: each is answered with
a JSON-RPC ParseError (-32700, id null), the connection stays up and the next request is served."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SERVER = [sys.executable, "-m", "lsp_server.server", "--log-level", "WARNING"]
PARSE_ERROR = -32700


def frame(body: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def request(msg_id: int, method: str, params: dict) -> bytes:
    return frame(json.dumps({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params}).encode())


def read_message(out) -> dict:
    length = None
    while True:
        line = out.readline()
        assert line, "the server closed stdout"
        if line == b"\r\n":
            break
        name, _, value = line.decode("ascii").partition(":")
        if name.lower() == "content-length":
            length = int(value)
    return json.loads(out.read(length))


def read_response(out, msg_id) -> dict:
    while True:  # skip the server's notifications (log messages) and requests
        msg = read_message(out)
        if "id" in msg and "method" not in msg and msg["id"] == msg_id:
            return msg


@pytest.fixture
def server():
    proc = subprocess.Popen(SERVER, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    proc.stdin.write(request(1, "initialize", {"processId": None, "rootUri": None, "capabilities": {}}))
    proc.stdin.flush()
    assert "capabilities" in read_response(proc.stdout, 1)["result"]
    yield proc
    proc.kill()
    proc.wait(timeout=10)


@pytest.mark.parametrize("body", [
    b'{"jsonrpc": "2.0", "id": 7, "method": "infill/stats", "params": {}\xff\xfe}',  # invalid UTF-8
    b'{"jsonrpc": "2.0", "id": 7, "method": "infill/stats", "params": {',  # malformed JSON
    b"{not json",
    b" ",  # no JSON value at all
], ids=["invalid-utf8", "truncated-json", "not-json", "blank"])
def test_an_unparseable_body_is_answered_with_parse_error_and_the_next_request_served(server, body):
    server.stdin.write(frame(body) + request(2, "infill/stats", {}))
    server.stdin.flush()
    error = read_message(server.stdout)
    while "method" in error:  # a notification the server sent meanwhile
        error = read_message(server.stdout)
    assert error == {"jsonrpc": "2.0", "id": None, "error": error["error"]}, error
    assert error["error"]["code"] == PARSE_ERROR and error["error"]["message"].startswith("parse error")
    stats = read_response(server.stdout, 2)
    assert "result" in stats and stats["result"]["documents"] == 0, stats
