"""shim.store: entries written and read, listed and purged, and the directory judged."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from shim import store
from shim.entry import Entry
from shim.files import (
    temp_name,
    write_private,
)

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
    assert store.purge_all(str(tmp_path)) == (2, 1, 0)
    assert sorted(os.listdir(tmp_path)) == ["purged", "unrelated.txt"]  # (and its marker)
    assert store.purge_all(str(tmp_path / "missing")) == (0, 0, 0)


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


def test_purge_knows_every_temp_name_the_writer_makes(tmp_path: Path) -> None:
    """A writer killed between its temp file and os.replace leaves the temp file: purge
    must know it as ours, whatever the key file (shim.files names, shim.store recognises)."""
    files = store.KeyFiles(str(tmp_path), KEYS["a"])
    for path in (files.entry, files.served, files.ahead, files.lock):
        for _ in range(20):  # the random part varies
            assert store.is_ours(os.path.basename(temp_name(path)))


def test_purge_knows_a_fetchs_socket_and_nothing_like_it(tmp_path: Path) -> None:
    """A holder killed while it fetched leaves its socket (shim.share): purge removes it."""
    name = os.path.basename(store.KeyFiles(str(tmp_path), KEYS["a"]).socket)
    assert store.is_ours(name)
    assert name == KEYS["a"][:32] + ".sock"
    for other in (KEYS["a"][:31] + ".sock", KEYS["a"][:32].upper() + ".sock", name + "x"):
        assert not store.is_ours(other)
    assert not store.is_ours(KEYS["a"][:32] + ".lock")  # (a socket's length, not its suffix)


def test_a_temp_file_names_the_file_it_becomes_and_its_writer() -> None:
    assert store.temp_of(f".{KEYS['a']}.entry.4242.0123abcd.tmp") == (KEYS["a"] + ".entry", 4242)
    assert store.temp_of(f".{KEYS['a']}.served.7.ffffffff.tmp") == (KEYS["a"] + ".served", 7)


def test_only_the_temp_files_of_writers_that_are_gone_are_removed(tmp_path: Path) -> None:
    """A writer that is alive may still rename its temp file: it is left alone, and not
    disturbed (the look is signal 0, which sends nothing)."""
    import signal
    import subprocess
    import sys

    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    cache = tmp_path / "cache"
    cache.mkdir()
    try:
        writing = cache / f".{KEYS['a']}.entry.{alive.pid}.0123abcd.tmp"
        abandoned = cache / f".{KEYS['b']}.entry.{gone.pid}.0123abcd.tmp"
        for path in (writing, abandoned):
            path.write_bytes(b"half an entry")
        assert store.remove_abandoned_writes(str(cache)) == 1
        assert sorted(os.listdir(cache)) == [writing.name]
        with pytest.raises(subprocess.TimeoutExpired):  # not hung up on, or worse
            alive.wait(0.5)
    finally:
        alive.send_signal(signal.SIGKILL)
        alive.wait()


def test_an_entry_of_exactly_the_size_read_back_is_written_and_read(tmp_path: Path) -> None:
    from shim.entry import encode_entry
    from shim.files import MAX_READ

    credential = b"x" * MAX_READ
    for _ in range(3):  # (the header spells the length: settle it)
        big = Entry(2_000_000_000, 1_000, b"{}", credential)
        credential = credential[: len(credential) + MAX_READ - len(encode_entry(big))]
    big = Entry(2_000_000_000, 1_000, b"{}", credential)
    assert len(encode_entry(big)) == MAX_READ
    path = store.KeyFiles(str(tmp_path), KEYS["a"]).entry
    assert store.write_entry(path, big)
    read = store.read_entry(path)
    assert read is not None
    assert read.credential == credential
    one_more = Entry(2_000_000_000, 1_000, b"{}", credential + b"x")
    assert not store.write_entry(path, one_more)  # (it could not be read back whole)


def test_a_purged_entry_takes_the_temp_files_of_its_own_key_only(tmp_path: Path) -> None:
    """A purge stops the writes of the key it removes, whoever makes them (their rename
    fails), and leaves every other key's alone."""
    tmp_path = tmp_path / "cache"
    tmp_path.mkdir()
    mine = tmp_path / f".{KEYS['a']}.entry.{os.getpid()}.0123abcd.tmp"
    other = tmp_path / f".{KEYS['b']}.entry.{os.getpid()}.0123abcd.tmp"
    for path in (mine, other):
        path.write_bytes(b"half an entry")
    assert [found for found, _, _ in store.unfinished_writes(str(tmp_path), KEYS["a"])] == [
        str(mine)
    ]
    files = store.KeyFiles(str(tmp_path), KEYS["a"])
    store.write_entry(files.entry, entry())
    assert store.remove_entry(files, unfinished=True)
    assert sorted(os.listdir(tmp_path)) == [other.name]
    store.write_entry(files.entry, entry())
    mine.write_bytes(b"half an entry")
    assert store.remove_entry(files)  # (a heal: the entry only)
    assert sorted(os.listdir(tmp_path)) == sorted([other.name, mine.name])
