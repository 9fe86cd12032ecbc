"""Issue #8: a hostile environment is a normal day. Real FIFOs, real signals, real file
systems (tmpfs, read-only mounts), another uid: each test fails without its fix."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import IN_CI, Shim, age, in_deleted_dir, shim_argv, token_of

from shim.deadline import Deadline
from shim.entry import Entry, decode_entry, encode_entry
from shim.files import MAX_READ

HANG_GUARD = 30  # seconds: far beyond any healthy call; reaching it means the call hung


def key_of(shim: Shim) -> str:
    (path,) = shim.entries()
    return path.name[: -len(".entry")]


def sidecar(shim: Shim, suffix: str) -> Path:
    return shim.cache_dir / (key_of(shim) + suffix)


def one_warning(stderr: bytes) -> str:
    lines = stderr.decode().splitlines()
    warnings = [line for line in lines if line.startswith("eks-token-shim: warning: ")]
    assert len(warnings) == 1, lines
    assert not any("unexpected" in line or "Traceback" in line for line in lines), lines
    return warnings[0]


Mount = Callable[[str], Path]


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Mount]:
    """mount(OPTIONS) -> a fresh tmpfs mounted in tmp_path; unmounted in teardown."""
    mounted: list[Path] = []

    def mount(options: str) -> Path:
        point = tmp_path / f"mnt{len(mounted)}"
        point.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)],
            capture_output=True,
            check=False,
        )
        if done.returncode != 0:
            message = f"cannot mount a tmpfs here: {done.stderr.decode().strip()}"
            if IN_CI:
                pytest.fail(message)
            pytest.skip(message)
        mounted.append(point)
        return point

    yield mount
    for point in reversed(mounted):
        subprocess.run(["umount", "-l", str(point)], check=False)


# 1. Only our own files.
KEY = "0123456789abcdef" * 4  # the form of a key: 64 lower-case hex digits
FOREIGN = {
    "Cargo.lock": b"# cargo\n",
    "yarn.lock": b"# yarn\n",
    "notes.tmp": b"my notes\n",
    "README.entry": b"not an entry\n",
    ".hidden.entry.1.abcdef12.tmp": b"not ours either\n",
    "background.log.old": b"kept\n",
    "a" * 64 + ".entry.bak": b"a backup of someone's\n",
    "A" * 64 + ".entry": b"upper case: not a digest of ours\n",
    "deadbeef.entry": b"hex, but too short for a digest of ours\n",
    "b" * 65 + ".lock": b"hex, but too long\n",
    "c" * 64 + ".txt": b"a digest, but no suffix of ours\n",
    # Near misses of our temp files (.NAME.PID.RANDOM.tmp, shim.files.temp_name):
    f".{KEY}.entry.x1.abcdef12.tmp": b"pid not a number\n",
    f".{KEY}.entry.1.abcdef1.tmp": b"random part too short\n",
    f".{KEY}.entry.1.abcdefgh.tmp": b"random part not hex\n",
    f".{KEY}.entry.1.abcdef12.temp": b"not .tmp\n",
    f".{KEY}.entry.1.2.abcdef12.tmp": b"one part too many\n",
    f".{KEY}.entry.1.abcdef12.tmp.bak": b"a copy of a temp file\n",
    f"x.{KEY}.entry.1.abcdef12.tmp": b"not hidden\n",
    f".{KEY}.txt.1.abcdef12.tmp": b"not a file of a key\n",
    f".{KEY[1:]}.entry.1.abcdef12.tmp": b"not a key\n",
}
OURS = [f".{KEY}.entry.123.abcdef12.tmp", f".{KEY}.served.7.00ff00ff.tmp"]  # a writer killed


def test_purge_and_list_touch_only_files_the_shim_could_have_written(shim: Shim) -> None:
    shim.run("-c", "demo")
    for name, data in [*FOREIGN.items(), *((name, b"half an entry") for name in OURS)]:
        (shim.cache_dir / name).write_bytes(data)
        (shim.cache_dir / name).chmod(0o600)
    listed = shim.run("--list").stdout.decode()
    assert "damaged" not in listed
    assert len(listed.splitlines()) == 2  # the header and our one entry
    result = shim.run("--purge")
    assert b"removed 1 cache entry" in result.stdout
    assert f"left alone {len(FOREIGN)} files".encode() in result.stderr
    assert sorted(os.listdir(shim.cache_dir)) == sorted(FOREIGN)
    for name, data in FOREIGN.items():
        assert (shim.cache_dir / name).read_bytes() == data


def test_a_directory_named_like_an_entry_does_not_stop_purge(shim: Shim) -> None:
    shim.run("-c", "one")
    shim.run("-c", "two")
    first, second = shim.entries()
    first.unlink()
    first.mkdir()  # a directory where an entry would be
    result = shim.run("--purge")
    assert b"removed 1 cache entry" in result.stdout
    assert b"left alone 1 file " in result.stderr
    assert first.is_dir()
    assert not second.exists()
    assert shim.run("--list").returncode == 0
    second.mkdir()
    assert b"left alone 2 files " in shim.run("--purge").stderr
    third = shim.cache_dir / (KEY + ".entry")
    third.symlink_to(first)  # a symlink named like an entry, to a directory: the link goes
    assert b"removed 1 cache entry" in shim.run("--purge").stdout
    assert not third.is_symlink()
    assert first.is_dir()


def test_list_and_purge_before_anything_was_cached_create_nothing(
    shim: Shim, private_home: Path
) -> None:
    listed = shim.run("--list").stdout.decode().splitlines()
    assert listed == [listed[0]]
    assert listed[0].startswith("CLUSTER/COMMAND")
    assert b"removed 0 cache entries" in shim.run("--purge").stdout
    assert b"removed 0 cache entries" in shim.run("--purge", "-c", "demo").stdout
    assert not (private_home / ".kube").exists()


def test_purging_a_cluster_removes_its_sidecars_and_leaves_its_lock(shim: Shim) -> None:
    info = json.dumps({"apiVersion": "client.authentication.k8s.io/v1beta1", "kind": "x"})
    shim.run("-c", "demo", KUBERNETES_EXEC_INFO=info)  # kubectl asked: a .served note
    sidecar(shim, ".ahead").write_bytes(b"")  # as a refresh ahead leaves it
    sidecar(shim, ".ahead").chmod(0o600)
    assert {path.suffix for path in shim.cache_dir.iterdir()} >= {".entry", ".served", ".ahead"}
    key = key_of(shim)
    assert b"removed: cluster demo" in shim.run("--purge", "-c", "demo").stdout
    names = {path.name for path in shim.cache_dir.iterdir()} - {"background.log"}
    assert names == {key + ".lock"}  # another process may hold it (filelock #31)


# 2. Nothing can make a call block.
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


def test_a_fifo_as_background_log_never_blocks_the_refresh_ahead(shim: Shim) -> None:
    shim.run("-c", "demo")
    age(shim, 840 - 200)
    log = shim.cache_dir / "background.log"
    os.mkfifo(log, 0o600)
    result = shim.run("-c", "demo", timeout=HANG_GUARD)
    assert token_of(result.stdout)
    deadline = time.monotonic() + HANG_GUARD
    while len(shim.calls()) < 2:  # the refresh ran, its log went to /dev/null
        assert time.monotonic() < deadline, "the background refresh never ran the backend"
        time.sleep(0.05)
    assert stat.S_ISFIFO(os.lstat(log).st_mode)


# 3. A broken cache never costs the token.
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
    assert sorted(path.suffix for path in cache.iterdir()) == [".lock"]  # no half-written .tmp


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


# 4. --timeout bounds the whole call.
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


# 5. No orphans.
def child_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_gone(pids: list[int]) -> None:
    deadline = time.monotonic() + HANG_GUARD
    while any(child_alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            for pid in pids:
                if child_alive(pid):
                    os.kill(pid, signal.SIGKILL)
            pytest.fail(f"the backend's children outlived it: {pids}")
        time.sleep(0.05)


def started_children(pids_file: Path, count: int = 1) -> list[int]:
    deadline = time.monotonic() + HANG_GUARD
    while not (pids_file.exists() and len(pids_file.read_text().split()) >= count):
        assert time.monotonic() < deadline, "the backend never started its child"
        time.sleep(0.02)
    return [int(pid) for pid in pids_file.read_text().split()]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_ends_the_backend_and_its_children(
    shim: Shim, tmp_path: Path, signum: int
) -> None:
    pids_file = tmp_path / "children"
    process = shim.popen("-c", "demo", FAKE_MODE="child-sleep:300", FAKE_CHILD_PIDS=str(pids_file))
    children = started_children(pids_file)
    backend = shim.calls()[0]["pid"]
    process.send_signal(signum)
    assert process.wait(HANG_GUARD) == 128 + signum
    assert process.stdout is not None
    assert process.stdout.read() == b""
    wait_gone([*children, int(str(backend))])
    assert shim.entries() == []


@pytest.mark.parametrize("where", ["foreground", "background refresh"])
def test_a_timeout_ends_the_backend_and_its_children(
    shim: Shim, tmp_path: Path, where: str
) -> None:
    if where == "background refresh":
        shim.run("-c", "demo", "--timeout", "1")
        age(shim, 840 - 200)  # the next call serves, and refreshes in the background
    pids_file = tmp_path / "children"
    shim.run(
        "-c",
        "demo",
        "--timeout",
        "1",
        FAKE_MODE="child-sleep:300",
        FAKE_CHILD_PIDS=str(pids_file),
        timeout=HANG_GUARD,
        expect=124 if where == "foreground" else 0,
    )
    wait_gone(started_children(pids_file))


def test_a_backend_that_closes_its_output_and_runs_on_is_timed_out(shim: Shim) -> None:
    """As kubectl waits for a plugin to exit, so does the shim, up to --timeout."""
    result = shim.run(
        "-c",
        "demo",
        "--timeout",
        "2",
        FAKE_MODE="close-output:300",
        expect=124,
        timeout=HANG_GUARD,
    )
    assert b"timed out (--timeout 2 s) and was killed" in result.stderr
    assert shim.entries() == []


@pytest.mark.parametrize("mode", ["stubborn-child:300", "stubborn:300"])
def test_a_backend_or_a_child_that_ignores_term_is_killed(
    shim: Shim, tmp_path: Path, mode: str
) -> None:
    """A child that ignores TERM outlives its parent's exit: the group gets KILL after the
    grace all the same; so does a backend that ignores TERM itself."""
    pids_file = tmp_path / "children"
    process = shim.popen(
        "-c", "demo", "--timeout", "2", FAKE_MODE=mode, FAKE_CHILD_PIDS=str(pids_file)
    )
    children = started_children(pids_file)
    backend = shim.calls()[0]["pid"]
    assert process.wait(HANG_GUARD) == 124
    wait_gone([*children, int(str(backend))])


def test_a_backend_that_outlives_the_timeout_gets_term_and_time_to_tidy_up(
    shim: Shim, tmp_path: Path
) -> None:
    """TERM first, then a grace before KILL: a backend that tidies up on TERM (the AWS
    CLI's SSO cache, a temp file) gets to finish."""
    said = tmp_path / "said"
    shim.run(
        "-c",
        "demo",
        "--timeout",
        "4",  # time for the backend to set its trap first, even on a loaded machine
        FAKE_MODE="trap-sleep:300",
        FAKE_TERM_LOG=str(said),
        expect=124,
        timeout=HANG_GUARD,
    )
    assert said.read_text() == "tidied up after TERM\n"


# What kubectl does around a plugin, in the pty's session: run it, then use the terminal.
# As kubectl does, it reads the plugin's stdout through a pipe; stdin and stderr are the
# terminal's.
AS_KUBECTL = """
import os, subprocess, sys
ran = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, check=False)
sys.stdout.buffer.write(ran.stdout)
print("terminal is ours" if os.tcgetpgrp(0) == os.getpgrp() else "terminal LOST", flush=True)
sys.exit(ran.returncode)
"""


def test_an_mfa_prompt_on_the_terminal_still_works(shim: Shim) -> None:
    """The backend's own process group gets the terminal: reading it must not stop it; and
    the terminal is given back afterwards, or kubectl would be stopped reading it next."""
    import pty

    pid, terminal = pty.fork()
    if pid == 0:  # the child: a session whose controlling terminal is the pty, as kubectl's
        argv = [sys.executable, "-c", AS_KUBECTL, *shim_argv(), "-c", "demo"]
        os.execve(argv[0], argv, {**shim.env, "FAKE_MODE": "mfa"})  # noqa: S606
    try:
        output = talk_to(terminal, b"424242\n")
    finally:
        _, status = os.waitpid(pid, os.WNOHANG)
        if _ == 0:  # still running: stuck, the test has failed already
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, output
    assert b"-mfa-424242" in output
    assert b"terminal is ours" in output


def talk_to(terminal: int, answer: bytes) -> bytes:
    """Wait for the MFA prompt on `terminal`, type `answer`, read until the other end closes."""
    import select

    output = b""
    deadline = time.monotonic() + HANG_GUARD
    while b"Enter MFA code" not in output:
        ready, _, _ = select.select([terminal], [], [], max(0, deadline - time.monotonic()))
        assert ready, f"no prompt: {output!r}"
        output += os.read(terminal, 4096)
    os.write(terminal, answer)
    while True:
        ready, _, _ = select.select([terminal], [], [], max(0, deadline - time.monotonic()))
        assert ready, f"stuck after the prompt: {output!r}"
        try:
            chunk = os.read(terminal, 4096)
        except OSError:  # EIO: the child closed the terminal
            return output
        if not chunk:
            return output
        output += chunk


# 6. Bytes in, bytes out.
@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["-c", "demo\udcff"], {}),
        (["-c", "demo", "-p", "\udcff"], {}),
        (["--", "aws", "eks", "get-token", "--cluster-name", "\udcff"], {}),
        (["-c", "demo"], {"AWS_PROFILE": "\udcff"}),
    ],
)
def test_arguments_and_environment_that_are_not_utf8(
    shim: Shim, args: list[str], env: dict[str, str]
) -> None:
    first = shim.run(*args, env=env)
    assert token_of(first.stdout)
    assert b"warning" not in first.stderr
    assert shim.run(*args, env=env).stdout == first.stdout  # cached, and served from the cache
    assert len(shim.calls()) == 1
    listed = shim.run("--list").stdout
    assert b"\\xff" in listed
    assert b"removed 1" in shim.run("--purge", *args, env=env).stdout


