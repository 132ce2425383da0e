"""Resource bounds of the real ``infill serve``, observed at the wire: the document window sent to the
model is capped, every request has a time budget (a model that never answers is cancelled), and
memory stays flat over thousands of requests.

The server talks to a recording stand-in worker (``RecordingWorker``, speaking model/protocol.py on
a unix socket) through its ``infill.workerAddress`` setting, so the test sees exactly what the
server sends to the model, and can make the model hang.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time

import pytest

from model import protocol as P
from tests.fuzz.lsp_fuzzer import Doc, FuzzConfig, Fuzzer, rss_kb

pytestmark = pytest.mark.slow

CAP = 256  # infill.maxContextChars (its smallest allowed value)
BUDGET_MS = 800


class RecordingWorker:
    """A model worker stand-in: records every fill and cancel; answers with fixed text or never."""

    def __init__(self, path: str, answer: str | None = "abc"):
        self.answer = answer  # None: never answer a fill (a hung model)
        self.fills: list[dict] = []
        self.cancels: list[int] = []
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        os.chmod(path, 0o600)
        self.listener.listen(4)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            while True:
                msg = P.check_request(P.read_frame(conn))
                if msg["op"] in ("hello", "health"):
                    P.write_frame(conn, {"id": msg["id"], "ok": True, "state": "ready", "message": "recording worker",
                                         "version": P.PROTOCOL_VERSION})
                elif msg["op"] == "cancel":
                    self.cancels.append(msg["target"])
                    P.write_frame(conn, {"id": msg["id"], "ok": True, "cancelled": True})
                else:
                    self.fills.append(msg)
                    if self.answer is not None:
                        results = [{"text": self.answer, "model_calls": 1, "tokens": 3, "confidence": 1.0, "timings": {}}
                                   for _ in msg["requests"]]
                        P.write_frame(conn, {"id": msg["id"], "ok": True, "results": results})
        except (OSError, P.ProtocolError):
            conn.close()

    def close(self) -> None:
        self.listener.close()


def session(tmp_path, answer: str | None) -> tuple[Fuzzer, RecordingWorker]:
    path = str(tmp_path / "w.sock")
    worker = RecordingWorker(path, answer)
    settings = {"workerAddress": f"unix:{path}", "maxContextChars": CAP, "latencyBudgetMs": BUDGET_MS,
                "debounceMs": 0, "maxTokens": 8, "cacheSize": 16}
    return Fuzzer(FuzzConfig(settings=settings, ready_timeout_s=30, stderr_path=str(tmp_path / "server.log"))), worker


async def inline(fz: Fuzzer, doc: Doc, line: int, ch: int, timeout: float = 30) -> tuple[dict, float]:
    t0 = time.monotonic()
    p = await fz.request("textDocument/inlineCompletion", {"textDocument": {"uri": doc.uri},
                         "position": {"line": line, "character": ch}, "context": {"triggerKind": 1}}, doc, extra=(line, ch))
    reply = await asyncio.wait_for(p.future, timeout)
    fz.judge(p, reply)
    return reply, time.monotonic() - t0


async def test_text_sent_to_the_model_is_capped_for_a_10mb_document(tmp_path):
    fz, worker = session(tmp_path, answer="abc")
    await fz.start()
    try:
        await fz.initialize()
        unit = "def f(x):\n    return x + 1\n\n\n"
        doc = await fz.act_open_text(unit * (10 * 1024 * 1024 // len(unit)), "python")
        middle = doc.lines().line_count() // 2
        middle -= middle % 4  # a "def" line
        reply, elapsed = await inline(fz, doc, middle + 1, 16)  # the end of "    return x + 1"
        assert "result" in reply and elapsed < 30
        assert worker.fills, "the server never asked the model"
        for fill in worker.fills:
            assert fill["deadline_ms"] is not None and fill["deadline_ms"] <= BUDGET_MS
            for r in fill["requests"]:
                assert len(r["prefix"]) <= CAP and len(r["suffix"]) <= CAP, (len(r["prefix"]), len(r["suffix"]))
        # infill.maxTokens sizes the completion's canvases (self-correction re-fills a candidate as a
        # replacement, which infill.canvas sizes from the candidate instead)
        assert all(r["canvas_tokens"] <= 8 for r in worker.fills[0]["requests"]), worker.fills[0]
        assert fz.report.violations == []
    finally:
        await fz.shutdown()
        worker.close()


async def test_a_model_that_never_answers_is_cut_off_at_the_budget(tmp_path):
    fz, worker = session(tmp_path, answer=None)
    await fz.start()
    try:
        await fz.initialize()
        doc = await fz.act_open_text('name = "wor"\nprint(name)\n', "python")
        for line, ch in ((0, 11), (1, 11)):  # holes with only a quote or the line's end after them
            reply, elapsed = await inline(fz, doc, line, ch)
            assert reply.get("result") is None and "error" not in reply
            assert elapsed < BUDGET_MS / 1000 + 2.0, elapsed  # the budget, plus slack for a busy machine
        for _ in range(50):
            if len(worker.cancels) >= len(worker.fills) >= 2:
                break
            await asyncio.sleep(0.05)
        # the model was told to stop each piece of work it was given
        assert len(worker.fills) >= 2 and sorted(worker.cancels) == sorted(f["id"] for f in worker.fills)
        assert (await fz.stats())["inflight"] == 0
    finally:
        await fz.shutdown()
        worker.close()


async def test_memory_stays_flat_over_thousands_of_requests(tmp_path):
    fz, worker = session(tmp_path, answer='"')
    await fz.start()
    try:
        await fz.initialize()
        samples = []
        n = 2000
        for i in range(n):
            if i % 200 == 0:
                if i:
                    await fz.close(doc.uri)
                doc = await fz.act_open_text(f'greeting = "hello {i}"\nname = "wor"\nprint(greeting + name)\n',
                                             "python")
            # type a character in the string, then ask there: a new context each time (no cache hit)
            text = doc.text
            ch = 8 + (i % 200) // 2
            if i % 2 == 0:
                lines = text.split("\n")
                lines[1] = lines[1][:ch] + "x" + lines[1][ch:]
                doc.set("\n".join(lines), doc.version + 1)
                await fz.notify("textDocument/didChange", {"textDocument": {"uri": doc.uri, "version": doc.version},
                                "contentChanges": [{"range": {"start": {"line": 1, "character": ch},
                                                              "end": {"line": 1, "character": ch}}, "text": "x"}]})
            await inline(fz, doc, 1, ch + 1)
            if i % 250 == 0 or i == n - 1:
                samples.append(rss_kb(fz.proc.pid))
        stats = await fz.stats()
        print(f"\nserver RSS KiB over {n} requests: {samples}; stats {stats}")
        assert stats["engine_calls"] >= n // 2, stats  # the requests really reached the engine
        assert fz.report.violations == []
        warm = samples[1]  # after the first 250 requests: imports, caches and pools are warm
        assert max(samples[1:]) - warm < 40 * 1024, samples
    finally:
        await fz.shutdown()
        worker.close()
