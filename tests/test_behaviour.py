"""Issue #2's numbered behaviours, end to end through the installed script and fake backends."""

from __future__ import annotations

import calendar
import json
import os
import re
import signal
import stat
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import Shim, token_of

from shim.entry import Entry, decode_entry, encode_entry

V1 = json.dumps(
    {
        "kind": "ExecCredential",
        "apiVersion": "client.authentication.k8s.io/v1",
        "spec": {"interactive": False},
    },
    separators=(",", ":"),
)


# 1. Only the credential goes to stdout; stderr, stdin and the environment pass through.
def test_stdout_is_the_credential_and_backend_stderr_passes_through(shim: Shim) -> None:
    result = shim.run("-c", "demo", FAKE_MODE="stderr")
    assert result.returncode == 0
    credential = json.loads(result.stdout)
    assert credential["kind"] == "ExecCredential"
    assert b"a message from the backend" in result.stderr
    assert b"a message from the backend" not in result.stdout


def test_stdin_reaches_the_backend_for_mfa_prompts(shim: Shim) -> None:
    result = shim.run("-c", "demo", stdin=b"123456\n", FAKE_MODE="mfa")
    assert result.returncode == 0
    assert token_of(result.stdout).endswith("-mfa-123456")


def test_backend_inherits_exec_info_and_answers_the_asked_api_version(shim: Shim) -> None:
    result = shim.run("-c", "demo", KUBERNETES_EXEC_INFO=V1)
    assert json.loads(result.stdout)["apiVersion"] == "client.authentication.k8s.io/v1"
    assert shim.calls()[0]["exec_info"] == V1


def test_eks_mode_builds_the_backend_commands(shim: Shim) -> None:
    shim.run("-c", "demo", "-r", "eu-west-1", "--role-arn", "arn:aws:iam::1:role/r", "-p", "dev")
    shim.run(
        "-b",
        "aws-iam-authenticator",
        "-c",
        "demo",
        "-r",
        "eu-west-1",
        "--role-arn",
        "arn:aws:iam::1:role/r",
    )
    aws, authenticator = shim.calls()
    assert Path(str(aws["argv"][0])).name == "aws"
    assert aws["argv"][1:] == [
        "--region",
        "eu-west-1",
        "eks",
        "get-token",
        "--cluster-name",
        "demo",
        "--role-arn",
        "arn:aws:iam::1:role/r",
        "--output",
        "json",
    ]
    assert aws["profile"] == "dev"
    assert authenticator["argv"][1:] == [
        "token",
        "-i",
        "demo",
        "-r",
        "arn:aws:iam::1:role/r",
        "--region",
        "eu-west-1",
    ]


def test_generic_mode_runs_the_command_verbatim(shim: Shim) -> None:
    result = shim.run("--", "aws", "eks", "get-token", "--cluster-name", "x", "--output", "json")
    assert result.returncode == 0
    assert shim.calls()[0]["argv"][1:] == [
        "eks",
        "get-token",
        "--cluster-name",
        "x",
        "--output",
        "json",
    ]


# 2. The cache key: what differs never shares an entry; what is the same does.
@pytest.mark.parametrize(
    ("first", "second", "env"),
    [
        (["-c", "a"], ["-c", "b"], {}),
        (["-c", "a"], ["-c", "a", "-p", "other"], {}),
        (["-c", "a"], ["-c", "a", "-r", "eu-west-1"], {}),
        (["-c", "a"], ["-c", "a", "--role-arn", "arn:aws:iam::1:role/r"], {}),
        (["-c", "a"], ["-c", "a", "-b", "aws-iam-authenticator"], {}),
        (["-c", "a"], ["-c", "a"], {"KUBERNETES_EXEC_INFO": V1}),
        (["-c", "a"], ["-c", "a"], {"AWS_PROFILE": "other"}),
        (["-c", "a"], ["-c", "a"], {"AWS_ACCESS_KEY_ID": "AKIAOTHER"}),
    ],
)
def test_different_selections_never_share_an_entry(
    shim: Shim, first: list[str], second: list[str], env: dict[str, str]
) -> None:
    one = shim.run(*first)
    two = shim.run(*second, env=env)
    assert token_of(one.stdout) != token_of(two.stdout)
    assert len(shim.calls()) == 2
    assert len(shim.entries()) == 2