def test_an_unreadable_exec_info_gets_a_warning_and_the_default(shim: Shim) -> None:
    nested = "[" * 50_000 + "]" * 50_000  # JSON too deep for any parser's recursion
    result = shim.run("-c", "demo", KUBERNETES_EXEC_INFO=nested)
    assert json.loads(result.stdout)["apiVersion"] == "client.authentication.k8s.io/v1beta1"
    assert "KUBERNETES_EXEC_INFO holds no readable apiVersion" in one_warning(result.stderr)


@pytest.mark.parametrize("value", ["1e308", "inf", "nan", "0", "-1", "86401"])
def test_absurd_timeouts_are_usage_errors(shim: Shim, value: str) -> None:
    result = shim.run("-c", "demo", "--timeout", value, expect=2)
    assert b"--timeout takes" in result.stderr
    assert shim.calls() == []


@pytest.mark.parametrize(
    ("option", "what", "most"),
    [
        ("--timeout", "--timeout takes more than zero", 86400),  # a day: beyond any backend
        ("--refresh-before", "--refresh-before (EKS_SHIM_REFRESH_BEFORE) takes zero", 366 * 86400),
        ("--refresh-ahead", "--refresh-ahead (EKS_SHIM_REFRESH_AHEAD) takes zero", 366 * 86400),
        ("--max-age", "--max-age (EKS_SHIM_MAX_AGE) takes zero", 366 * 86400),  # a year
    ],
)
def test_seconds_go_up_to_their_bound_and_no_further(
    shim: Shim, option: str, what: str, most: int
) -> None:
    assert token_of(shim.run("-c", "demo", option, str(most)).stdout)
    result = shim.run("-c", "demo", option, str(most + 1), expect=2)
    assert f"{what} to {most} seconds, not '{most + 1}'".encode() in result.stderr
    assert len(shim.calls()) == 1


