"""``infill serve`` command line: loopback-only TCP unless asked, address parsing."""

from __future__ import annotations

import argparse

import pytest

from lsp_server.server import main, parse_tcp


def test_tcp_address_parsing():
    assert parse_tcp("127.0.0.1:2087") == ("127.0.0.1", 2087)
    assert parse_tcp(":2087") == ("127.0.0.1", 2087)
    assert parse_tcp("[::1]:2087") == ("::1", 2087)
    for bad in ("2087", "host:", "host:99999", "host:abc"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_tcp(bad)


def test_a_public_tcp_address_needs_allow_remote(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--tcp", "0.0.0.0:2087"])
    assert exc.value.code == 2
    assert "not a loopback address" in capsys.readouterr().err
