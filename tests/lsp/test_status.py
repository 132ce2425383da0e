"""The ``infill/status`` board (pure): states, counters, and when a notification is due."""

from __future__ import annotations

import pytest

from lsp_server.status import StatusBoard, ready_message


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_state_change_is_due_at_once_and_nothing_twice():
    board = StatusBoard(clock=Clock())
    assert board.due() == {"state": "loading", "message": "starting the model worker", "served": 0, "empty": 0,
                           "cut": 0}
    assert board.due() is None
    board.set("ready", "ready (float32, 2 threads)")
    assert board.due()["state"] == "ready"
    board.set("busy", "computing a suggestion")
    assert board.due()["state"] == "busy"  # state changes are not rate-limited
    board.set("ready", "ready (float32, 2 threads)")
    assert board.due()["state"] == "ready" and board.due() is None


def test_counters_alone_are_refreshed_at_most_once_per_interval():
    clock = Clock()
    board = StatusBoard(min_interval_s=1.0, clock=clock)
    board.set("ready", "ready")
    board.due()
    board.count(served=1)
    assert board.due() is None and board.refresh_in() == pytest.approx(1.0)
    clock.now += 0.4
    board.count(empty=1)
    assert board.due() is None and board.refresh_in() == pytest.approx(0.6)
    clock.now += 0.6
    assert board.due() == {"state": "ready", "message": "ready", "served": 1, "empty": 1, "cut": 0}
    assert board.refresh_in() is None
    board.count(cut=1)
    board.set("cut", "last answer cut by the 50 ms latency budget")
    assert board.due()["cut"] == 1  # with a state change the counters go at once


def test_unknown_states_are_refused():
    with pytest.raises(ValueError):
        StatusBoard().set("sleeping", "zz")


def test_ready_message_names_dtype_and_threads_the_worker_reports():
    assert ready_message({"dtype": "float32", "calibration": {"dtype": "bfloat16", "threads": 2}}) == \
        "ready (bfloat16, 2 threads)"
    assert ready_message({"dtype": "float32"}) == "ready (float32)"
    assert ready_message({"calibration": {"threads": 1}}) == "ready (1 thread)"
    assert ready_message({"state": "ready"}) == "ready"