# 8. Sane lifetimes.
def rewrite(shim: Shim, **fields: int) -> None:
    (path,) = shim.entries()
    entry = decode_entry(path.read_bytes())
    assert entry is not None
    values = {"expiry": entry.expiry, "fetched_at": entry.fetched_at, **fields}
    path.write_bytes(
        encode_entry(Entry(values["expiry"], values["fetched_at"], entry.meta, entry.credential))
    )


def test_an_entry_fetched_in_the_future_is_a_miss(shim: Shim) -> None:
    shim.run("-c", "demo")
    rewrite(shim, fetched_at=int(time.time()) + 3600)  # the clock was set back an hour
    shim.run("-c", "demo")
    assert len(shim.calls()) == 2


def test_no_entry_is_served_past_max_age_whatever_its_expiry(shim: Shim) -> None:
    far = {"FAKE_EXPIRY": "9999-12-31T23:59:59Z"}
    shim.run("-c", "demo", env=far)
    age(shim, 3000)
    shim.run("-c", "demo", "--refresh-ahead", "0", env=far)
    assert len(shim.calls()) == 1  # 3000 s old: served
    age(shim, 700)
    shim.run("-c", "demo", "--max-age", "7200", env=far)
    assert len(shim.calls()) == 1  # 3700 s old, a larger --max-age: served
    shim.run("-c", "demo", env=far)
    assert len(shim.calls()) == 2  # past the default 3600 s: fetched again
    age(shim, 1000)
    shim.run("-c", "demo", EKS_SHIM_MAX_AGE="900", env=far)
    assert len(shim.calls()) == 3


