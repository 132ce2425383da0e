"""The model worker's wire protocol: length-prefixed msgpack maps with a strict schema per op.

A frame is a 4-byte big-endian length followed by that many bytes of one msgpack map. Frames larger
than ``MAX_MESSAGE_BYTES`` are refused before they are read (the connection is then closed, since
the stream can no longer be trusted). Every request is checked against its op's schema before
anything acts on it; a bad request gets an error response, never a crash.

Requests (client -> worker)::

    {"id": int, "op": "hello",  "token": str | None, "version": int}       # auth, first on TCP
    {"id": int, "op": "health"}
    {"id": int, "op": "fill",   "requests": [{"prefix": str, "suffix": str,
                                              "canvas_tokens": int, "language": str | None,
                                              "single_line": bool (optional),
                                              "temperature": float | None (optional),
                                              "stop_bias": float | None (optional),
                                              "related": [str] (optional)}],
                                "deadline_ms": int | None, "options": FillOptions as a map}
    {"id": int, "op": "cancel", "target": int}

``options`` holds only the sampler settings this call changes (``FillOptions``); a missing one keeps
the worker's own. A request's ``temperature``, ``stop_bias`` and ``related`` texts travel with the request, not here;
``related`` holds at most ``MAX_RELATED_TEXTS`` strings of at most ``MAX_RELATED_CHARS`` characters
in all.
A ``hello`` whose ``version`` differs from ``PROTOCOL_VERSION`` is refused (a client that sends
none is taken to speak this version).

Responses (worker -> client) carry the request's id::

    {"id": int, "ok": True,  "results": [{"text", "model_calls", "tokens", "confidence", "timings"}]}
    {"id": int, "ok": True,  ...op-specific fields (state, model, device, pid, version, max_position)}
    {"id": int, "ok": False, "error": str, "code": str}

Events (worker -> client, no id)::

    {"op": "progress", "state": "loading" | "ready" | "failed", "message": str, "percentage": int | None}
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import socket
import struct
from dataclasses import dataclass
from typing import Any

import msgpack

from infill.types import FillRequest, FillResult

# 2: ``options`` is the FillOptions schema (was any scalar map); hello checks it. 3: ``related`` texts
PROTOCOL_VERSION = 3
MAX_MESSAGE_BYTES = 8 * 1024 * 1024  # a request's text is capped far below this by the server
MAX_BATCH = 64  # requests in one fill message
# The largest canvas a fill request may ask for: the one bound of ``infill.maxTokens`` and of the
# engine's canvases. The worker honours every canvas up to it that fits its model's positions
# (``max_position`` in ``describe``) and refuses a larger one with CANVAS_TOO_LONG.
MAX_CANVAS_TOKENS = 1024
MAX_STEPS = 512  # FillOptions.steps (and ``infill.steps``)
MAX_SPECULATE = 16  # FillOptions.speculate (and ``infill.speculate``)
MAX_TEMPERATURE = 4.0  # a request's sampling temperature
MAX_STOP_BIAS = 20.0  # |stop_bias|: beyond it the stop token always (or never) wins anyway
# A request's ``related`` texts (``FillRequest.related``): how many, and their characters in all.
# The denoiser indexes far fewer tokens than this allows (``CopyPriorConfig.max_related_tokens``).
MAX_RELATED_TEXTS = 32
MAX_RELATED_CHARS = 256 * 1024
HEADER = struct.Struct(">I")

OPS = ("hello", "health", "fill", "cancel")

# Error codes carried in ``code`` next to the human-readable ``error``.
BAD_REQUEST = "bad_request"
UNAUTHORIZED = "unauthorized"
TOO_LARGE = "too_large"
CANCELLED = "cancelled"
CANVAS_TOO_LONG = "canvas_too_long"  # the canvas does not fit the loaded model's positions
MODEL_FAILED = "model_failed"
INTERNAL = "internal"


class ProtocolError(Exception):
    """A frame or message that breaks the protocol (bad framing, schema, size)."""

    code = BAD_REQUEST


class MessageTooLarge(ProtocolError):
    """A frame above ``MAX_MESSAGE_BYTES``; the stream cannot be resynchronised, so it is closed."""

    code = TOO_LARGE


class ConnectionClosed(ProtocolError):
    """The peer closed the stream (cleanly between frames or in the middle of one)."""


# ---------------------------------------------------------------- framing

def encode_frame(message: dict, max_bytes: int = MAX_MESSAGE_BYTES) -> bytes:
    """One message as a frame; refuses messages over ``max_bytes`` (the peer would refuse them)."""
    if not isinstance(message, dict):
        raise ProtocolError(f"a message must be a map, not {type(message).__name__}")
    try:
        body = msgpack.packb(message, use_bin_type=True)
    except (UnicodeEncodeError, TypeError, ValueError, OverflowError) as exc:  # e.g. a lone surrogate, a set
        raise ProtocolError(f"message cannot be encoded: {exc}") from exc
    if len(body) > max_bytes:
        raise MessageTooLarge(f"message of {len(body)} bytes exceeds the limit of {max_bytes}")
    return HEADER.pack(len(body)) + body


def decode_body(body: bytes) -> dict:
    """Unpack one frame body into a map; anything else is a ProtocolError."""
    try:
        message = msgpack.unpackb(body, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated types on garbage
        raise ProtocolError(f"undecodable msgpack: {exc}") from exc
    if not isinstance(message, dict):
        raise ProtocolError(f"a message must be a map, not {type(message).__name__}")
    return message


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks, remaining = [], n
    while remaining:
        chunk = sock.recv(min(remaining, 1 << 20))
        if not chunk:
            raise ConnectionClosed("connection closed" + (" mid-frame" if remaining != n else ""))
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_frame(sock: socket.socket, max_bytes: int = MAX_MESSAGE_BYTES) -> dict:
    """Block until one message arrives; raise ConnectionClosed at EOF, MessageTooLarge before reading a huge body."""
    (length,) = HEADER.unpack(_recv_exact(sock, HEADER.size))
    if length > max_bytes:
        raise MessageTooLarge(f"frame of {length} bytes exceeds the limit of {max_bytes}")
    return decode_body(_recv_exact(sock, length))


def write_frame(sock: socket.socket, message: dict, max_bytes: int = MAX_MESSAGE_BYTES) -> None:
    sock.sendall(encode_frame(message, max_bytes))


# ---------------------------------------------------------------- schema

def _check_keys(msg: dict, required: set[str], optional: set[str] = frozenset()) -> None:
    keys = set(msg)
    missing = required - keys
    if missing:
        raise ProtocolError(f"{msg.get('op')!r}: missing field(s) {sorted(missing)}")
    extra = keys - required - optional
    if extra:
        raise ProtocolError(f"{msg.get('op')!r}: unknown field(s) {sorted(map(str, extra))}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_int(msg: dict, key: str, lo: int, hi: int, optional: bool = False) -> None:
    value = msg.get(key)
    if value is None and optional:
        return
    if not _is_int(value) or not lo <= value <= hi:
        raise ProtocolError(f"{msg.get('op')!r}: {key!r} must be an integer in [{lo}, {hi}], got {value!r}")


def check_request(msg: dict) -> dict:
    """Validate one client request against its op's schema; return it unchanged or raise ProtocolError."""
    op = msg.get("op")
    if op not in OPS:
        raise ProtocolError(f"unknown op {op!r} (expected one of {', '.join(OPS)})")
    _check_int(msg, "id", 0, 2**63 - 1)
    if op == "hello":
        _check_keys(msg, {"id", "op"}, {"token", "version"})
        if msg.get("token") is not None and not isinstance(msg["token"], str):
            raise ProtocolError("'hello': 'token' must be a string")
        _check_int(msg, "version", 0, 2**31 - 1, optional=True)
    elif op == "health":
        _check_keys(msg, {"id", "op"})
    elif op == "cancel":
        _check_keys(msg, {"id", "op", "target"})
        _check_int(msg, "target", 0, 2**63 - 1)
    elif op == "fill":
        _check_keys(msg, {"id", "op", "requests"}, {"deadline_ms", "options"})
        _check_int(msg, "deadline_ms", 0, 3_600_000, optional=True)
        _check_fill_requests(msg["requests"])
        FillOptions.from_wire(msg.get("options"))
    return msg


