"""End to end: parallel calls share one backend run; a lock never blocks for ever."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from helpers import HANG_GUARD, Shim, shim_argv, sidecar


def test_a_herd_of_cold_calls_runs_the_backend_once(shim: Shim) -> None:
    with ThreadPoolExecutor(max_workers=24) as pool:
        results = list(pool.map(lambda _: shim.run("-c", "demo", FAKE_MODE="sleep:0.5"), range(24)))
    assert all(result.returncode == 0 for result in results)
    assert len({result.stdout for result in results}) == 1
    assert len(shim.calls()) == 1


def test_a_lock_held_by_a_killed_process_does_not_block(shim: Shim) -> None:
    holder = shim.popen("-c", "demo", FAKE_MODE="sleep:60")
    try:
        deadline = time.monotonic() + 30  # a hang guard, not a timing assertion
        while not shim.calls():  # the holder has the lock once its backend runs
            assert holder.poll() is None
            if time.monotonic() > deadline:
                pytest.fail("the first shim never started its backend")
            time.sleep(0.01)
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        # Were the lock still held, this would wait --timeout (an hour) and the run time out.
        result = shim.run("-c", "demo", "--timeout", "3600", timeout=30)
        assert result.returncode == 0
        assert len(shim.calls()) == 2
    finally:
        os.kill(int(shim.calls()[0]["pid"]), signal.SIGKILL)  # the orphaned sleeping backend


def test_a_cache_hit_takes_no_lock(shim: Shim) -> None:
    import fcntl

    shim.run("-c", "demo")
    (lock,) = shim.cache_dir.glob("*.lock")
    with lock.open("rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        result = shim.run("-c", "demo", "--timeout", "3600", timeout=30)
    assert result.returncode == 0
    assert len(shim.calls()) == 1


# --timeout bounds the whole call.
def test_timeout_bounds_lock_wait_and_backend_together(shim: Shim) -> None:
    import fcntl

    shim.run("-c", "demo")
    lock = sidecar(shim, ".lock")
    for path in shim.entries():
        path.unlink()
    with open(lock, "a+b") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another shim, stuck in its fetch
        started = time.monotonic()
        result = shim.run(
            "-c", "demo", "--timeout", "4", FAKE_MODE="sleep:60", timeout=HANG_GUARD, expect=124
        )
        took = time.monotonic() - started
    # Before: 4 s for the lock, then 4 s more for the backend.
    assert took < 6.5, f"the call took {took:.1f} s with --timeout 4"
    assert b"another shim held" in result.stderr


def test_ctrl_c_while_waiting_for_the_lock_is_exit_130_without_a_traceback(shim: Shim) -> None:
    """No backend runs yet (another shim holds the lock): Python's own KeyboardInterrupt,
    which the error boundary turns into 130 and nothing else."""
    holder = shim.popen("-c", "demo", FAKE_MODE="sleep:300")
    deadline = time.monotonic() + HANG_GUARD
    while not shim.calls():  # the holder's backend runs: it holds the lock
        assert time.monotonic() < deadline
        time.sleep(0.02)
    waiter = subprocess.Popen(
        [*shim_argv(), "-c", "demo"],
        env=shim.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        # As kubectl starts a plugin: SIGINT at its default. A shell's background job (a
        # campaign run with `&`) would pass it on ignored, and Python then keeps ignoring it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    wchan = Path(f"/proc/{waiter.pid}/wchan")
    # Between two tries of the lock: time.sleep is clock_nanosleep from Python 3.11 on,
    # select() before (its wait shows as poll_schedule_timeout).
    while not wchan.read_text().startswith(("hrtimer_nanosleep", "poll_schedule_timeout")):
        assert time.monotonic() < deadline, "the second call never waited for the lock"
        time.sleep(0.02)
    waiter.send_signal(signal.SIGINT)
    assert waiter.wait(HANG_GUARD) == 130
    assert waiter.stderr is not None
    assert waiter.stderr.read() == b""
    holder.send_signal(signal.SIGTERM)
    assert holder.wait(HANG_GUARD) == 143
    assert len(shim.calls()) == 1