def test_a_credential_too_large_to_read_back_is_printed_not_cached(shim: Shim) -> None:
    result = shim.run("-c", "demo", FAKE_MODE="huge")
    assert len(token_of(result.stdout)) > 1 << 20
    assert "too large to cache" in one_warning(result.stderr)
    assert shim.entries() == []


def test_the_largest_entry_that_can_be_read_back_is_cached_and_one_byte_more_is_not(
    shim: Shim,
) -> None:
    """The bound is MAX_READ bytes of entry file, on both sides: write_entry and read."""
    shim.run("-c", "demo", FAKE_PAD="1000000")
    (path,) = shim.entries()
    overhead = path.stat().st_size - 1_000_000  # header, metadata, JSON around the token
    assert b"removed 1" in shim.run("--purge").stdout
    largest = str(MAX_READ - overhead)
    first = shim.run("-c", "demo", FAKE_PAD=largest)
    (path,) = shim.entries()
    assert path.stat().st_size == MAX_READ
    assert shim.run("-c", "demo", FAKE_PAD=largest).stdout == first.stdout  # read back
    assert len(shim.calls()) == 2
    assert b"removed 1" in shim.run("--purge").stdout
    result = shim.run("-c", "demo", FAKE_PAD=str(MAX_READ - overhead + 1))
    assert "too large to cache" in one_warning(result.stderr)
    assert shim.entries() == []


