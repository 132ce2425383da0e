"""The worker wire protocol: framing, size limit and the per-op schema (no worker, no model)."""

from __future__ import annotations

import socket
import struct

import msgpack
import pytest

from infill.types import FillRequest, FillResult
from model import protocol as P


def _pair():
    a, b = socket.socketpair()
    a.settimeout(5)
    b.settimeout(5)
    return a, b


def test_frame_round_trip_over_a_socket():
    a, b = _pair()
    msg = P.fill_message(7, [FillRequest("def f(", "):\n", 4, "python"), FillRequest("", "x", 1)], 500,
                         P.FillOptions(steps=3))
    P.write_frame(a, msg)
    got = P.read_frame(b)
    assert got == msg
    assert P.check_request(got) is got
    assert P.requests_from_message(got) == [FillRequest("def f(", "):\n", 4, "python"), FillRequest("", "x", 1, None)]


def test_frame_is_big_endian_length_then_msgpack():
    frame = P.encode_frame({"id": 1, "op": "health"})
    (length,) = struct.unpack(">I", frame[:4])
    assert length == len(frame) - 4
    assert msgpack.unpackb(frame[4:]) == {"id": 1, "op": "health"}


def test_oversized_frame_is_refused_before_its_body_is_read():
    a, b = _pair()
    a.sendall(struct.pack(">I", P.MAX_MESSAGE_BYTES + 1))  # header only: the body never comes
    with pytest.raises(P.MessageTooLarge):
        P.read_frame(b)


def test_encoding_an_oversized_message_fails():
    with pytest.raises(P.MessageTooLarge):
        P.encode_frame({"id": 1, "op": "fill", "blob": "x" * 2000}, max_bytes=1000)


def test_eof_and_truncated_frames_are_connection_closed():
    a, b = _pair()
    a.close()
    with pytest.raises(P.ConnectionClosed):
        P.read_frame(b)
    a, b = _pair()
    a.sendall(struct.pack(">I", 10) + b"abc")
    a.close()
    with pytest.raises(P.ConnectionClosed, match="mid-frame"):
        P.read_frame(b)


@pytest.mark.parametrize("body", [b"\xc1", msgpack.packb([1, 2, 3]), msgpack.packb("op"), b"\x92\x01"])
def test_garbage_bodies_are_protocol_errors(body):
    with pytest.raises(P.ProtocolError):
        P.decode_body(body)


GOOD_FILL = {"id": 1, "op": "fill", "requests": [{"prefix": "a", "suffix": "b", "canvas_tokens": 3, "language": None}],
             "deadline_ms": None, "options": {}}


@pytest.mark.parametrize("msg", [
    {"id": 1, "op": "hello", "token": "s3cret"},
    {"id": 1, "op": "hello"},
    {"id": 2, "op": "health"},
    {"id": 3, "op": "cancel", "target": 1},
    GOOD_FILL,
    {**GOOD_FILL, "options": {"steps": 4, "speculate": 2, "threshold": 0.5}},
    {**GOOD_FILL, "options": {"threshold": None}},  # nil: the worker's own
    {**GOOD_FILL, "options": None},
    {"id": 1, "op": "hello", "token": None, "version": P.PROTOCOL_VERSION},
    {**GOOD_FILL, "requests": [{"prefix": "a", "suffix": "b", "canvas_tokens": 2, "single_line": True}]},
    {**GOOD_FILL, "requests": [{"prefix": "a", "suffix": "b", "canvas_tokens": 2, "temperature": 0.8}]},
    {**GOOD_FILL, "requests": [{"prefix": "a", "suffix": "b", "canvas_tokens": 2, "temperature": None}]},
    {**GOOD_FILL, "requests": [{"prefix": "a", "suffix": "b", "canvas_tokens": 2, "stop_bias": -2}]},
    {**GOOD_FILL, "requests": [{"prefix": "a", "suffix": "b", "canvas_tokens": 2, "stop_bias": None}]},
])
def test_valid_requests_pass(msg):
    assert P.check_request(msg) is msg


