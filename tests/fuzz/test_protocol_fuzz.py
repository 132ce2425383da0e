"""CI-sized protocol fuzz of the real ``infill serve`` with the real starter model (>= 1,000 messages).

Seeded, bounded in count and time; the invariants are checked after every step by the fuzzer
(``lsp_fuzzer.py``): the server answers, returned edits lie inside the version they were computed
for and apply to the expected text, stale edits are never applied, a killed worker is restarted
and serves the next request, and the user is told once. The long run is ``benchmarks/fuzz.py``.
"""

from __future__ import annotations

import pytest

from tests.fuzz.lsp_fuzzer import FuzzConfig, Lines, apply_utf16, run_fuzz, split_lines, units

pytestmark = pytest.mark.slow

MESSAGES = 1200


def test_fuzzed_session_has_no_crash_and_no_invariant_violation(tmp_path):
    log = tmp_path / "server.log"
    report = run_fuzz(FuzzConfig(messages=MESSAGES, seed=20261125, time_limit_s=170, worker_kills=2, huge_docs=1,
                                 rss_every=100, stderr_path=str(log)))
    print("\n" + report.summary())
    assert report.crashes == 0, report.summary()
    assert report.violations == [], report.summary()
    assert report.handler_exceptions == [], report.summary()
    assert report.sent >= 1000, f"the time limit cut the run short: {report.summary()}"
    # the run exercised what it claims to
    assert report.edits_checked >= 10 and report.accepted >= 1
    assert report.errors.get(-32602, 0) >= 1  # wrong param types answered with InvalidParams
    assert report.kinds.get("framing", 0) >= 30 and report.huge_opened == 1
    assert report.parse_errors >= 5  # unparseable bodies answered with ParseError (checked one by one)
    # crash recovery: every kill was followed by a restart that served the next request; told once
    assert report.worker_kills == 2 and report.recoveries == 2 and report.worker_messages == 1
    # memory: after the documents are closed the server is back near where it started
    rss = [kb for _, kb in report.rss_kb]
    assert max(rss) < 1024 * 1024, rss  # never above 1 GiB, a 10 MB document included
    assert rss[-1] - rss[0] < 200 * 1024, rss


def test_position_helpers_follow_the_lsp_spec():
    """The fuzzer's own UTF-16 arithmetic (independent of infill.positions) on the awkward cases."""
    text = "a😀b\r\nc\rd\n\ud800e"
    lines = Lines(text)
    assert split_lines(text) == ["a😀b", "c", "d", "\ud800e"] and lines.line_count() == 4
    assert units("a😀b") == 4 and units("\ud800") == 1
    assert lines.offset(0, 3) == 2 and lines.offset(0, 2) is None  # inside the surrogate pair
    assert lines.offset(0, 5) is None and lines.offset(4, 0) is None  # past the line / the document
    assert lines.offset(1, 1) == 6 and lines.offset(3, 1) == 10
    assert lines.position(10) == (3, 1) and lines.position(2) == (0, 3)
    rng = {"start": {"line": 0, "character": 3}, "end": {"line": 1, "character": 1}}
    assert apply_utf16(text, rng, "X") == "a😀X\rd\n\ud800e"