# 9. The identity of other plugins.
@pytest.mark.parametrize(
    "variable",
    ["CLOUDSDK_ACTIVE_CONFIG_NAME", "AZURE_CONFIG_DIR", "AAD_SERVICE_PRINCIPAL_CLIENT_ID"],
)
def test_other_plugins_identity_variables_are_in_the_key(shim: Shim, variable: str) -> None:
    command = ["--", "aws-iam-authenticator", "token", "-i", "demo"]
    alice = shim.run(*command, env={variable: "alice"}).stdout
    bob = shim.run(*command, env={variable: "bob"}).stdout
    assert token_of(alice) != token_of(bob)
    assert shim.run(*command, env={variable: "alice"}).stdout == alice
    assert len(shim.calls()) == 2


def test_key_env_adds_any_variable_to_the_key(shim: Shim) -> None:
    shim.run("-c", "demo", MY_TENANT="a")
    shim.run("-c", "demo", MY_TENANT="b")
    assert len(shim.calls()) == 1  # not in the key by default
    keyed = ("--key-env", "MY_TENANT", "--key-env", "OTHER")
    a = shim.run("-c", "demo", *keyed, MY_TENANT="a").stdout
    b = shim.run("-c", "demo", *keyed, MY_TENANT="b").stdout
    assert token_of(a) != token_of(b)
    assert shim.run("-c", "demo", *keyed, MY_TENANT="a").stdout == a
    assert len(shim.calls()) == 3


