"""One deadline for every wait of a call: the lock, the backend and the token check.

`--timeout` bounds the whole call, so each step gets what the steps before it left.
"""

from __future__ import annotations

import time


class Deadline:
    """The monotonic time by which something must be done, `seconds` from its making."""

    __slots__ = ("at", "seconds", "setting")

    def __init__(self, seconds: float, setting: str = "--timeout") -> None:
        self.seconds = seconds  # as given: for messages ("--timeout 5 s")
        self.setting = setting  # the option that set it, for messages
        self.at = time.monotonic() + seconds

    def left(self) -> float:
        """Seconds until the deadline; 0 once it has passed."""
        return max(0.0, self.at - time.monotonic())

    def passed(self) -> bool:
        """Whether the deadline has come."""
        return time.monotonic() >= self.at

    def share(self, fraction: float) -> Deadline:
        """A deadline `fraction` of the time left from now: a step that must leave room."""
        return Deadline(self.left() * fraction, self.setting)

    def earlier(self, other: Deadline) -> Deadline:
        """Whichever of the two comes first."""
        return other if other.at < self.at else self
