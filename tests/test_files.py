"""shim.files: what is not a regular file of ours is refused, with no descriptor left open."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

import pytest
from helpers import locked, open_descriptors

from shim import store
from shim.files import (
    open_append,
    read_private,
    replace_file,
    touch_private,
    write_private,
)


def test_refusing_what_is_not_a_regular_file_leaks_no_descriptor(tmp_path: Path) -> None:
    """A FIFO, a directory or a symlink where a cache file should be: refused, and every
    descriptor opened to find out is closed (a background refresh, a test, lives on); so are
    those of the reads and writes that work."""
    os.mkfifo(tmp_path / "fifo", 0o600)
    (tmp_path / "directory").mkdir()
    (tmp_path / "target").write_bytes(b"x")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    before = open_descriptors()
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
    assert open_descriptors() == before


def test_files_made_here_are_0600_even_with_no_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        write_private(str(tmp_path / "written"), b"x")
        touch_private(str(tmp_path / "marker"))
        os.close(open_append(str(tmp_path / "log")))
        replace_file(str(tmp_path / "replaced"), b"z")
    finally:
        os.umask(old)
    for name in ("written", "marker", "log", "replaced"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name