def test_the_same_selection_is_served_from_cache(shim: Shim) -> None:
    outputs = {shim.run("-c", "a", "-r", "eu-west-1").stdout for _ in range(3)}
    assert len(outputs) == 1
    assert len(shim.calls()) == 1


def test_non_identity_environment_does_not_split_the_cache(shim: Shim) -> None:
    shim.run("-c", "a", KUBERNETES_EXEC_INFO=V1, SOME_OTHER="1")
    shim.run(
        "-c", "a", KUBERNETES_EXEC_INFO=V1.replace('"interactive":false', '"interactive":true')
    )
    assert len(shim.calls()) == 1


def test_a_cached_credential_keeps_its_api_version(shim: Shim) -> None:
    shim.run("-c", "a", KUBERNETES_EXEC_INFO=V1)
    hit = shim.run("-c", "a", KUBERNETES_EXEC_INFO=V1)
    assert json.loads(hit.stdout)["apiVersion"] == "client.authentication.k8s.io/v1"
    assert len(shim.calls()) == 1


# 3. Validate before caching.
@pytest.mark.parametrize(
    ("mode", "code", "message"),
    [
        ("fail", 3, b"failed with exit code 3"),
        ("garbage", 1, b"the output is not JSON"),
        ("empty", 1, b"the output is empty"),
        ("notoken", 1, b"status.token is missing"),
    ],
)
def test_a_failed_or_invalid_backend_prints_nothing_and_caches_nothing(
    shim: Shim, mode: str, code: int, message: bytes
) -> None:
    result = shim.run("-c", "demo", FAKE_MODE=mode, expect=code)
    assert result.stdout == b""
    assert message in result.stderr
    assert b"aws eks get-token --cluster-name demo" in result.stderr  # names the command
    assert b"Traceback" not in result.stderr
    assert shim.entries() == []
    assert shim.run("-c", "demo").returncode == 0  # the next good answer is not shadowed
    assert len(shim.calls()) == 2


def test_a_missing_backend_is_a_clear_error(shim: Shim) -> None:
    result = shim.run("--", "no-such-command-anywhere", expect=127)
    assert result.stdout == b""
    assert b"no-such-command-anywhere: command not found" in result.stderr


@pytest.mark.parametrize(
    ("content", "mode", "code", "says"),
    [
        (b"#!/bin/sh\n", 0o644, 126, "permission denied"),
        (b"\x7fELF, but not really", 0o755, 1, "cannot run: Exec format error"),
    ],
)
def test_a_backend_that_cannot_run_is_a_clear_error(
    shim: Shim, tmp_path: Path, content: bytes, mode: int, code: int, says: str
) -> None:
    backend = tmp_path / "backend"
    backend.write_bytes(content)
    backend.chmod(mode)
    result = shim.run("--", str(backend), expect=code)
    assert result.stderr.decode().splitlines() == [f"eks-token-shim: error: {backend}: {says}"]
    assert shim.entries() == []


def test_no_expiry_is_printed_but_never_cached(shim: Shim) -> None:
    for _ in range(2):
        result = shim.run("-c", "demo", FAKE_MODE="noexpiry")
        assert result.returncode == 0
        assert b"no expirationTimestamp" in result.stderr
    assert len(shim.calls()) == 2
    assert shim.entries() == []


@pytest.mark.parametrize(
    ("lifetime", "state"), [("-30", rb"expired 3[01] s ago"), ("30", rb"expires in (29|30) s")]
)
def test_expired_or_nearly_expired_is_printed_with_a_warning_never_cached(
    shim: Shim, lifetime: str, state: bytes
) -> None:
    result = shim.run("-c", "demo", FAKE_LIFETIME=lifetime)
    assert result.returncode == 0
    assert token_of(result.stdout)
    assert re.search(state + rb" \(refresh-before is 60 s, max-age 3600 s\)", result.stderr)
    assert b"printed, not cached" in result.stderr
    assert shim.entries() == []


def test_an_offset_timestamp_is_an_absolute_instant(shim: Shim) -> None:
    # A +09:00 stamp 120 s ahead: read as UTC it would look 9 h fresh and stay cached too long.
    shim.run("-c", "demo", FAKE_MODE="offset", FAKE_LIFETIME="120")
    assert len(shim.entries()) == 1
    shim.run("-c", "demo", "--refresh-before", "100")  # 120 s left > 100: still fresh
    assert len(shim.calls()) == 1
    shim.run("-c", "demo", "--refresh-before", "130")  # inside the refresh window now
    assert len(shim.calls()) == 2


