"""The cluster's front door: the worker's TCP protocol (model/protocol.py), forwarded to replicas.

It accepts what ``infill worker`` accepts (``hello`` with the token first, then ``health``,
``fill`` and ``cancel``; the same frame and schema limits) and answers the same way, so a language
server points its ``infill.workerAddress`` at it unchanged. Each ``fill`` is sent to a ``Backend``
(the Serve deployment in production, a fake in unit tests) with the connection as its affinity
key. An answer reaches the client only if it carries the request's id and one result per request:
a fill is never delivered to anyone but the message it was computed for.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import logging
import os
import time
from typing import Protocol

from .. import protocol as P

log = logging.getLogger("infill.cluster")


class Backend(Protocol):
    async def fill(self, msg: dict, affinity: str) -> dict:
        """The response map for one checked ``fill`` message (an error map, never an exception)."""

    async def describe(self, affinity: str | None = None) -> dict:
        """State fields for ``hello``/``health`` replies (state, model, device, replicas...), from the
        replica ``affinity`` prefers."""


def checked_answer(msg: dict, response: object) -> dict:
    """``response`` if it is the answer to ``msg`` (same id, one result per request); else an error map."""
    n = len(msg["requests"])
    try:
        if not isinstance(response, dict):
            raise P.ProtocolError(f"a response must be a map, not {type(response).__name__}")
        P.check_response(response)
        if response["id"] != msg["id"]:
            raise P.ProtocolError(f"answer for id {response['id']} came back for id {msg['id']}")
        if response["ok"] and len(response.get("results") or []) != n:
            raise P.ProtocolError(f"{len(response.get('results') or [])} results for {n} requests")
    except P.ProtocolError as exc:
        log.error("dropped a replica's answer: %s", exc)
        return P.error_response(msg["id"], f"the cluster gave an unusable answer ({exc})", P.INTERNAL)
    return response


class _Client:
    """One TCP client of the front: its stream, its in-flight fills (for cancel) and whether it said hello."""

    def __init__(self, front: "Front", reader: asyncio.StreamReader, writer: asyncio.StreamWriter, serial: int):
        self.front, self.reader, self.writer = front, reader, writer
        self.affinity = f"conn-{os.getpid()}-{serial}"  # the replica key; told to the client as "session"
        self.authed = False
        self.fills: dict[int, asyncio.Task] = {}

    def send(self, message: dict) -> None:
        if self.writer.is_closing():
            return
        try:
            data = P.encode_frame(message, self.front.max_message_bytes)
        except P.MessageTooLarge as exc:
            data = P.encode_frame(P.error_response(message.get("id"), str(exc), P.TOO_LARGE))
        self.writer.write(data)

    async def read(self) -> dict | None:
        """The next message; None when the peer left. ProtocolError for a bad body, MessageTooLarge to close."""
        try:
            header = await self.reader.readexactly(P.HEADER.size)
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        (length,) = P.HEADER.unpack(header)
        if length > self.front.max_message_bytes:
            raise P.MessageTooLarge(f"frame of {length} bytes exceeds the limit of {self.front.max_message_bytes}")
        try:
            body = await self.reader.readexactly(length)
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        return P.decode_body(body)

    async def serve(self) -> None:
        try:
            while True:
                try:
                    msg = await self.read()
                except P.MessageTooLarge as exc:
                    self.send(P.error_response(None, str(exc), P.TOO_LARGE))
                    break
                except P.ProtocolError as exc:
                    self.send(P.error_response(None, str(exc)))
                    continue
                if msg is None or not await self.dispatch(msg):
                    break
                await self.writer.drain()
        except ConnectionError as exc:
            log.debug("client connection error: %s", exc)
        except Exception:
            log.exception("front connection failed")
        finally:
            for task in list(self.fills.values()):
                task.cancel()  # nobody is listening any more
            self.writer.close()

    async def dispatch(self, msg: dict) -> bool:
        """Handle one message as ``infill worker`` does; False closes the connection."""
        try:
            P.check_request(msg)
        except P.ProtocolError as exc:
            self.send(P.error_response(msg.get("id"), str(exc)))
            return True
        op, msg_id = msg["op"], msg["id"]
        if op == "hello":
            if not self.front.token_ok(msg.get("token")):
                self.send(P.error_response(msg_id, "invalid token", P.UNAUTHORIZED))
                return False
            version = msg.get("version", P.PROTOCOL_VERSION)
            if version != P.PROTOCOL_VERSION:
                self.send(P.error_response(msg_id, f"protocol version {version} is not this cluster's "
                                           f"{P.PROTOCOL_VERSION}; run a client of the same installation"))
                return False
            first, self.authed = not self.authed, True
            state = await self.front.describe(self.affinity)
            self.send({"id": msg_id, "ok": True, **state})
            if first:
                self.send({"op": "progress", "state": state["state"], "message": state["message"],
                           "percentage": 100 if state["state"] == "ready" else None})
            return True
        if not self.authed:
            self.send(P.error_response(msg_id, "send 'hello' with the worker token first", P.UNAUTHORIZED))
            return False
        if op == "health":
            self.send({"id": msg_id, "ok": True, **await self.front.describe(self.affinity)})
        elif op == "cancel":
            task = self.fills.pop(msg["target"], None)
            if task is not None:
                task.cancel()
                self.send(P.error_response(msg["target"], "cancelled", P.CANCELLED))
            self.send({"id": msg_id, "ok": True, "cancelled": task is not None})
        elif op == "fill":
            if msg_id in self.fills:
                self.send(P.error_response(msg_id, f"id {msg_id} is already in flight"))
                return True
            self.fills[msg_id] = asyncio.create_task(self._fill(msg))
        return True

    async def _fill(self, msg: dict) -> None:
        try:
            response = checked_answer(msg, await self.front.backend.fill(msg, self.affinity))
        except asyncio.CancelledError:
            return  # cancelled by the client (already answered) or the connection closed
        except Exception as exc:  # a backend must answer with an error map; this is its bug, logged
            log.exception("fill %s failed in the front", msg["id"])
            response = P.error_response(msg["id"], f"fill failed: {type(exc).__name__}: {exc}", P.INTERNAL)
        if self.fills.pop(msg["id"], None) is not None:
            self.send(response)
            try:
                await self.writer.drain()
            except ConnectionError:
                pass


class Front:
    """Listens on TCP (loopback unless ``allow_remote``; a token always) and serves each client."""

    def __init__(self, backend: Backend, token: str, max_message_bytes: int = P.MAX_MESSAGE_BYTES):
        if not token:
            raise ValueError("the front listens on TCP and needs a token")
        self.backend = backend
        self.token = token
        self.max_message_bytes = max_message_bytes
        self._serials = itertools.count(1)
        self._server: asyncio.AbstractServer | None = None
        self._clients: set[asyncio.Task] = set()
        self.address = ""
        self.started = time.monotonic()

    def token_ok(self, token: str | None) -> bool:
        return isinstance(token, str) and hmac.compare_digest(token.encode(), self.token.encode())

    async def describe(self, affinity: str | None = None) -> dict:
        try:
            state = await self.backend.describe(affinity)
        except Exception as exc:
            state = {"state": "failed", "message": f"cluster unreachable: {exc}", "error": str(exc)}
        return {"state": "loading", "message": "", "error": None, "version": P.PROTOCOL_VERSION,
                "pid": os.getpid(), **state, "session": affinity}

    async def start(self, host: str, port: int) -> str:
        self._server = await asyncio.start_server(self._accept, host, port)
        bound = self._server.sockets[0].getsockname()
        self.address = f"tcp:{bound[0]}:{bound[1]}"
        return self.address

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._clients.add(task)
        try:
            await _Client(self, reader, writer, next(self._serials)).serve()
        finally:
            self._clients.discard(task)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._clients):
            task.cancel()
        await asyncio.gather(*self._clients, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
