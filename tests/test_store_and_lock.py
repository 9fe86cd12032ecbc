"""The cache directory and the per-key lock, on a real filesystem."""

from __future__ import annotations

import contextlib
import os
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from shim import store
from shim.deadline import Deadline
from shim.entry import Entry
from shim.files import (
    open_append,
    read_private,
    replace_file,
    temp_name,
    touch_private,
    write_private,
)
from shim.lock import DEFAULT_IMPLEMENTATION, IMPLEMENTATIONS, KeyLock

KEYS = {name: name * 64 for name in "abc"}  # keys are 64 hex digits, as shim.keys makes them


def entry(expiry: int = 2_000_000_000) -> Entry:
    return Entry(expiry, 1_000, b'{"cluster":"c"}', b'{"kind":"ExecCredential"}\n')


def test_write_then_read(tmp_path: Path) -> None:
    store.ensure_cache_dir(str(tmp_path / "c"))
    path = store.KeyFiles(str(tmp_path / "c"), KEYS["a"]).entry
    store.write_entry(path, entry())
    read = store.read_entry(path)
    assert read is not None
    assert read.credential == entry().credential
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert os.listdir(tmp_path / "c") == [KEYS["a"] + ".entry"]  # no temp file left behind


def test_replace_keeps_readers_whole(tmp_path: Path) -> None:
    path = store.KeyFiles(str(tmp_path), KEYS["a"]).entry
    store.write_entry(path, entry(1))
    fd = os.open(path, os.O_RDONLY)  # a reader that opened the old file
    store.write_entry(path, entry(2))
    old = os.read(fd, 10_000)
    os.close(fd)
    assert old.split(b" ")[1] == b"1"
    read = store.read_entry(path)
    assert read is not None
    assert read.expiry == 2


def test_list_and_purge(tmp_path: Path) -> None:
    tmp_path = tmp_path / "cache"
    tmp_path.mkdir()
    for key in ("a", "b"):
        store.write_entry(store.KeyFiles(str(tmp_path), KEYS[key]).entry, entry())
    (tmp_path / f"{KEYS['c']}.entry").write_bytes(b"junk")
    (tmp_path / f"{KEYS['c']}.entry").chmod(0o600)
    (tmp_path / f"{KEYS['a']}.lock").touch()
    (tmp_path / "unrelated.txt").touch()
    listed = store.list_entries(str(tmp_path))
    assert [key for key, _ in listed] == [KEYS["a"], KEYS["b"], KEYS["c"]]
    assert listed[2][1] is None
    files = store.KeyFiles(str(tmp_path), KEYS["b"])
    write_private(files.served, b"1 2 3")
    assert store.remove_entry(files)
    assert not store.remove_entry(files)
    assert not Path(files.served).exists()
    assert store.purge_all(str(tmp_path)) == (2, 1)
    assert os.listdir(tmp_path) == ["unrelated.txt"]
    assert store.purge_all(str(tmp_path / "missing")) == (0, 0)


def test_dir_problems(tmp_path: Path) -> None:
    tmp_path = tmp_path / "cache"
    tmp_path.mkdir()
    assert store.cache_dir_problem(str(tmp_path / "missing")) is None
    (tmp_path / "file").touch()
    assert "not a directory" in str(store.cache_dir_problem(str(tmp_path / "file")))
    tmp_path.chmod(0o777)
    assert "writable by group or others" in str(store.cache_dir_problem(str(tmp_path)))
    tmp_path.chmod(0o700)
    assert store.cache_dir_problem(str(tmp_path)) is None