# 4. Freshness: served while now < expiry - refresh_before.
def test_refresh_before_from_the_environment(shim: Shim) -> None:
    shim.run("-c", "demo", FAKE_LIFETIME="300")
    shim.run("-c", "demo", EKS_SHIM_REFRESH_BEFORE="200")
    assert len(shim.calls()) == 1
    shim.run("-c", "demo", EKS_SHIM_REFRESH_BEFORE="400")
    assert len(shim.calls()) == 2


# 5. Storage and security.
@pytest.mark.parametrize("umask", [0o000, 0o022, 0o277])
def test_modes_are_0700_and_0600_whatever_the_umask(shim: Shim, umask: int) -> None:
    old = os.umask(umask)
    try:
        assert shim.run("-c", "demo").returncode == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(shim.cache_dir.stat().st_mode) == 0o700
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


# 6. Concurrency.
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


# 7. Damage.
@pytest.mark.parametrize("damage", ["truncate", "garbage", "flip", "empty"])
def test_a_damaged_entry_is_a_miss_and_gets_replaced(shim: Shim, damage: str) -> None:
    first = shim.run("-c", "demo")
    (entry,) = shim.entries()
    data = entry.read_bytes()
    damaged = {
        "truncate": data[: len(data) // 2],
        "garbage": b"\x00\xff not an entry",
        "flip": data[:-20] + bytes([data[-20] ^ 1]) + data[-19:],
        "empty": b"",
    }[damage]
    entry.write_bytes(damaged)
    second = shim.run("-c", "demo")
    assert second.returncode == 0
    assert b"Traceback" not in second.stderr
    assert token_of(second.stdout) != token_of(first.stdout)
    assert shim.run("-c", "demo").stdout == second.stdout  # the replacement is served
    assert len(shim.calls()) == 2


# 8. Timeout.
def test_a_hanging_backend_is_killed_and_nothing_cached(shim: Shim) -> None:
    result = shim.run("-c", "demo", "--timeout", "1", FAKE_MODE="sleep:60", timeout=30, expect=124)
    assert result.stdout == b""
    assert b"timed out (--timeout 1 s)" in result.stderr
    assert shim.entries() == []


# 9. Usage errors.
@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        ([], {}, b"no cluster selected"),
        (["-c", "a", "-b", "gcloud"], {}, b"unknown backend 'gcloud'"),
        (["-c", "a"], {"EKS_SHIM_BACKEND": "gcloud"}, b"unknown backend 'gcloud'"),
        (["-c", "a", "--timeout", "soon"], {}, b"--timeout takes a number"),
        (["-c", "a", "--refresh-before", "-5"], {}, b"--refresh-before"),
        (["-c", "a"], {"EKS_SHIM_REFRESH_BEFORE": "x"}, b"EKS_SHIM_REFRESH_BEFORE"),
        (["-c", "a", "--", "aws"], {}, b"--cluster select the EKS command"),
        (["--"], {}, b"nothing after --"),
        (["-c", "a", "--bogus"], {}, b"unrecognized arguments: --bogus"),
        (["-c", "a", "--list", "--purge"], {}, b"not allowed with"),
    ],
)
def test_usage_errors_exit_2_and_never_run_the_backend(
    shim: Shim, args: list[str], env: dict[str, str], message: bytes
) -> None:
    result = shim.run(*args, env=env, expect=2)
    assert result.stdout == b""
    assert message in result.stderr
    assert shim.calls() == []


# Actions: --refresh, --purge, --list.
def test_refresh_fetches_now_and_replaces_the_entry(shim: Shim) -> None:
    first = shim.run("-c", "demo")
    refreshed = shim.run("-c", "demo", "--refresh")
    assert token_of(refreshed.stdout) != token_of(first.stdout)
    assert shim.run("-c", "demo").stdout == refreshed.stdout
    assert len(shim.calls()) == 2


def test_purge_removes_the_selected_entry_or_all(shim: Shim) -> None:
    shim.run("-c", "a")
    shim.run("-c", "a", KUBERNETES_EXEC_INFO=V1)
    shim.run("-c", "b")
    assert len(shim.entries()) == 3
    result = shim.run("--purge", "-c", "a")
    assert result.returncode == 0
    assert b"removed 2" in result.stdout
    assert len(shim.entries()) == 1
    assert shim.run("--purge").returncode == 0
    assert shim.entries() == []
    assert shim.run("--purge").returncode == 0  # nothing there is fine too


