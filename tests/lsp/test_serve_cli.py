"""``infill serve`` command line: loopback-only TCP unless asked, address parsing, port 0."""

from __future__ import annotations

import argparse
import json
import re
import socket
import subprocess
import sys
import time

import pytest

from lsp_server.server import main, parse_tcp
from model import worker


def test_tcp_address_parsing():
    assert parse_tcp("127.0.0.1:2087") == ("127.0.0.1", 2087)
    assert parse_tcp(":2087") == ("127.0.0.1", 2087)
    assert parse_tcp("[::1]:2087") == ("::1", 2087)
    assert parse_tcp("127.0.0.1:0") == ("127.0.0.1", 0)  # a listener on a free port the OS picks
    for bad in ("2087", "host:", "host:65536", "host:99999", "host:abc", "host:-1"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_tcp(bad)


def test_server_and_worker_share_one_address_parser():
    assert worker.parse_tcp is parse_tcp
    assert worker.build_parser().parse_args(["--tcp", "127.0.0.1:0"]).tcp == ("127.0.0.1", 0)


def test_a_public_tcp_address_needs_allow_remote(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--tcp", "0.0.0.0:2087"])
    assert exc.value.code == 2
    assert "not a loopback address" in capsys.readouterr().err


def _frame(obj: dict) -> bytes:
    body = json.dumps(obj).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def _read_frame(sock: socket.socket) -> dict:
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536) or pytest.fail("connection closed")
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
    while len(body) < length:
        body += sock.recv(65536) or pytest.fail("connection closed")
    return json.loads(body[:length])


def test_port_0_listens_on_a_free_port_it_logs():
    proc = subprocess.Popen([sys.executable, "-m", "lsp_server.server", "--tcp", "127.0.0.1:0"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        port, deadline, log = None, time.monotonic() + 30, []
        while port is None and time.monotonic() < deadline:
            line = proc.stderr.readline().decode(errors="replace")
            log.append(line)
            if m := re.search(r"Serving on \('127\.0\.0\.1', (\d+)\)", line):
                port = int(m.group(1))
            elif not line and proc.poll() is not None:
                break
        assert port and port > 0, "".join(log)
        with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
            sock.sendall(_frame({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                                 "params": {"processId": None, "rootUri": None, "capabilities": {}}}))
            reply = _read_frame(sock)
        assert reply["id"] == 1 and reply["result"]["serverInfo"]["name"] == "infill", reply
    finally:
        proc.kill()
        proc.wait(timeout=10)
