"""The ``infill/status`` notification's state and counters, and when one is due (no lsprotocol here).

Contract (shared with the editor clients): params ``{"state", "message", "served", "empty", "cut"}``;
state is one of ``STATES``; a notification goes out on every change of state or message at once,
and a change of the counters alone at most once per ``min_interval_s``.
"""

from __future__ import annotations

import time
from typing import Callable

STATES = ("loading", "ready", "busy", "cut", "restarting", "error")


def ready_message(health: dict) -> str:
    """"ready (float32, 2 threads)" from the worker's health answer (dtype and threads where it says them)."""
    calibration = health.get("calibration") or {}
    dtype = calibration.get("dtype") or health.get("dtype")
    threads = calibration.get("threads") or health.get("threads")
    details = [str(dtype)] if dtype else []
    if isinstance(threads, int) and threads > 0:
        details.append(f"{threads} thread" + ("s" if threads != 1 else ""))
    return f"ready ({', '.join(details)})" if details else "ready"


class StatusBoard:
    """What the last ``infill/status`` said and what it would say now."""

    def __init__(self, min_interval_s: float = 1.0, clock: Callable[[], float] = time.monotonic):
        self.min_interval_s, self.clock = min_interval_s, clock
        self.state, self.message = "loading", "starting the model worker"
        self.served = self.empty = self.cut = 0
        self._sent: dict | None = None
        self._sent_at = float("-inf")

    def set(self, state: str, message: str) -> None:
        if state not in STATES:
            raise ValueError(f"unknown status state {state!r}")
        self.state, self.message = state, message

    def count(self, served: int = 0, empty: int = 0, cut: int = 0) -> None:
        self.served += served
        self.empty += empty
        self.cut += cut

    def params(self) -> dict:
        return {"state": self.state, "message": self.message, "served": self.served, "empty": self.empty,
                "cut": self.cut}

    def due(self) -> dict | None:
        """The params to send now, or None: nothing changed, or only counters within the interval."""
        now, params = self.clock(), self.params()
        if params == self._sent:
            return None
        changed = self._sent is None or (params["state"], params["message"]) != (self._sent["state"], self._sent["message"])
        if not changed and now - self._sent_at < self.min_interval_s:
            return None
        self._sent, self._sent_at = params, now
        return params

    def refresh_in(self) -> float | None:
        """Seconds until held-back counters may be sent (None: nothing held back)."""
        if self._sent is None or self.params() == self._sent:
            return None
        return max(0.0, self._sent_at + self.min_interval_s - self.clock())