@pytest.mark.parametrize("name", ["", "A=B"])
def test_key_env_takes_only_a_variable_name(shim: Shim, name: str) -> None:
    result = shim.run("-c", "demo", "--key-env", "OK", "--key-env", name, expect=2)
    assert b"--key-env takes the name of an environment variable" in result.stderr
    assert shim.calls() == []


# 11. Small ones.
def test_missing_parents_are_made_0700_whatever_the_umask(shim: Shim, private_home: Path) -> None:
    old = os.umask(0)
    try:
        shim.run("-c", "demo")
    finally:
        os.umask(old)
    for directory in (private_home / ".kube", private_home / ".kube" / "cache", shim.cache_dir):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory


def test_an_empty_cache_dir_option_is_a_usage_error(shim: Shim) -> None:
    result = shim.run("-c", "demo", "--cache-dir", "", expect=2)
    assert b"--cache-dir takes a directory" in result.stderr
    assert shim.calls() == []
    shim.run("-c", "demo", EKS_SHIM_CACHE_DIR="")  # an empty variable counts as unset
    assert len(shim.entries()) == 1


def test_a_bogus_backend_variable_does_not_break_generic_mode(shim: Shim) -> None:
    result = shim.run(
        "--", "aws", "eks", "get-token", "--cluster-name", "x", EKS_SHIM_BACKEND="bogus"
    )
    assert token_of(result.stdout)
    assert shim.run("-c", "x", EKS_SHIM_BACKEND="bogus", expect=2).returncode == 2


@pytest.mark.parametrize(
    ("mode", "code", "says"),
    [
        (f"die:{signal.SIGKILL}", 137, f"-{signal.SIGKILL}"),
        (f"die:{signal.SIGSEGV}", 139, f"-{signal.SIGSEGV}"),
        ("exit:1", 1, "1"),
        ("exit:255", 255, "255"),
    ],
)
def test_a_backend_s_exit_code_is_ours_and_a_signal_n_is_128_plus_n(
    shim: Shim, mode: str, code: int, says: str
) -> None:
    result = shim.run("-c", "demo", FAKE_MODE=mode, expect=code)
    assert f"failed with exit code {says}".encode() in result.stderr
    assert shim.entries() == []


