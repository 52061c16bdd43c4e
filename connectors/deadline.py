"""The deadline of one service request: every upstream call and retry it makes spends from the same budget."""

from __future__ import annotations

import time


class Deadline:
    """The time left for one service request, shared by every upstream call it makes."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started_at = time.monotonic()
        self.expires_at = self.started_at + seconds

    def elapsed(self) -> float:
        """Seconds since the request began, for messages that report the time actually waited."""
        return time.monotonic() - self.started_at

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.expires_at - time.monotonic())