def test_list_shows_entries_but_never_a_token(shim: Shim) -> None:
    tokens = [
        token_of(shim.run("-c", "prod", "-p", "admin", "-r", "eu-west-1").stdout),
        token_of(shim.run("--", "aws", "eks", "get-token", "--cluster-name", "dev").stdout),
    ]
    result = shim.run("--list")
    assert result.returncode == 0
    lines = result.stdout.decode().splitlines()
    header = ["CLUSTER/COMMAND", "PROFILE", "REGION", "API", "MADE", "EXPIRES", "LEFT"]
    assert lines[0].split() == header
    assert sorted(line.split()[:5] for line in lines[1:]) == [
        ["dev", "-", "-", "v1beta1", "generic"],
        ["prod", "admin", "eu-west-1", "v1beta1", "eks"],
    ]
    assert all(token not in result.stdout.decode() for token in tokens)
    assert b"k8s-aws-v1" not in result.stdout


def test_list_shows_every_kind_of_entry_in_columns_under_the_header(shim: Shim) -> None:
    """A command the backend table does not know is listed by its words, an entry whose
    metadata cannot be read as `?` and dashes, a damaged entry by its key; LEFT counts
    down to EXPIRES; every cell starts under its header. Purge says the same words."""
    shim.run("-c", "prod")
    (shim.bin / "my-plugin").write_bytes((shim.bin / "aws").read_bytes())
    (shim.bin / "my-plugin").chmod(0o755)
    shim.run("--", "my-plugin", "--flag")  # no backend the shim knows: no cluster to read
    before = set(shim.entries())
    shim.run("-c", "odd")
    (odd,) = set(shim.entries()) - before
    entry = decode_entry(odd.read_bytes())
    assert entry is not None
    odd.write_bytes(encode_entry(Entry(entry.expiry, entry.fetched_at, b"{[", entry.credential)))
    (shim.cache_dir / ("ab" * 32 + ".entry")).write_bytes(b"garbage")
    now = time.time()
    lines = shim.run("--list").stdout.decode().splitlines()
    header = ["CLUSTER/COMMAND", "PROFILE", "REGION", "API", "MADE", "EXPIRES", "LEFT"]
    starts = [lines[0].index(name) for name in header]
    rows = [
        [line[start:end].strip() for start, end in zip(starts, [*starts[1:], None])]
        for line in lines
    ]
    assert rows[0] == header
    damaged, unreadable, generic, prod = sorted(rows[1:])
    assert damaged == ["(damaged entry abababababab...)", "-", "-", "-", "-", "-", "-"]
    assert generic[:5] == ["my-plugin --flag", "-", "-", "v1beta1", "generic"]
    assert prod[:5] == ["prod", "-", "-", "v1beta1", "eks"]
    assert unreadable[:5] == ["?", "-", "-", "-", "-"]
    for row in (generic, prod, unreadable):
        expires = calendar.timegm(time.strptime(row[5], "%Y-%m-%dT%H:%M:%SZ"))
        assert 0 < expires - now <= 841
        assert abs(int(row[6].removesuffix("s")) - (expires - now)) <= 2
    purged = shim.run("--purge", "--", "my-plugin", "--flag").stdout.decode()
    assert purged.splitlines() == [
        "removed: command my-plugin --flag, profile -, region -, api v1beta1, made generic",
        f"removed 1 cache entry from {shim.cache_dir}",
    ]
    result = shim.run("--purge")
    assert result.stdout.decode().splitlines() == [f"removed 3 cache entries from {shim.cache_dir}"]
    assert result.stderr == b""


def test_no_token_in_verbose_logs(shim: Shim) -> None:
    miss = shim.run("-v", "-c", "demo")
    hit = shim.run("-v", "-c", "demo")
    assert b"cache hit" in hit.stderr
    for result in (miss, hit):
        assert token_of(result.stdout).encode() not in result.stderr


def test_version_and_the_second_script_name(shim: Shim) -> None:
    import sys

    result = shim.run("--version")
    assert result.returncode == 0
    assert result.stdout.startswith(b"eks-token-shim ")
    legacy = Path(sys.executable).with_name("eks-get-token-use-cache")
    if not legacy.exists():
        pytest.skip("not installed as a package")
    out = subprocess.run([str(legacy), "-c", "demo"], env=shim.env, capture_output=True, check=True)
    assert token_of(out.stdout)