def _check_fill_requests(requests: Any) -> None:
    if not isinstance(requests, list) or not 1 <= len(requests) <= MAX_BATCH:
        raise ProtocolError(f"'fill': 'requests' must be a list of 1..{MAX_BATCH} maps")
    for i, req in enumerate(requests):
        if not isinstance(req, dict):
            raise ProtocolError(f"'fill': requests[{i}] must be a map")
        keys = set(req)
        if (keys - {"prefix", "suffix", "canvas_tokens", "language", "single_line", "temperature", "stop_bias",
                    "related"}
                or not {"prefix", "suffix", "canvas_tokens"} <= keys):
            raise ProtocolError(f"'fill': requests[{i}] must have prefix, suffix, canvas_tokens and optional "
                                "language, single_line, temperature, stop_bias and related")
        if not isinstance(req["prefix"], str) or not isinstance(req["suffix"], str):
            raise ProtocolError(f"'fill': requests[{i}] prefix and suffix must be strings")
        if not _is_int(req["canvas_tokens"]) or not 1 <= req["canvas_tokens"] <= MAX_CANVAS_TOKENS:
            raise ProtocolError(f"'fill': requests[{i}].canvas_tokens must be an integer in [1, {MAX_CANVAS_TOKENS}]")
        if req.get("language") is not None and not isinstance(req["language"], str):
            raise ProtocolError(f"'fill': requests[{i}].language must be a string or nil")
        if not isinstance(req.get("single_line", False), bool):
            raise ProtocolError(f"'fill': requests[{i}].single_line must be a boolean")
        t = req.get("temperature")
        if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 <= t <= MAX_TEMPERATURE):
            raise ProtocolError(f"'fill': requests[{i}].temperature must be nil or a number in [0, {MAX_TEMPERATURE}]")
        b = req.get("stop_bias")
        if b is not None and (isinstance(b, bool) or not isinstance(b, (int, float)) or not abs(b) <= MAX_STOP_BIAS):
            raise ProtocolError(f"'fill': requests[{i}].stop_bias must be nil or a number in "
                                f"[-{MAX_STOP_BIAS}, {MAX_STOP_BIAS}]")
        _check_related(req.get("related"), f"requests[{i}].related")


