"""shim.deadline: one deadline for every wait of a call."""

from __future__ import annotations

import time

from shim.deadline import Deadline


def test_a_deadline_counts_down_to_zero_and_stays_there() -> None:
    deadline = Deadline(0.2)
    assert deadline.seconds == 0.2
    assert 0 < deadline.left() <= 0.2
    assert not deadline.passed()
    time.sleep(0.25)  # (a bound from below: sleep never returns early)
    assert deadline.passed()
    assert deadline.left() == 0.0


def test_a_share_is_part_of_what_is_left_from_now() -> None:
    deadline = Deadline(100)
    half = deadline.share(0.5)
    assert 49 < half.seconds <= 50
    assert half.at <= deadline.at
    assert Deadline(0).share(0.5).left() == 0.0
    assert Deadline(0).passed()
