"""The copy prior: the n-gram index over context token ids, its mixing weight, the sampler hook,
and the ``related`` texts a fill request carries over the worker protocol."""

from __future__ import annotations

import pytest

from infill.types import FillRequest
from model import protocol as P


# ---------------------------------------------------------------- protocol: ``related``

def test_protocol_carries_related_texts():
    req = FillRequest("def f(", "):\n", 4, "python", related=("def g(x):\n    return x\n", "import os\n"))
    msg = P.fill_message(3, [req, FillRequest("a", "b", 2)])
    assert P.check_request(msg) is msg
    assert "related" not in msg["requests"][1]  # none: the field stays off the wire
    assert P.requests_from_message(msg) == [req, FillRequest("a", "b", 2)]


def test_protocol_refuses_oversize_related_with_a_clear_error():
    big = ("x" * (P.MAX_RELATED_CHARS // 2 + 1),) * 2
    with pytest.raises(P.ProtocolError, match="characters in all; at most"):
        P.fill_message(1, [FillRequest("a", "b", 2, related=big)])
    msg = {"id": 1, "op": "fill", "requests": [{"prefix": "a", "suffix": "b", "canvas_tokens": 2,
                                                 "related": list(big)}]}
    with pytest.raises(P.ProtocolError, match=r"requests\[0\]\.related has \d+ characters"):
        P.check_request(msg)
    many = {**msg, "requests": [{**msg["requests"][0], "related": ["x"] * (P.MAX_RELATED_TEXTS + 1)}]}
    with pytest.raises(P.ProtocolError, match="texts; at most"):
        P.check_request(many)
    for bad in ("text", [1, 2], {"a": "b"}):
        with pytest.raises(P.ProtocolError, match="list of strings"):
            P.check_request({**msg, "requests": [{**msg["requests"][0], "related": bad}]})