def test_a_child_that_keeps_the_backend_s_stderr_is_not_waited_for(
    shim: Shim, tmp_path: Path
) -> None:
    """The backend printed its credential and exited; something it started still holds
    its stderr (a credential helper, a daemon): the call ends with the credential."""
    pids = tmp_path / "pids"
    try:
        result = shim.run(
            "-c", "demo", FAKE_MODE="stderr-child", FAKE_CHILD_PIDS=str(pids), timeout=HANG_GUARD
        )
        assert token_of(result.stdout)
    finally:
        for pid in pids.read_text().split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)


def test_python_never_prints_a_traceback_for_a_signal(shim: Shim) -> None:
    """A signal while the backend runs is an exit code, not a KeyboardInterrupt traceback."""
    process = shim.popen("-c", "demo", FAKE_MODE="sleep:300")
    deadline = time.monotonic() + HANG_GUARD
    while not shim.calls():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    assert process.wait(HANG_GUARD) == 130
    assert process.stderr is not None
    assert b"Traceback" not in process.stderr.read()


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
    while wchan.read_text() != "hrtimer_nanosleep":  # between two tries of the lock
        assert time.monotonic() < deadline, "the second call never waited for the lock"
        time.sleep(0.02)
    waiter.send_signal(signal.SIGINT)
    assert waiter.wait(HANG_GUARD) == 130
    assert waiter.stderr is not None
    assert waiter.stderr.read() == b""
    holder.send_signal(signal.SIGTERM)
    assert holder.wait(HANG_GUARD) == 143
    assert len(shim.calls()) == 1


def test_a_signal_that_arrives_while_the_backend_starts_still_ends_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The signal waits (blocked) until the backend's pid is known, then ends it: the fault
    is a SIGTERM sent in the narrowest window, right after the spawn returns."""
    from shim import process
    from shim.errors import Terminated

    spawned: list[int] = []
    real_spawn = os.posix_spawnp

    def spawn_then_terminate(*args: Any, **kwargs: Any) -> int:
        pid = real_spawn(*args, **kwargs)
        spawned.append(pid)
        os.kill(os.getpid(), signal.SIGTERM)  # to us, while signals are blocked: pending
        return pid

    monkeypatch.setattr(os, "posix_spawnp", spawn_then_terminate)
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated), process.start(["sleep", "300"], dict(os.environ)) as backend:
        backend.finish(Deadline(HANG_GUARD))
    assert spawned
    assert not child_alive(spawned[0])
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.parametrize(
    "argv", [["true"], ["false"], ["sh", "-c", "echo out; echo err >&2"], ["no-such-command-x"]]
)
def test_running_a_backend_leaves_no_descriptor_open(argv: list[str]) -> None:
    """shim.process closes both pipe ends whatever happened (a background refresh, a test
    process, lives on after its backend)."""
    from shim.errors import BackendError
    from shim.process import start

    before = sorted(os.listdir("/proc/self/fd"))
    with contextlib.suppress(BackendError), start(argv, dict(os.environ)) as backend:
        backend.finish(Deadline(HANG_GUARD))
    assert sorted(os.listdir("/proc/self/fd")) == before


def test_a_closed_stdout_is_exit_1_on_a_miss_and_a_hit_alike(shim: Shim) -> None:
    """kubectl gone before the credential could be written: nobody to tell, the same exit
    on both paths, and no crash log (it is not a bug); the fetched entry is cached."""
    closed = ["sh", "-c", 'exec "$@" >&-', "sh", *shim_argv(), "-c", "demo"]
    for _ in ("miss", "hit"):
        result = subprocess.run(closed, env=shim.env, capture_output=True, timeout=60, check=False)
        assert (result.returncode, result.stderr) == (1, b"")
    assert len(shim.calls()) == 1
    assert not (shim.cache_dir / "crash.log").exists()