@contextlib.contextmanager
def locked(
    path: str, seconds: float, implementation: str = DEFAULT_IMPLEMENTATION
) -> Iterator[bool]:
    """Hold the lock at `path` (waiting up to `seconds` for it): whether it was taken."""
    lock = KeyLock(path, implementation)
    try:
        yield lock.acquire(Deadline(seconds))
    finally:
        lock.release()


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def implementation(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_the_lock_excludes_and_times_out(tmp_path: Path, implementation: str) -> None:
    path = str(tmp_path / "k.lock")
    with locked(path, 1, implementation) as held:
        assert held
        with locked(path, 0.05, implementation) as second:
            assert not second
    with locked(path, 0.05, implementation) as again:
        assert again


def test_both_implementations_exclude_each_other(tmp_path: Path) -> None:
    path = str(tmp_path / "k.lock")
    with locked(path, 1, "flock") as held:
        assert held
        with locked(path, 0.05, "portalocker") as other:
            assert not other


def test_a_waiter_gets_the_lock_when_it_is_released(tmp_path: Path, implementation: str) -> None:
    path = str(tmp_path / "k.lock")
    descriptors = sorted(os.listdir("/proc/self/fd"))
    order: list[str] = []
    first = KeyLock(path, implementation)
    assert first.acquire(Deadline(1))

    def wait() -> None:
        with locked(path, 30, implementation) as held:
            order.append(f"waiter {held}")

    thread = threading.Thread(target=wait)
    thread.start()
    time.sleep(0.3)  # (so that the waiter has found the lock held: it must wait, not give up)
    order.append("release")
    first.release()
    thread.join()
    assert order == ["release", "waiter True"]
    assert sorted(os.listdir("/proc/self/fd")) == descriptors  # each look closed its file


def test_a_purged_lock_file_is_not_held_twice(tmp_path: Path, implementation: str) -> None:
    # A purge unlinks the lock file under a holder: a newcomer must not lock the old inode.
    path = str(tmp_path / "k.lock")
    with locked(path, 1, implementation) as held:
        assert held
        os.unlink(path)
        with locked(path, 0.05, implementation) as newcomer:
            assert newcomer  # it locked the new file: the removed one is no longer the lock
        assert os.path.exists(path)


def test_refusing_what_is_not_a_regular_file_leaks_no_descriptor(tmp_path: Path) -> None:
    """A FIFO, a directory or a symlink where a cache file should be: refused, and every
    descriptor opened to find out is closed (a background refresh, a test, lives on); so are
    those of the reads and writes that work."""
    os.mkfifo(tmp_path / "fifo", 0o600)
    (tmp_path / "directory").mkdir()
    (tmp_path / "target").write_bytes(b"x")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    before = sorted(os.listdir("/proc/self/fd"))
    for name in ("fifo", "directory", "link"):
        path = str(tmp_path / name)
        assert store.read_entry(path) is None
        with contextlib.suppress(OSError):  # refused: ENXIO, EISDIR, ELOOP or NotRegular
            write_private(path, b"x")
        with contextlib.suppress(OSError), locked(path, 0):
            pass
    (tmp_path / "private").write_bytes(b"x")
    (tmp_path / "private").chmod(0o600)
    (tmp_path / "open").write_bytes(b"x")
    (tmp_path / "open").chmod(0o644)
    assert read_private(str(tmp_path / "private")) == b"x"
    assert read_private(str(tmp_path / "open")) is None  # others can read it: not ours to trust
    write_private(str(tmp_path / "private"), b"y")
    touch_private(str(tmp_path / "marker"))
    os.close(open_append(str(tmp_path / "log")))
    replace_file(str(tmp_path / "replaced"), b"z", 0o640, durable=True)
    assert (tmp_path / "replaced").read_bytes() == b"z"
    assert stat.S_IMODE((tmp_path / "replaced").stat().st_mode) == 0o640
    with pytest.raises(IsADirectoryError):  # the error itself, not one from cleaning up
        replace_file(str(tmp_path / "directory"), b"z")
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]
    assert sorted(os.listdir("/proc/self/fd")) == before


def test_purge_knows_every_temp_name_the_writer_makes(tmp_path: Path) -> None:
    """A writer killed between its temp file and os.replace leaves the temp file: purge
    must know it as ours, whatever the key file (shim.files names, shim.store recognises)."""
    files = store.KeyFiles(str(tmp_path), KEYS["a"])
    for path in (files.entry, files.served, files.ahead, files.lock):
        for _ in range(20):  # the random part varies
            assert store.is_ours(os.path.basename(temp_name(path)))


def test_a_lock_file_purged_right_after_it_was_locked_is_not_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """filelock #31 again, the other way round: a purge removes the file between our flock
    and our check. The lock we hold must be the file at the path, or anyone could take it."""
    path = str(tmp_path / "k.lock")
    flock_try, release = IMPLEMENTATIONS["flock"]
    purges = [path]

    def try_then_purged(file: IO[Any]) -> bool:
        locked = flock_try(file)
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


def test_a_waiter_sleeps_between_looks(tmp_path: Path, implementation: str) -> None:
    """Waiting for a held lock costs a little CPU time, not seconds of it: a bound
    on CPU, not on the clock (a spinning waiter would burn a core while kubectl waits)."""
    path = str(tmp_path / "k.lock")
    with locked(path, 1, implementation) as held:
        assert held
        started = time.process_time()
        with locked(path, 1.5, implementation) as waiter:
            assert not waiter
        assert time.process_time() - started < 0.2  # (spinning, even on a busy machine: 0.5+)


def test_metadata_that_cannot_be_read_is_empty_and_any_text_is_printable() -> None:
    from shim.meta import decode, printable

    assert decode(b"not json") == {}
    assert decode(b"[1]") == {}
    assert decode(b'{"cluster": "c"}') == {"cluster": "c"}
    assert printable("caf\udce9") == "caf\\xe9"  # a byte that was not UTF-8
    assert printable("\ud800") == "\\ud800"  # a surrogate no decoder made