def _check_related(related: Any, where: str) -> None:
    """A request's ``related`` texts: nil or a list of strings, bounded in count and total characters."""
    if related is None:
        return
    if not isinstance(related, list) or not all(isinstance(t, str) for t in related):
        raise ProtocolError(f"'fill': {where} must be nil or a list of strings")
    if len(related) > MAX_RELATED_TEXTS:
        raise ProtocolError(f"'fill': {where} has {len(related)} texts; at most {MAX_RELATED_TEXTS} are allowed")
    chars = sum(len(t) for t in related)
    if chars > MAX_RELATED_CHARS:
        raise ProtocolError(f"'fill': {where} has {chars} characters in all; at most {MAX_RELATED_CHARS} "
                            "are allowed (send fewer or shorter snippets)")


def _int_in(lo: int, hi: int):
    def check(value: Any) -> bool:
        return _is_int(value) and lo <= value <= hi
    check.expected = f"an integer in [{lo}, {hi}]"
    return check


def _unit(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and 0 <= value <= 1


_unit.expected = "a number in [0, 1]"


@dataclass(frozen=True)
class FillOptions:
    """Sampler settings one fill call changes; ``None`` keeps the worker's own (``SamplerOptions``).

    On the wire only the fields that are set travel, as a map. Ranges are checked here, on both
    sides: a client cannot build an invalid one and the worker refuses one with a message.
    """

    steps: int | None = None  # model calls per fill; 0 lets the sampler decide
    speculate: int | None = None  # canvases per model call (self-speculative decoding); 0 or 1 = off
    threshold: float | None = None  # commit every position scoring at least this; 0 = none (schedule only)
    # False: no copy prior for this call (``model.copy_prior``); None/True: the worker's own setting
    copy_prior: bool | None = None

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            check = _OPTION_CHECKS[f.name]
            if value is not None and not check(value):
                raise ProtocolError(f"'fill': option {f.name!r} must be {check.expected}, got {value!r:.60}")

    def to_wire(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if getattr(self, f.name) is not None}

    @classmethod
    def from_wire(cls, data: Any) -> FillOptions:
        """The options of a ``fill`` message (absent or empty: none); ProtocolError on anything else."""
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise ProtocolError(f"'fill': 'options' must be a map, not {type(data).__name__}")
        unknown = sorted(str(k) for k in data if k not in _OPTION_CHECKS)
        if unknown:
            raise ProtocolError(f"'fill': unknown option(s) {unknown} (known: {', '.join(_OPTION_CHECKS)})")
        return cls(**{k: v for k, v in data.items() if v is not None})

    def sampler_overrides(self) -> dict:
        """The fields to replace in ``SamplerOptions`` (a threshold of 0 is the sampler's None)."""
        out = self.to_wire()
        out.pop("copy_prior", None)  # a denoiser option, not a sampler one
        if out.get("threshold") == 0:
            out["threshold"] = None
        return out


def _flag(value: Any) -> bool:
    return isinstance(value, bool)


_flag.expected = "a boolean"

_OPTION_CHECKS = {"steps": _int_in(0, MAX_STEPS), "speculate": _int_in(0, MAX_SPECULATE), "threshold": _unit,
                  "copy_prior": _flag}


def check_response(msg: dict) -> dict:
    """Validate a worker response or event (the client trusts nothing it did not check)."""
    if msg.get("op") == "progress" and "id" not in msg:
        if msg.get("state") not in ("loading", "ready", "failed") or not isinstance(msg.get("message"), str):
            raise ProtocolError(f"bad progress event {msg!r:.200}")
        return msg
    if not _is_int(msg.get("id")) or not isinstance(msg.get("ok"), bool):
        raise ProtocolError(f"a response needs an integer 'id' and a boolean 'ok': {msg!r:.200}")
    if not msg["ok"] and not isinstance(msg.get("error"), str):
        raise ProtocolError("an error response needs an 'error' string")
    if msg["ok"] and "results" in msg:
        results = msg["results"]
        if not isinstance(results, list) or not all(
                isinstance(r, dict) and isinstance(r.get("text"), str) and _is_int(r.get("model_calls"))
                for r in results):
            raise ProtocolError("'results' must be a list of maps with 'text' and 'model_calls'")
    return msg


# ---------------------------------------------------------------- conversions

def fill_message(msg_id: int, requests: list[FillRequest], deadline_ms: int | None = None,
                 options: FillOptions | None = None) -> dict:
    """A ``fill`` request for these FillRequests (lone surrogates, which JSON can carry, become U+FFFD)."""
    return {
        "id": msg_id, "op": "fill", "deadline_ms": deadline_ms, "options": (options or FillOptions()).to_wire(),
        "requests": [{"prefix": _utf8_safe(r.prefix), "suffix": _utf8_safe(r.suffix), "canvas_tokens": r.canvas_tokens,
                      "language": r.language, "single_line": r.single_line, "temperature": r.temperature,
                      "stop_bias": r.stop_bias, **_related_wire(r.related)}
                     for r in requests],
    }


def _related_wire(related: tuple[str, ...]) -> dict:
    """The ``related`` field of a wire request: absent when there are none. Oversize input is refused
    here, on the client, with the worker's own message rather than after the frame is sent."""
    if not related:
        return {}
    texts = [_utf8_safe(t) for t in related]
    _check_related(texts, "a request's related texts")
    return {"related": texts}


def _utf8_safe(text: str) -> str:
    """``text`` with lone surrogates replaced, so it encodes as UTF-8; the length in characters is kept."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)


def requests_from_message(msg: dict) -> list[FillRequest]:
    return [FillRequest(r["prefix"], r["suffix"], r["canvas_tokens"], r.get("language"), r.get("single_line", False),
                        _float_or_none(r.get("temperature")), _float_or_none(r.get("stop_bias")),
                        tuple(r.get("related") or ()))
            for r in msg["requests"]]


def _float_or_none(value) -> float | None:
    return None if value is None else float(value)


def result_to_wire(result: FillResult) -> dict:
    timings = {str(k): float(v) for k, v in (result.timings or {}).items() if isinstance(v, (int, float))}
    return {"text": result.text, "model_calls": int(result.model_calls), "tokens": int(result.tokens),
            "confidence": float(result.confidence), "timings": timings}


def result_from_wire(data: dict) -> FillResult:
    timings = data.get("timings") if isinstance(data.get("timings"), dict) else {}
    return FillResult(text=data["text"], model_calls=int(data["model_calls"]), tokens=int(data.get("tokens") or 0),
                      confidence=float(data.get("confidence") or 0.0), timings=dict(timings))


def error_response(msg_id: int | None, error: str, code: str = BAD_REQUEST) -> dict:
    return {"id": msg_id if _is_int(msg_id) else -1, "ok": False, "error": error, "code": code}


def parse_tcp(value: str) -> tuple[str, int]:
    """``HOST:PORT`` for a ``--tcp`` listener (``[::1]:PORT`` for IPv6; ``:PORT`` is 127.0.0.1).

    Port 0 asks the operating system for a free (ephemeral) port; the listener logs the one it got.
    Raises ``argparse.ArgumentTypeError`` (it is an argparse ``type=``) for anything else malformed.
    """
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT with a port from 0 to 65535, got {value!r}")
    return host.strip("[]") or "127.0.0.1", int(port)
