"""End-to-end: the ``infill/status`` notification (notes: the contract shared with the editor clients).

The real server with the real starter model says loading, then ready (with the dtype and threads the
worker reports); a request the latency budget cuts (a stand-in worker that never answers, a 50 ms
budget) turns the state to "cut" and counts it, in ``infill/status`` and in ``infill/stats``.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from pytest_lsp import LanguageClient

from lsp_util import stats
from tests.fuzz.test_resource_bounds import inline, session

pytestmark = pytest.mark.slow

KEYS = {"state", "message", "served", "empty", "cut"}


async def until(predicate, what: str, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def test_loading_then_ready_with_what_the_worker_serves_on(nvim: LanguageClient):
    await until(lambda: any(s["state"] == "ready" for s in nvim.statuses), "a ready status")
    states = [s["state"] for s in nvim.statuses]
    assert states[0] == "loading" and "ready" in states, nvim.statuses
    assert set(states[:states.index("ready")]) == {"loading"}, nvim.statuses
    ready = next(s for s in nvim.statuses if s["state"] == "ready")
    assert set(ready) == KEYS and ready["message"].startswith("ready (") and "thread" in ready["message"], ready
    assert any("%" in s["message"] for s in nvim.statuses if s["state"] == "loading"), nvim.statuses
    assert (ready["served"], ready["empty"], ready["cut"]) == (0, 0, 0)
    s = await stats(nvim)
    assert (s["status"], s["served"], s["empty"], s["cut"]) == ("ready", 0, 0, 0)


async def test_a_request_cut_by_the_latency_budget_reports_cut(tmp_path):
    fz, worker = session(tmp_path, answer=None)  # a model that never answers
    fz.config.settings["latencyBudgetMs"] = 50  # the smallest budget infill.latencyBudgetMs takes
    await fz.start()
    try:
        await fz.initialize()
        await until(lambda: fz.statuses and fz.statuses[-1]["state"] == "ready", "a ready status")
        doc = await fz.act_open_text('name = "wor"\nprint(name)\n', "python")
        reply, _ = await inline(fz, doc, 0, 11)
        assert reply.get("result") is None and "error" not in reply
        await until(lambda: fz.statuses[-1]["state"] == "cut", "a cut status")
        cut = fz.statuses[-1]
        assert cut["cut"] >= 1 and "50 ms latency budget" in cut["message"], fz.statuses
        states = [s["state"] for s in fz.statuses]
        assert states.index("busy") < states.index("cut"), states
        s = await fz.stats()
        assert s["status"] == "cut" and s["cut"] >= 1 and s["empty"] >= 1 and s["served"] == 0, s
        assert worker.fills and worker.fills[0]["deadline_ms"] <= 50, "the model was not asked within the budget"
    finally:
        await fz.shutdown()
        worker.close()
