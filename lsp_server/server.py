"""``infill serve``: the pygls 2.x language server (stdio, or ``--tcp HOST:PORT`` on loopback).

This module builds the server (``InfillServer`` in ``lsp_server/infill_server.py``, with the
module-level feature handlers of ``lsp_server/handlers.py``) and runs it. All lsprotocol conversion
is in ``lsp_server/convert.py``; the protocol layer is ``lsp_server/protocol.py``.
"""

from __future__ import annotations

import argparse
import faulthandler
import logging
import sys

from model.protocol import parse_tcp
from model.worker import is_loopback

from . import handlers
from .infill_server import InfillServer

__all__ = ["InfillServer", "build_server", "main", "parse_tcp"]


def build_server() -> InfillServer:
    """A server with every feature and command registered."""
    server = InfillServer()
    for method, options, handler in handlers.FEATURES:
        server.feature(method, options)(handler)
    for name, handler in handlers.COMMANDS:
        server.command(name)(handler)
    return server


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="infill serve", description="Run the infill language server.")
    ap.add_argument("--stdio", action="store_true", help="talk LSP over stdin/stdout (the default)")
    ap.add_argument("--tcp", metavar="HOST:PORT", type=parse_tcp,
                    help="listen on TCP instead (loopback only; port 0 picks a free port, logged at start)")
    ap.add_argument("--allow-remote", action="store_true", help="allow a non-loopback --tcp address")
    ap.add_argument("--log-level", default="INFO", help="log level on stderr (default INFO)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s infill %(levelname)s %(name)s: %(message)s")
    logging.getLogger("pygls").setLevel(logging.WARNING)  # it logs every message body at INFO
    # ... except its start/stop lines, among them "Serving on (host, port)": the port --tcp HOST:0 got
    logging.getLogger("pygls.server").setLevel(logging.INFO)
    try:  # a crash in native code (tree-sitter, torch) leaves its stack in the log
        faulthandler.enable(sys.stderr)
    except (AttributeError, OSError, ValueError):  # a stderr without a file descriptor (embedded, captured)
        pass
    server = build_server()
    try:
        if args.tcp:
            host, port = args.tcp
            if not is_loopback(host) and not args.allow_remote:
                ap.error(f"{host} is not a loopback address; pass --allow-remote to listen on it")
            server.start_tcp(host, port)
        else:
            server.start_io()
    finally:
        server.shutdown_worker()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
