"""shim.yamlfile: the files of an edit, under kubectl's lock, written all or nothing."""

from __future__ import annotations

import os
import resource
import signal
import stat
import threading
from pathlib import Path

import pytest

from shim import yamlfile
from shim.errors import ShimError


def test_the_lock_is_kubectls_and_is_gone_after(tmp_path: Path) -> None:
    config = tmp_path / "config"
    with yamlfile.kubectl_locks([str(config)]):
        lock = tmp_path / "config.lock"
        assert lock.exists()
        with pytest.raises(FileExistsError):  # as kubectl's own O_EXCL open finds it
            os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        assert stat.S_IMODE(lock.stat().st_mode) == 0  # as client-go makes it
    assert not lock.exists()


def test_a_file_that_cannot_be_read_is_an_error_that_names_it(tmp_path: Path) -> None:
    with pytest.raises(ShimError) as error:
        yamlfile.read(str(tmp_path))
    assert error.value.message == f"{tmp_path}: cannot read: Is a directory; nothing was changed"


def test_a_lock_held_a_moment_is_waited_for(tmp_path: Path) -> None:
    lock = tmp_path / "config.lock"
    lock.touch()
    threading.Timer(0.3, lock.unlink).start()
    with yamlfile.kubectl_locks([str(tmp_path / "config")]):
        assert lock.exists()  # ours now


def test_a_lock_that_stays_is_an_error_that_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(yamlfile, "LOCK_WAIT", 0.2)
    files = tmp_path / "files"
    files.mkdir()
    (files / "b.lock").touch()
    paths = [str(files / "a"), str(files / "b")]
    with pytest.raises(ShimError) as error, yamlfile.kubectl_locks(paths):
        pytest.fail("entered without the lock")
    assert f"{files}/b.lock has been there" in error.value.message
    assert f"remove {files}/b.lock" in error.value.hint
    assert sorted(path.name for path in files.iterdir()) == ["b.lock"]  # a's is released


def test_commit_writes_keeps_the_mode_and_one_backup_of_the_first_state(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_bytes(b"one")
    path.chmod(0o640)
    yamlfile.commit([yamlfile.Write(str(path), b"one", b"two")], backup=True)
    yamlfile.commit([yamlfile.Write(str(path), b"two", b"three")], backup=True)
    assert path.read_bytes() == b"three"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    backup = tmp_path / ("config" + yamlfile.BACKUP_SUFFIX)
    assert backup.read_bytes() == b"one"
    assert stat.S_IMODE(backup.stat().st_mode) == 0o640


def test_a_symlink_is_followed_and_stays_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "real"
    target.write_bytes(b"one")
    link = tmp_path / "link"
    link.symlink_to(target)
    yamlfile.commit([yamlfile.Write(str(link), b"one", b"two")], backup=False)
    assert link.is_symlink()
    assert target.read_bytes() == b"two"


def test_the_owner_and_group_are_kept(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to give the file to another user")
    path = tmp_path / "config"
    path.write_bytes(b"one")
    os.chown(path, 65534, 65534)
    yamlfile.commit([yamlfile.Write(str(path), b"one", b"two")], backup=True)
    for written in (path, tmp_path / ("config" + yamlfile.BACKUP_SUFFIX)):
        assert (written.stat().st_uid, written.stat().st_gid) == (65534, 65534)


def test_a_file_kubectl_could_not_write_is_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.write_bytes(b"one")
    second.write_bytes(b"one")
    second.chmod(0o444)
    writes = [
        yamlfile.Write(str(first), b"one", b"two"),
        yamlfile.Write(str(second), b"one", b"two"),
    ]
    if os.geteuid() == 0:  # root may write it, and kubectl as root does: so does the edit
        yamlfile.commit(writes, backup=False)
        assert second.read_bytes() == b"two"
        assert stat.S_IMODE(second.stat().st_mode) == 0o444
        return
    with pytest.raises(ShimError, match="second is read-only"):
        yamlfile.commit(writes, backup=False)
    assert first.read_bytes() == b"one"


def test_a_failed_write_puts_the_files_written_before_it_back(tmp_path: Path) -> None:
    files = tmp_path / "files"
    files.mkdir()
    first, second = files / "first", files / "second"
    first.write_bytes(b"one")
    second.write_bytes(b"one")
    writes = [
        yamlfile.Write(str(first), b"one", b"two"),
        yamlfile.Write(str(second), b"one", b"x" * 100_000),
    ]
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, hard))  # a real EFBIG, the 2nd write
    try:
        with pytest.raises(ShimError) as error:
            yamlfile.commit(writes, backup=True)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert error.value.message == f"{second}: cannot write: File too large; nothing was changed"
    assert (first.read_bytes(), second.read_bytes()) == (b"one", b"one")
    assert sorted(path.name for path in files.iterdir()) == ["first", "second"]  # no backup


def test_ctrl_c_while_the_files_are_written_comes_after_the_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.write_bytes(b"one")
    second.write_bytes(b"one")
    replace = yamlfile._replace

    def interrupted(target: str, data: bytes, st: os.stat_result) -> None:
        if target == str(second):  # a real SIGINT, between the two writes
            os.kill(os.getpid(), signal.SIGINT)
        replace(target, data, st)

    monkeypatch.setattr(yamlfile, "_replace", interrupted)
    # Ctrl-C as a terminal delivers it (a suite started in the background of a shell
    # without job control inherits SIGINT ignored).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, previous))
    writes = [
        yamlfile.Write(str(first), b"one", b"two"),
        yamlfile.Write(str(second), b"one", b"two"),
    ]
    with pytest.raises(KeyboardInterrupt):  # delivered once the signals are let go
        yamlfile.commit(writes, backup=False)
    assert (first.read_bytes(), second.read_bytes()) == (b"two", b"two")
