"""End to end: parallel calls share one backend run; a lock never blocks for ever."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from helpers import HANG_GUARD, Shim, age, needs_proc, queued_on, shim_argv, sidecar


def test_a_herd_of_cold_calls_runs_the_backend_once(shim: Shim) -> None:
    with ThreadPoolExecutor(max_workers=24) as pool:
        results = list(pool.map(lambda _: shim.run("-c", "demo", FAKE_MODE="sleep:0.5"), range(24)))
    assert all(result.returncode == 0 for result in results)
    assert len({result.stdout for result in results}) == 1
    assert len(shim.calls()) == 1


# Those who waited get the holder's outcome: one backend run, whatever it does.
def herd(
    shim: Shim, calls: int, *args: str, **env: str
) -> list[subprocess.CompletedProcess[bytes]]:
    """`calls` parallel shims; the backend (the first one's) answers only once all the
    others are queued on its holder's socket, so that the sharing is certain, not timed."""
    gate = shim.bin.parent / "gate"
    with ThreadPoolExecutor(max_workers=calls) as pool:
        futures = [
            pool.submit(
                shim.run, "-c", "demo", *args, expect=None, env={**env, "FAKE_GATE": str(gate)}
            )
            for _ in range(calls)
        ]
        deadline = time.monotonic() + HANG_GUARD
        while not (
            (sockets := list(shim.cache_dir.glob("*.sock"))) and queued_on(sockets[0]) == calls - 1
        ):
            assert time.monotonic() < deadline, "the callers never all queued on the holder"
            time.sleep(0.02)
        gate.touch()
        return [future.result() for future in futures]


@pytest.mark.parametrize(
    ("mode", "code"), [("fail", 3), ("garbage", 0), ("exit:0", 0), ("noexpiry", 0)]
)
def test_callers_who_waited_get_the_holders_outcome_not_a_run_each(
    shim: Shim, mode: str, code: int
) -> None:
    results = herd(shim, 8, FAKE_MODE=mode)
    assert len(shim.calls()) == 1
    assert {result.returncode for result in results} == {code}
    # the one credential, the output kubectl decides about, or nothing
    assert len({result.stdout for result in results}) == 1
    if mode != "noexpiry":  # the backend's stderr, the error and its hint, as the holder said
        assert len({result.stderr for result in results}) == 1
    assert not list(shim.cache_dir.glob("*.sock"))  # nothing of the outcome stays behind


def test_a_failure_shared_with_those_who_waited_is_not_kept_for_later_calls(shim: Shim) -> None:
    herd(shim, 4, FAKE_MODE="fail")
    shim.run("-c", "demo", FAKE_MODE="fail", expect=3)
    assert len(shim.calls()) == 2  # a later call runs the backend again
    shim.run("-c", "demo")
    assert len(shim.calls()) == 3


def test_callers_in_the_refresh_stage_share_one_failed_run_and_serve_the_valid_token(
    shim: Shim,
) -> None:
    first = shim.run("-c", "demo").stdout
    age(shim, 840 - 49)
    results = herd(shim, 8, FAKE_MODE="fail")
    assert len(shim.calls()) == 2
    assert all(result.returncode == 0 and result.stdout == first for result in results)
    assert all(b"serving the cached credential" in result.stderr for result in results)


def test_a_waiter_whose_holder_is_killed_takes_the_lock_and_fetches(shim: Shim) -> None:
    gate = shim.bin.parent / "gate"
    holder = shim.popen("-c", "demo", FAKE_GATE=str(gate))
    deadline = time.monotonic() + HANG_GUARD
    while not list(shim.cache_dir.glob("*.sock")):
        assert time.monotonic() < deadline, "the holder never listened"
        time.sleep(0.02)
    (socket,) = shim.cache_dir.glob("*.sock")
    waiter = shim.popen("-c", "demo")
    # The holder's backend must have started: a holder killed before (a loaded machine)
    # leaves one backend call, not two.
    while queued_on(socket) != 1 or not shim.calls():
        assert time.monotonic() < deadline, "the waiter never queued, or no backend ran"
        time.sleep(0.02)
    holder.kill()
    holder.wait()
    out, err = waiter.communicate(timeout=HANG_GUARD)
    gate.touch()  # (the killed holder's backend, orphaned, may end now)
    assert waiter.returncode == 0, err.decode()
    assert b'"token"' in out
    assert len(shim.calls()) == 2


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
    finally:  # the sleeping backend, unless the watchdog has ended it already
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(shim.calls()[0]["pid"]), signal.SIGKILL)


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
    needs_proc()
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