@pytest.mark.parametrize("msg, fragment", [
    ({"op": "health"}, "'id'"),
    ({"id": "1", "op": "health"}, "'id'"),
    ({"id": True, "op": "health"}, "'id'"),
    ({"id": -1, "op": "health"}, "'id'"),
    ({"id": 1, "op": "explode"}, "unknown op"),
    ({"id": 1}, "unknown op"),
    ({"id": 1, "op": "health", "extra": 1}, "unknown field"),
    ({"id": 1, "op": "hello", "token": 5}, "token"),
    ({"id": 1, "op": "cancel"}, "missing"),
    ({"id": 1, "op": "cancel", "target": "x"}, "target"),
    ({**GOOD_FILL, "requests": []}, "requests"),
    ({**GOOD_FILL, "requests": "abc"}, "requests"),
    ({**GOOD_FILL, "requests": [{"prefix": "a", "suffix": "b"}]}, "requests[0]"),
    ({**GOOD_FILL, "requests": [{"prefix": 1, "suffix": "b", "canvas_tokens": 3}]}, "strings"),
    ({**GOOD_FILL, "requests": [{"prefix": "a", "suffix": "b", "canvas_tokens": 0}]}, "canvas_tokens"),
    ({**GOOD_FILL, "requests": [{"prefix": "a", "suffix": "b", "canvas_tokens": 10**6}]}, "canvas_tokens"),
    ({**GOOD_FILL, "requests": [{"prefix": "a", "suffix": "b", "canvas_tokens": 2, "language": 3}]}, "language"),
    ({**GOOD_FILL, "requests": [{"prefix": "a", "suffix": "b", "canvas_tokens": 2, "evil": 1}]}, "requests[0]"),
    ({**GOOD_FILL, "requests": [{"prefix": "a", "suffix": "b", "canvas_tokens": 2, "single_line": 1}]}, "single_line"),
    ({**GOOD_FILL, "requests": [{"prefix": "a", "suffix": "b", "canvas_tokens": 2, "temperature": -1}]}, "temperature"),
    ({**GOOD_FILL, "requests": [{"prefix": "a", "suffix": "b", "canvas_tokens": 2, "temperature": 1e9}]}, "temperature"),
    ({**GOOD_FILL, "requests": [{"prefix": "a", "suffix": "b", "canvas_tokens": 2, "temperature": "hot"}]}, "temperature"),
    ({**GOOD_FILL, "requests": [{"prefix": "a", "suffix": "b", "canvas_tokens": 2, "temperature": True}]}, "temperature"),
    ({**GOOD_FILL, "requests": [{"prefix": "a", "suffix": "b", "canvas_tokens": 2, "stop_bias": 1e9}]}, "stop_bias"),
    ({**GOOD_FILL, "requests": [{"prefix": "a", "suffix": "b", "canvas_tokens": 2, "stop_bias": float("nan")}]},
     "stop_bias"),
    ({**GOOD_FILL, "requests": [{"prefix": "a", "suffix": "b", "canvas_tokens": 2, "stop_bias": "x"}]}, "stop_bias"),
    ({**GOOD_FILL, "requests": [GOOD_FILL["requests"][0]] * (P.MAX_BATCH + 1)}, "requests"),
    ({**GOOD_FILL, "deadline_ms": -5}, "deadline_ms"),
    ({**GOOD_FILL, "options": {"steps": [1]}}, "option 'steps'"),
    ({**GOOD_FILL, "options": {"steps": P.MAX_STEPS + 1}}, "option 'steps'"),
    ({**GOOD_FILL, "options": {"speculate": -1}}, "option 'speculate'"),
    ({**GOOD_FILL, "options": {"threshold": 1.5}}, "option 'threshold'"),
    ({**GOOD_FILL, "options": {"temperature": 0.5}}, "unknown option"),  # a request's own field
    ({**GOOD_FILL, "options": [1]}, "options"),
    ({**GOOD_FILL, "requests": [{"prefix": "a", "suffix": "b", "canvas_tokens": P.MAX_CANVAS_TOKENS + 1}]},
     "canvas_tokens"),
    ({"id": 1, "op": "hello", "version": "2"}, "version"),
])
def test_invalid_requests_raise_protocol_error(msg, fragment):
    with pytest.raises(P.ProtocolError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        P.check_request(msg)


def test_responses_are_checked_too():
    ok = {"id": 1, "ok": True, "results": [{"text": "x", "model_calls": 2, "tokens": 1, "confidence": 0.5,
                                           "timings": {}}]}
    assert P.check_response(ok) is ok
    assert P.check_response({"op": "progress", "state": "loading", "message": "m", "percentage": 5})
    for bad in ({"id": 1}, {"id": 1, "ok": False}, {"id": 1, "ok": True, "results": [{"text": 1}]},
                {"op": "progress", "state": "weird", "message": "m"}):
        with pytest.raises(P.ProtocolError):
            P.check_response(bad)


def test_result_conversion_round_trips():
    r = FillResult("x = 1", model_calls=3, tokens=4, confidence=0.75, timings={"model_ms": 12.5, "note": "skip"})
    wire = P.result_to_wire(r)
    assert wire["timings"] == {"model_ms": 12.5}  # only numbers travel
    back = P.result_from_wire(msgpack.unpackb(msgpack.packb(wire)))
    assert (back.text, back.model_calls, back.tokens, back.confidence) == ("x = 1", 3, 4, 0.75)


def test_error_response_never_carries_a_bad_id():
    assert P.error_response("nope", "bad")["id"] == -1
    assert P.error_response(5, "bad", P.TOO_LARGE) == {"id": 5, "ok": False, "error": "bad", "code": "too_large"}


def test_fill_requests_round_trip_with_single_line():
    from infill.types import FillRequest

    reqs = [FillRequest("a", "b", 3, "python", single_line=True), FillRequest("c", "d", 4),
            FillRequest("e", "f", 5, temperature=0.7), FillRequest("g", "h", 6, stop_bias=2.5)]
    msg = msgpack.unpackb(msgpack.packb(P.fill_message(7, reqs)))
    assert P.check_request(msg) and P.requests_from_message(msg) == reqs


def test_fill_options_travel_as_their_set_fields_only():
    opts = P.FillOptions(steps=8, threshold=0)
    msg = msgpack.unpackb(msgpack.packb(P.fill_message(1, [FillRequest("a", "b", 2)], options=opts)))
    assert msg["options"] == {"steps": 8, "threshold": 0}
    assert P.FillOptions.from_wire(P.check_request(msg)["options"]) == opts
    assert opts.sampler_overrides() == {"steps": 8, "threshold": None}  # 0: no threshold, the schedule alone
    assert P.fill_message(2, [FillRequest("a", "b", 2)])["options"] == {}
    assert P.FillOptions.from_wire({}) == P.FillOptions.from_wire(None) == P.FillOptions()


def test_fill_options_cannot_be_built_out_of_range():
    with pytest.raises(P.ProtocolError, match="'steps' must be an integer in \\[0, 512\\]"):
        P.FillOptions(steps=513)
    with pytest.raises(P.ProtocolError, match="'threshold'"):
        P.FillOptions(threshold=float("nan"))
    with pytest.raises(P.ProtocolError, match="'speculate'"):
        P.FillOptions(speculate=True)


def test_option_fields_are_sampler_fields():
    # each FillOptions field overrides the SamplerOptions field of the same name, but ``copy_prior``,
    # which turns the DenoiserOptions field of that name off
    import dataclasses

    from model.sampler import SamplerOptions
    from model.text_denoiser import DenoiserOptions

    names = {f.name for f in dataclasses.fields(P.FillOptions)} - {"copy_prior"}
    assert names <= {f.name for f in dataclasses.fields(SamplerOptions)}
    assert "copy_prior" in {f.name for f in dataclasses.fields(DenoiserOptions)}
    assert "copy_prior" not in P.FillOptions(copy_prior=False, steps=2).sampler_overrides()
