"""End to end: the cache directory on a bad day: modes, owners, symlinks, FIFOs, full and
read-only file systems. Each costs a warning at most, never the credential."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest
from helpers import (
    HANG_GUARD,
    Mount,
    Shim,
    age,
    in_deleted_dir,
    one_warning,
    require_tool,
    shim_argv,
    sidecar,
    token_of,
)


# Storage and security.
@pytest.mark.parametrize("umask", [0o000, 0o022, 0o277])
def test_modes_are_0700_and_0600_whatever_the_umask(shim: Shim, umask: int) -> None:
    info = json.dumps({"apiVersion": "client.authentication.k8s.io/v1beta1", "kind": "x"})
    old = os.umask(umask)
    try:
        assert shim.run("-c", "demo").returncode == 0
        assert shim.run("-c", "demo", KUBERNETES_EXEC_INFO=info).returncode == 0  # a note
    finally:
        os.umask(old)
    assert stat.S_IMODE(shim.cache_dir.stat().st_mode) == 0o700
    assert {path.suffix for path in shim.cache_dir.iterdir()} == {".entry", ".lock", ".served"}
    for path in shim.cache_dir.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert not list(shim.cache_dir.glob("*.tmp"))
    assert not list(shim.cache_dir.glob(".*"))


@pytest.mark.parametrize("danger", ["group-writable", "other-owner"])
def test_an_unsafe_cache_dir_is_never_written(shim: Shim, danger: str) -> None:
    shim.cache_dir.mkdir(parents=True)
    if danger == "group-writable":
        shim.cache_dir.chmod(0o770)
    else:
        if os.geteuid() != 0:
            pytest.skip("chown to another user needs root")
        os.chown(shim.cache_dir, 65534, 65534)
    for _ in range(2):
        result = shim.run("-c", "demo")
        assert result.returncode == 0
        assert token_of(result.stdout)
        assert b"working without a cache" in result.stderr
    assert list(shim.cache_dir.iterdir()) == []
    assert len(shim.calls()) == 2


def test_an_entry_behind_a_symlink_is_not_followed(shim: Shim, tmp_path: Path) -> None:
    shim.run("-c", "demo")
    (entry,) = shim.entries()
    elsewhere = tmp_path / "elsewhere"
    entry.rename(elsewhere)
    entry.symlink_to(elsewhere)
    shim.run("-c", "demo")
    assert len(shim.calls()) == 2  # the symlink was a miss
    assert not entry.is_symlink()  # and was replaced by a real file


def test_a_readable_entry_is_refused(shim: Shim) -> None:
    shim.run("-c", "demo")
    (entry,) = shim.entries()
    entry.chmod(0o644)
    shim.run("-c", "demo")
    assert len(shim.calls()) == 2
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600


# Nothing can make a call block.
@pytest.mark.parametrize("suffix", [".entry", ".served", ".ahead", ".lock"])
def test_a_fifo_in_place_of_a_cache_file_never_blocks(shim: Shim, suffix: str) -> None:
    info = json.dumps({"apiVersion": "client.authentication.k8s.io/v1beta1", "kind": "x"})
    shim.run("-c", "demo", KUBERNETES_EXEC_INFO=info)
    path = sidecar(shim, suffix)
    if suffix == ".ahead":
        age(shim, 840 - 200)  # inside the ahead window: the marker is opened after serving
    path.unlink(missing_ok=True)
    os.mkfifo(path, 0o600)
    long_ago = time.time() - 3600
    os.utime(path, (long_ago, long_ago))  # an .ahead this old lets a refresh start: opened
    for args in (["-c", "demo"], ["--list"], ["--purge", "-c", "demo"]):
        result = shim.run(*args, timeout=HANG_GUARD, KUBERNETES_EXEC_INFO=info)
        if args[0] == "-c":
            assert token_of(result.stdout)


# A broken cache never costs the token.
def test_a_read_only_file_system_costs_a_warning_not_the_token(shim: Shim, tmpfs: Mount) -> None:
    read_only = tmpfs("size=1m,ro")
    result = shim.run("-c", "demo", "--cache-dir", str(read_only / "cache"))
    assert token_of(result.stdout)
    assert "working without a cache" in one_warning(result.stderr)
    writable = tmpfs("size=1m")
    (writable / "cache").mkdir(mode=0o700)
    subprocess.run(["mount", "-o", "remount,ro", str(writable)], check=True)
    result = shim.run("-c", "demo", "--cache-dir", str(writable / "cache"))
    assert token_of(result.stdout)
    assert "working without a cache" in one_warning(result.stderr)


def test_no_free_inodes_costs_a_warning_not_the_token(shim: Shim, tmpfs: Mount) -> None:
    full = tmpfs("size=1m,nr_inodes=3")
    cache = full / "cache"
    cache.mkdir(mode=0o700)
    filler = 0
    with pytest.raises(OSError, match="No space left"):  # noqa: PT012
        while True:
            (cache / f"filler{filler}").touch()
            filler += 1
    result = shim.run("-c", "demo", "--cache-dir", str(cache))
    assert token_of(result.stdout)
    one_warning(result.stderr)


def test_a_disk_full_mid_write_leaves_no_temp_file(shim: Shim, tmpfs: Mount) -> None:
    cache = tmpfs("size=64k") / "cache"
    cache.mkdir(mode=0o700)
    result = shim.run("-c", "demo", "--cache-dir", str(cache), FAKE_PAD="100000")  # > 64k
    assert len(token_of(result.stdout)) > 100_000
    assert "could not write the cache entry" in one_warning(result.stderr)
    assert list(cache.iterdir()) == []  # no half-written .tmp, and no lock without an entry


@pytest.mark.parametrize("kind", ["dangling symlink", "under a regular file", "a regular file"])
def test_an_unusable_cache_dir_costs_a_warning_not_the_token(
    shim: Shim, tmp_path: Path, kind: str
) -> None:
    if kind == "dangling symlink":
        cache = tmp_path / "link"
        cache.symlink_to(tmp_path / "nowhere")
    elif kind == "under a regular file":
        (tmp_path / "file").write_text("x")
        cache = tmp_path / "file" / "cache"
    else:
        cache = tmp_path / "file"
        cache.write_text("x")
    result = shim.run("-c", "demo", "--cache-dir", str(cache))
    assert token_of(result.stdout)
    one_warning(result.stderr)


def test_a_relative_cache_dir_is_the_current_directory_s_and_a_deleted_one_costs_no_token(
    shim: Shim, tmp_path: Path
) -> None:
    """EKS_SHIM_CACHE_DIR=rel is taken from kubectl's current directory; when that directory
    was deleted (`rm -rf` of the directory a shell sits in), it names nothing: a warning,
    the token, and --list/--purge find nothing (it used to crash with exit 3)."""
    here = tmp_path / "here"
    here.mkdir()
    env = {**shim.env, "EKS_SHIM_CACHE_DIR": "rel"}
    subprocess.run([*shim_argv(), "-c", "demo"], env=env, cwd=here, check=True, capture_output=True)
    assert [path.suffix for path in (here / "rel").glob("*.entry")] == [".entry"]
    for args in (["-c", "demo"], ["--list"], ["--purge"]):
        here.mkdir(exist_ok=True)
        result = subprocess.run(
            [*in_deleted_dir(here), *shim_argv(), *args],
            env=env,
            capture_output=True,
            timeout=HANG_GUARD,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        if args[0] == "-c":
            assert token_of(result.stdout)
            assert "cannot create rel: " in one_warning(result.stderr)
        else:
            assert result.stderr == b""
    assert len(shim.calls()) == 2


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("symlink", "Too many levels of symbolic links"),  # O_NOFOLLOW's ELOOP
        ("directory", "Is a directory"),
        ("fifo", "not a regular file"),  # opened (O_NONBLOCK), and refused by fstat
    ],
)
def test_a_lock_that_is_not_a_file_costs_a_warning_not_the_token(
    shim: Shim, kind: str, reason: str
) -> None:
    shim.run("-c", "demo")
    lock = sidecar(shim, ".lock")
    lock.unlink()
    if kind == "symlink":
        lock.symlink_to(shim.cache_dir / "elsewhere")
    elif kind == "directory":
        lock.mkdir()
    else:
        os.mkfifo(lock, 0o600)
    result = shim.run("--refresh", "-c", "demo")
    assert token_of(result.stdout)
    warning = one_warning(result.stderr)
    assert f"cannot lock {lock}: {reason}: fetching without the lock" in warning
    assert not (shim.cache_dir / "elsewhere").exists()  # the link was never followed


def test_a_parent_that_cannot_be_written_costs_a_warning_not_the_token(
    shim: Shim, private_home: Path
) -> None:
    """HOME is 0555, so ~/.kube cannot be made. Root may write anywhere: as root, the shim
    runs without the capabilities that override file modes (setpriv)."""
    dropped = [
        "setpriv",
        "--bounding-set=-dac_override,-dac_read_search,-fowner",
        "--inh-caps=-all",
    ]
    private_home.chmod(0o555)
    try:
        result = subprocess.run(
            [*(dropped if os.geteuid() == 0 else []), *shim_argv(), "-c", "demo"],
            env=shim.env,
            capture_output=True,
            timeout=60,
            check=False,
        )
    finally:
        private_home.chmod(0o755)
    assert result.returncode == 0, result.stderr.decode()
    assert token_of(result.stdout)
    assert "Permission denied" in one_warning(result.stderr)
    assert len(shim.calls()) == 1
    assert not (private_home / ".kube").exists()


def test_missing_parents_are_made_0700_whatever_the_umask(shim: Shim, private_home: Path) -> None:
    old = os.umask(0)
    try:
        shim.run("-c", "demo")
    finally:
        os.umask(old)
    for directory in (private_home / ".kube", private_home / ".kube" / "cache", shim.cache_dir):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory


def test_a_cache_dir_made_unsafe_after_caching_is_not_served_from(shim: Shim) -> None:
    cached = shim.run("-c", "demo").stdout
    shim.cache_dir.chmod(0o770)  # group-writable: anyone in the group could plant a token
    try:
        result = shim.run("-c", "demo")
    finally:
        shim.cache_dir.chmod(0o700)
    assert result.stdout != cached
    assert b"is writable by group or others (mode 770)" in result.stderr
    assert len(shim.calls()) == 2


def test_a_cache_dir_others_may_read_but_not_write_is_used(shim: Shim) -> None:
    shim.cache_dir.mkdir(parents=True)
    shim.cache_dir.chmod(0o755)  # what mkdir makes under the usual umask: entries are 0600
    first = shim.run("-c", "demo")
    assert shim.run("-c", "demo").stdout == first.stdout
    assert b"warning" not in first.stderr
    assert len(shim.calls()) == 1


def test_an_entry_owned_by_another_user_is_not_served(shim: Shim) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to give a file to another uid")
    first = shim.run("-c", "demo").stdout
    (entry,) = shim.entries()
    os.chown(entry, 65534, 65534)  # still 0600, still in our 0700 directory
    assert shim.run("-c", "demo").stdout != first
    assert len(shim.calls()) == 2


# A writer killed between its write and its rename.
def killed_at_rename(shim: Shim, *args: str) -> Path:
    """Run the shim under strace, which kills it (SIGKILL) at its first rename: the
    entry's, after its temp file was written whole. The temp file it leaves."""
    strace = require_tool("strace")
    renames = "rename,renameat,renameat2"
    kill = ["-e", f"trace={renames}", "-e", f"inject={renames}:signal=KILL"]
    done = subprocess.run(
        [strace, "-qq", "-o", "/dev/null", *kill, *shim_argv(), *args],
        env=shim.env,
        capture_output=True,
        timeout=HANG_GUARD,
        check=False,
    )
    assert done.returncode in (-signal.SIGKILL, 128 + signal.SIGKILL)  # (strace passes it on)
    (temp,) = shim.cache_dir.glob(".*.entry.*.tmp")
    assert shim.entries() == []
    return temp


@pytest.mark.parametrize("purge", [["-c", "demo"], ["--", "aws", "eks", "get-token"]])
def test_purge_removes_and_reports_a_write_killed_before_its_rename(
    shim: Shim, purge: list[str]
) -> None:
    if purge[0] == "--":
        purge = ["--", "aws", "--region", "eu-west-1", "eks", "get-token"]
        purge += ["--cluster-name", "demo", "--output", "json"]
    temp = killed_at_rename(shim, "-c", "demo", "-r", "eu-west-1")
    assert b"k8s-aws-v1" in temp.read_bytes()  # a whole entry: a valid token
    result = shim.run("--purge", *purge)
    assert not temp.exists()
    assert "(a write that never finished)" in result.stdout.decode()
    assert "cluster demo" in result.stdout.decode()


def test_a_later_call_removes_a_write_whose_writer_is_gone(shim: Shim) -> None:
    temp = killed_at_rename(shim, "-c", "demo")
    alive = shim.cache_dir / (".ab" + "ab" * 31 + f".entry.{os.getpid()}.0123abcd.tmp")
    alive.write_bytes(b"a write in progress")  # its writer (this test) lives: left alone
    shim.run("-c", "other")  # a miss, of any key
    assert not temp.exists()
    assert alive.exists()
