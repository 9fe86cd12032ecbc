"""shim.lock: the per-key lock, in this platform's implementation (flock on POSIX,
msvcrt on Windows, where scripts/windows-test runs these too)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import IO, Any

import pytest
from helpers import locked, open_descriptors

from shim import lock
from shim.deadline import Deadline
from shim.lock import DEFAULT_IMPLEMENTATION, IMPLEMENTATIONS, KeyLock


def test_the_lock_excludes_and_times_out(tmp_path: Path) -> None:
    path = str(tmp_path / "k.lock")
    with locked(path, 1) as held:
        assert held
        with locked(path, 0.05) as second:
            assert not second
    with locked(path, 0.05) as again:
        assert again


def test_a_waiter_gets_the_lock_when_it_is_released(tmp_path: Path) -> None:
    path = str(tmp_path / "k.lock")
    descriptors = open_descriptors()
    order: list[str] = []
    first = KeyLock(path)
    assert first.acquire(Deadline(1))

    def wait() -> None:
        with locked(path, 30) as held:
            order.append(f"waiter {held}")

    thread = threading.Thread(target=wait)
    thread.start()
    time.sleep(0.3)  # (so that the waiter has found the lock held: it must wait, not give up)
    order.append("release")
    first.release()
    thread.join()
    assert order == ["release", "waiter True"]
    assert open_descriptors() == descriptors  # each look closed its file


def test_a_purged_lock_file_is_not_held_twice(tmp_path: Path) -> None:
    # A purge unlinks the lock file under a holder: a newcomer must not lock the old inode.
    path = str(tmp_path / "k.lock")
    with locked(path, 1) as held:
        assert held
        os.unlink(path)
        with locked(path, 0.05) as newcomer:
            assert newcomer  # it locked the new file: the removed one is no longer the lock
        assert os.path.exists(path)


def test_a_lock_file_purged_right_after_it_was_locked_is_not_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race of https://github.com/tox-dev/filelock/issues/31 the other way round: a
    purge removes the file between our flock and our check. The lock we hold must be the
    file at the path, or anyone could take it."""
    path = str(tmp_path / "k.lock")
    lock_try, release = IMPLEMENTATIONS[DEFAULT_IMPLEMENTATION]
    purges = [path]

    def try_then_purged(file: IO[Any]) -> bool:
        locked = lock_try(file)
        while purges:
            os.unlink(purges.pop())  # the fault: --purge, right after our flock
        return locked

    monkeypatch.setitem(IMPLEMENTATIONS, "purged", (try_then_purged, release))
    with locked(path, 1, "purged") as held:
        assert held
        assert purges == []  # the fault happened
        assert os.path.exists(path)
        with locked(path, 0) as other:
            assert not other  # the file at the path is the one we hold


def test_a_waiter_sleeps_between_looks(tmp_path: Path) -> None:
    """Waiting for a held lock costs a little CPU time, not seconds of it: a bound
    on CPU, not on the clock (a spinning waiter would burn a core while kubectl waits)."""
    path = str(tmp_path / "k.lock")
    with locked(path, 1) as held:
        assert held
        started = time.process_time()
        with locked(path, 1.5) as waiter:
            assert not waiter
        assert time.process_time() - started < 0.2  # (spinning, even on a busy machine: 0.5+)


class PausedWaiter:
    """A call waiting for the lock at `path`, stopped between its open of the lock file
    and its lock until `go()`: where a purge, or a holder removing the file, can come."""

    def __init__(self, path: str, monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
        self._opened, self._go = threading.Event(), threading.Event()
        original_open = lock._open

        def slow_open(name: str) -> object:
            file = original_open(name)
            if not self._opened.is_set():
                self._opened.set()
                self._go.wait(10)  # the fault: descheduled between its open and its lock
            return file

        monkeypatch.setattr(lock, "_open", slow_open)
        self.lock = KeyLock(path)
        self._result: list[bool] = []
        self._thread = threading.Thread(
            target=lambda: self._result.append(self.lock.acquire(Deadline(seconds)))
        )
        self._thread.start()
        assert self._opened.wait(10)

    def go(self) -> list[bool]:
        """Let it go on: whether it took the lock, once it is done."""
        self._go.set()
        self._thread.join(10)
        return self._result


def test_a_purged_lock_file_never_gives_two_holders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race of https://github.com/tox-dev/filelock/issues/31: B opened the lock file,
    a purge removed it, C locked a new file at the path, A released the old one. B must
    not take the lock it now holds alone."""
    path = str(tmp_path / "k.lock")
    descriptors = open_descriptors()
    holder_a = KeyLock(path)
    assert holder_a.acquire(Deadline(0))
    waiter_b = PausedWaiter(path, monkeypatch, 1.0)
    os.unlink(path)  # --purge
    holder_c = KeyLock(path)
    assert holder_c.acquire(Deadline(0))
    holder_a.release()
    assert waiter_b.go() == [False], "B took a lock that C holds"
    holder_c.release()
    assert open_descriptors() == descriptors  # B closed the file it let go


def test_a_lock_let_go_with_remove_takes_its_file_along(tmp_path: Path) -> None:
    path = str(tmp_path / "k.lock")
    first = KeyLock(path)
    assert first.acquire(Deadline(0))
    first.release(remove=True)
    assert not os.path.exists(path)
    first.release(remove=True)  # (not held: nothing to do)


def test_a_lock_let_go_with_remove_leaves_a_newer_file_at_its_path(tmp_path: Path) -> None:
    """A purge removed our file and another call locked a new one there: that one is
    not ours to remove (a third call would lock a third file while it is held)."""
    path = str(tmp_path / "k.lock")
    first = KeyLock(path)
    assert first.acquire(Deadline(0))
    os.unlink(path)  # --purge
    with locked(path, 0) as second:
        assert second
        first.release(remove=True)
        assert os.path.exists(path)
        with locked(path, 0) as third:
            assert not third


def test_a_waiter_on_a_removed_lock_file_locks_the_new_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The holder removes the file while a waiter has it open: the waiter must take the
    lock at the path, not the removed file's, so that a newcomer is kept out."""
    path = str(tmp_path / "k.lock")
    holder = KeyLock(path)
    assert holder.acquire(Deadline(0))
    waiter = PausedWaiter(path, monkeypatch, 5)
    holder.release(remove=True)
    assert waiter.go() == [True]
    with locked(path, 0) as newcomer:
        assert not newcomer  # the waiter holds the file at the path
    waiter.lock.release()


def test_a_lock_let_go_with_remove_spares_a_file_made_after_it_let_go(tmp_path: Path) -> None:
    """Its file is removed while it is held, never after: by then a newcomer may have
    made and locked a new one at the path, which must stay the lock."""
    path = str(tmp_path / "k.lock")
    first, newcomer = KeyLock(path), KeyLock(path)
    assert first.acquire(Deadline(0))
    let_go = first._release

    def let_go_then_a_newcomer_locks(file: IO[Any]) -> None:
        let_go(file)
        assert newcomer.acquire(Deadline(0))  # (a new file: the old one is gone)

    first._release = let_go_then_a_newcomer_locks
    first.release(remove=True)
    assert os.path.exists(path)
    with locked(path, 0) as third:
        assert not third
    newcomer.release()
