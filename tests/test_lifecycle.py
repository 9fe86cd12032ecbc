"""Refresh ahead, stale-if-error and heal, through the token's life.

The clock is moved by rewriting an entry's expiry and fetch time (as if that many
seconds had passed); the fake backend logs every run.
"""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from apiserver import ApiServer, kubeconfig
from helpers import (
    HANG_GUARD,
    Shim,
    accepts_fake_tokens,
    age,
    cached_token,
    exec_info,
    kubectl_version,
    locked,
    needs_proc,
    plant_shim_package,
    require_tool,
    shim_argv,
    token_of,
)

from shim.background import LOG_LIMIT
from shim.entry import decode_entry, encode_entry

FLAG = b"--background-refresh"


def background_children(shim: Shim) -> list[int]:
    """The detached refreshes this test's shims started and that still run (not a process
    a refresh is starting, seen between its fork and its exec with the same command line)."""
    needs_proc()
    parents = {}
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes()
            environ = (proc / "environ").read_bytes()
            stat = (proc / "stat").read_text()
        except OSError:
            continue
        if FLAG in cmdline and str(shim.log).encode() in environ:
            parents[int(proc.name)] = int(stat.rpartition(")")[2].split()[1])
    return [pid for pid, parent in parents.items() if parent not in parents]


def wait_for(condition: Callable[[], object], what: str, limit: float = 60) -> None:
    """A hang guard for detached work, not a timing assertion."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"still waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def stub_cluster(tmp_path: Path) -> Iterator[tuple[str, ApiServer, Path]]:
    """Real kubectl, the API stub (accepting the fake backend's tokens), a kubeconfig
    whose user runs the shim with cluster info on."""
    kubectl = require_tool("kubectl")
    with ApiServer(accepts_fake_tokens) as api:
        config = tmp_path / "kubeconfig"
        config.write_text(
            kubeconfig(api, shim_argv()[0], ["-c", "demo"], provide_cluster_info=True)
        )
        yield kubectl, api, config


# Refresh ahead.
def test_inside_the_ahead_window_the_cached_token_is_served_and_refreshed_behind(
    shim: Shim,
) -> None:
    first = token_of(shim.run("-c", "demo").stdout)
    age(shim, 600)  # 240 s left: inside the default 300 s refresh-ahead window
    served = shim.run("-c", "demo")
    assert served.returncode == 0
    assert token_of(served.stdout) == first  # served at once, from the cache
    wait_for(lambda: len(shim.calls()) == 2 and cached_token(shim) != first, "the refresh")
    wait_for(lambda: not background_children(shim), "the background refresh to exit")
    refreshed = cached_token(shim)
    assert token_of(shim.run("-c", "demo").stdout) == refreshed
    assert len(shim.calls()) == 2
    log = shim.cache_dir / "background.log"
    assert not log.exists() or stat.S_IMODE(log.stat().st_mode) == 0o600


def test_the_refresh_behind_ignores_the_users_python_environment(
    shim: Shim, tmp_path: Path
) -> None:
    """It starts where kubectl runs, with kubectl's environment: neither a `shim` package
    there nor PYTHONPATH may replace the shim's own code."""
    project, marker = tmp_path / "project", tmp_path / "imported"
    plant_shim_package(project, marker)
    first = token_of(shim.run("-c", "demo").stdout)
    age(shim, 600)
    shim.run("-c", "demo", cwd=project, PYTHONPATH=".")
    wait_for(lambda: len(shim.calls()) == 2 and cached_token(shim) != first, "the refresh")
    wait_for(lambda: not background_children(shim), "the background refresh to exit")
    assert not marker.exists()
    assert shim.calls()[1]["pythonpath"] == "."  # the backend's environment is untouched


def test_ten_parallel_calls_in_the_ahead_window_start_one_refresh(shim: Shim) -> None:
    first = token_of(shim.run("-c", "demo").stdout)
    age(shim, 600)
    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(lambda _: shim.run("-c", "demo", FAKE_MODE="sleep:1"), range(10)))
    assert {token_of(result.stdout) for result in results} == {first}
    wait_for(lambda: cached_token(shim) != first, "the refresh")
    wait_for(lambda: not background_children(shim), "the background refreshes to exit")
    assert len(shim.calls()) == 2


def test_no_refresh_storm_when_tokens_live_shorter_than_the_ahead_window(shim: Shim) -> None:
    shim.run("-c", "demo", FAKE_LIFETIME="240")  # 240 s < the 300 s refresh-ahead window
    for _ in range(3):
        assert shim.run("-c", "demo").returncode == 0
    assert len(shim.calls()) == 1
    assert not list(shim.cache_dir.glob("*.ahead"))
    age(shim, 130)  # past half its life: now it is due
    shim.run("-c", "demo")
    wait_for(lambda: len(shim.calls()) == 2, "the refresh")


def test_refresh_ahead_zero_disables_it(shim: Shim) -> None:
    shim.run("-c", "demo")
    age(shim, 600)
    assert shim.run("-c", "demo", "--refresh-ahead", "0").returncode == 0
    assert shim.run("-c", "demo", EKS_SHIM_REFRESH_AHEAD="0").returncode == 0
    assert not list(shim.cache_dir.glob("*.ahead"))
    assert len(shim.calls()) == 1


def test_refresh_ahead_from_the_command_line_wins_over_the_environment(shim: Shim) -> None:
    shim.run("-c", "demo")
    age(shim, 600)  # 240 s left
    served = shim.run("-c", "demo", "--refresh-ahead", "200", EKS_SHIM_REFRESH_AHEAD="0")
    assert served.returncode == 0
    assert not list(shim.cache_dir.glob("*.ahead"))  # 240 s left is outside a 200 s window
    shim.run("-c", "demo", "--refresh-ahead", "250", EKS_SHIM_REFRESH_AHEAD="0")
    wait_for(lambda: len(shim.calls()) == 2, "the refresh")
    wait_for(lambda: not background_children(shim), "the background refresh to exit")


@pytest.mark.parametrize(
    ("kind", "reason"), [("fifo", "not a regular file"), ("dir", "Is a directory")]
)
def test_a_background_refresh_that_cannot_lock_says_why_in_its_log(
    shim: Shim, kind: str, reason: str
) -> None:
    shim.run("-c", "demo")
    age(shim, 600)
    (entry,) = shim.entries()
    lock = entry.with_suffix(".lock")
    lock.unlink()
    if kind == "fifo":
        os.mkfifo(lock, 0o600)
    else:
        lock.mkdir()
    assert shim.run("-c", "demo").stderr == b""  # served; the refresh ahead cannot lock
    log = shim.cache_dir / "background.log"
    wait_for(lambda: log.exists() and b"cannot lock" in log.read_bytes(), "the log")
    wait_for(lambda: not background_children(shim), "the background refresh to exit")
    assert f"background refresh: cannot lock {lock}: {reason}\n" in log.read_text()
    assert len(shim.calls()) == 1


def test_a_failing_background_refresh_keeps_the_entry_and_logs_quietly(shim: Shim) -> None:
    shim.run("-c", "demo")
    age(shim, 600)
    (entry,) = shim.entries()
    before = entry.read_bytes()
    served = shim.run("-c", "demo", FAKE_MODE="fail")
    assert served.returncode == 0
    assert served.stderr == b""  # the failure is for the log, not the terminal
    log = shim.cache_dir / "background.log"
    wait_for(lambda: log.exists() and b"background refresh" in log.read_bytes(), "the log")
    assert b"failed with exit code 3" in log.read_bytes()
    assert b"ExpiredToken" in log.read_bytes()  # the backend's own stderr is there too
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert entry.read_bytes() == before
    shim.run("-c", "demo", FAKE_MODE="fail")  # within RETRY_AFTER: no second attempt
    wait_for(lambda: not background_children(shim), "the background refresh to exit")
    assert len(shim.calls()) == 2


@pytest.mark.real_kubectl
def test_kubectl_does_not_wait_for_a_background_refresh(
    shim: Shim, stub_cluster: tuple[str, ApiServer, Path]
) -> None:
    kubectl, _, config = stub_cluster
    shim.run("-c", "demo")
    age(shim, 600)
    env = dict(shim.env, FAKE_MODE="sleep:60")
    # Were the pipes inherited by the refresh, kubectl would wait for its 60 s sleep.
    result = kubectl_version(kubectl, env, config, timeout=30)
    assert result.returncode == 0, result.stderr
    assert background_children(shim)  # the refresh is still running, detached
    for pid in background_children(shim):
        os.kill(pid, signal.SIGKILL)
    for call in shim.calls()[1:]:
        os.kill(int(call["pid"]), signal.SIGKILL)


# Stale-if-error.
@pytest.mark.parametrize(
    ("mode", "args"), [("fail", []), ("garbage", []), ("sleep:30", ["--timeout", "1"])]
)
def test_a_failed_refresh_serves_the_still_valid_token(
    shim: Shim, mode: str, args: list[str]
) -> None:
    first = token_of(shim.run("-c", "demo").stdout)
    age(shim, 800)  # 40 s left: inside the 60 s refresh-before window, not expired
    (entry,) = shim.entries()
    before = entry.read_bytes()
    result = shim.run("-c", "demo", *args, FAKE_MODE=mode)
    assert result.returncode == 0
    assert token_of(result.stdout) == first
    left = re.search(rb"serving the cached credential, valid for (\d+) s more", result.stderr)
    assert left is not None
    assert 30 <= int(left.group(1)) <= 40  # 840 s of life, 800 gone
    assert entry.read_bytes() == before


def test_a_hanging_refresh_serves_the_valid_token_within_refresh_wait(shim: Shim) -> None:
    """With the defaults (--timeout 60, --refresh-before 60, --refresh-wait 5): a VPN that
    dropped must not cost a minute and then the token that was valid all along."""
    first = token_of(shim.run("-c", "demo").stdout)
    age(shim, 840 - 49)  # 49 s left
    began = time.monotonic()
    result = shim.run("-c", "demo", FAKE_MODE="sleep:10")
    assert time.monotonic() - began < HANG_GUARD  # (not the 60 s of --timeout)
    assert token_of(result.stdout) == first
    assert b"timed out (--refresh-wait 5 s) and was killed: serving the cached credential" in (
        result.stderr
    )
    assert b"refreshing it in the background" in result.stderr
    # The refresh goes on in the background, with the whole --timeout.
    wait_for(lambda: cached_token(shim) != first, "the background refresh", limit=HANG_GUARD)
    wait_for(lambda: not background_children(shim), "the background refresh to exit")
    assert token_of(shim.run("-c", "demo").stdout) == cached_token(shim)


def test_another_shims_hanging_fetch_costs_a_valid_token_no_more_than_refresh_wait(
    shim: Shim,
) -> None:
    first = token_of(shim.run("-c", "demo").stdout)
    age(shim, 840 - 49)
    (entry,) = shim.entries()
    with locked(str(entry.with_suffix(".lock")), 0):
        began = time.monotonic()
        result = shim.run("-c", "demo", "--refresh-wait", "1")
        assert time.monotonic() - began < HANG_GUARD
    assert token_of(result.stdout) == first
    assert b"another shim held" in result.stderr
    assert b"serving the cached credential" in result.stderr
    assert len(shim.calls()) == 1  # the holder is refreshing: no second backend


def test_refresh_wait_zero_refreshes_a_still_valid_token_only_in_the_background(
    shim: Shim,
) -> None:
    first = token_of(shim.run("-c", "demo").stdout)
    age(shim, 840 - 49)
    result = shim.run("-c", "demo", EKS_SHIM_REFRESH_WAIT="0")
    assert token_of(result.stdout) == first
    assert b"--refresh-wait is 0 s: serving the cached credential" in result.stderr
    wait_for(lambda: cached_token(shim) != first, "the background refresh", limit=HANG_GUARD)


def test_a_token_about_to_end_within_refresh_wait_waits_for_its_backend(shim: Shim) -> None:
    """Serving a token with less than --refresh-wait left would serve an expired one by the
    time the wait is over: the backend gets the whole deadline, as for an expired entry."""
    first = token_of(shim.run("-c", "demo").stdout)
    age(shim, 840 - 3)  # 3 s left
    result = shim.run("-c", "demo", FAKE_MODE="sleep:6")
    assert token_of(result.stdout) != first
    assert b"serving the cached credential" not in result.stderr


def test_a_client_certificate_asked_for_again_is_served_without_a_token_check(
    shim: Shim,
) -> None:
    """Heal checks a token; a certificate has none to check: the cached one is served."""
    cluster = {"server": "https://127.0.0.1:9"}  # nothing listens: no check may be tried
    info = json.dumps(
        {"apiVersion": "client.authentication.k8s.io/v1beta1", "spec": {"cluster": cluster}}
    )
    first = shim.run("-c", "demo", FAKE_MODE="cert", KUBERNETES_EXEC_INFO=info)
    assert b"clientCertificateData" in first.stdout
    again = shim.run("-c", "demo", FAKE_MODE="cert", KUBERNETES_EXEC_INFO=info)  # same parent
    assert again.stdout == first.stdout
    assert len(shim.calls()) == 1


def test_a_failed_refresh_of_an_expired_token_reaches_kubectl(shim: Shim) -> None:
    shim.run("-c", "demo")
    age(shim, 900)  # expired
    result = shim.run("-c", "demo", FAKE_MODE="fail", expect=3)
    assert result.stdout == b""


@pytest.mark.real_kubectl
def test_kubectl_gets_the_old_token_when_the_refresh_fails(
    shim: Shim, stub_cluster: tuple[str, ApiServer, Path]
) -> None:
    kubectl, api, config = stub_cluster
    first = token_of(shim.run("-c", "demo").stdout)
    age(shim, 800)  # 40 s left: the refresh is due, the token still valid
    result = kubectl_version(kubectl, dict(shim.env, FAKE_MODE="fail"), config)
    assert result.returncode == 0, result.stderr
    assert b"serving the cached credential" in result.stderr  # kubectl shows plugin stderr
    assert set(api.tokens) == {first}


# Heal a rejected token.
def test_the_same_process_asking_again_for_a_rejected_token_heals_it(shim: Shim) -> None:
    rejected: set[str] = set()
    with ApiServer(lambda token: token not in rejected) as api:
        info = exec_info(api)
        first = token_of(shim.run("-c", "demo", KUBERNETES_EXEC_INFO=info).stdout)
        rejected.add(first)  # the role session behind it ended
        healed = shim.run("-c", "demo", KUBERNETES_EXEC_INFO=info)
        assert healed.returncode == 0
        assert token_of(healed.stdout) != first
        assert b"rejected the cached token (401)" in healed.stderr
        assert cached_token(shim) == token_of(healed.stdout)
        again = shim.run("-c", "demo", KUBERNETES_EXEC_INFO=info)  # verified, accepted
        assert again.stdout == healed.stdout
    assert len(shim.calls()) == 2
    assert api.tokens == [first, token_of(healed.stdout)]


def test_a_stalled_api_server_cannot_hold_a_heal_check(shim: Shim) -> None:
    """The API server trickles its 401; the check gives up by its deadline and the
    cached token is served (before: each byte reset a 2 s timeout, and the call hung on)."""
    with ApiServer(lambda token: False, trickle=1.0) as api:
        info = exec_info(api)
        first = shim.run("-c", "demo", KUBERNETES_EXEC_INFO=info).stdout
        started = time.monotonic()
        again = shim.run("-c", "demo", KUBERNETES_EXEC_INFO=info, timeout=HANG_GUARD)
        took = time.monotonic() - started
    assert again.stdout == first
    assert took < 8, f"the heal check held the call {took:.1f} s"
    assert len(shim.calls()) == 1


def test_asked_twice_for_an_accepted_token_no_refresh(shim: Shim) -> None:
    with ApiServer(lambda token: True) as api:
        info = exec_info(api)
        outputs = {shim.run("-c", "demo", KUBERNETES_EXEC_INFO=info).stdout for _ in range(3)}
    assert len(outputs) == 1
    assert len(shim.calls()) == 1
    assert len(api.tokens) == 2  # the second and third ask were verified


def test_without_cluster_info_asked_again_serves_the_cache(shim: Shim) -> None:
    for _ in range(3):
        shim.run("-c", "demo", KUBERNETES_EXEC_INFO=exec_info(None))
    assert len(shim.calls()) == 1


def test_a_plain_hit_is_never_verified(shim: Shim) -> None:
    with ApiServer(lambda token: False) as api:
        shim.run("-c", "demo", KUBERNETES_EXEC_INFO=exec_info(api))
        # Another process asks (the hot path's pid check): no verification, no refresh.
        argv = [*shim_argv(), "-c", "demo"]
        script = f"import subprocess, sys; sys.exit(subprocess.run({argv!r}).returncode)"
        env = dict(shim.env, KUBERNETES_EXEC_INFO=exec_info(api))
        subprocess.run(["python3", "-c", script], env=env, check=True, capture_output=True)
    assert api.tokens == []
    assert len(shim.calls()) == 1


@pytest.mark.real_kubectl
def test_kubectl_heals_a_rejected_token(shim: Shim, tmp_path: Path) -> None:
    kubectl = require_tool("kubectl")
    seen: list[str] = []

    def reject_the_first_token(token: str) -> bool:
        if not seen:
            seen.append(token)
        return token != seen[0]

    with ApiServer(reject_the_first_token) as api:
        config = tmp_path / "kubeconfig"
        config.write_text(
            kubeconfig(api, shim_argv()[0], ["-c", "demo"], provide_cluster_info=True)
        )
        kubectl_version(kubectl, shim.env, config)  # may fail: no retry after a 401 (client-go)
        second = kubectl_version(kubectl, shim.env, config)
        assert second.returncode == 0, second.stderr
        runs = len(shim.calls())
        for _ in range(3):
            assert kubectl_version(kubectl, shim.env, config).returncode == 0
    assert len(shim.calls()) == runs == 2


@pytest.mark.real_kubectl
@pytest.mark.parametrize("path", ["hot path", "full CLI"])
def test_healthy_kubectl_runs_never_verify(
    shim: Shim, stub_cluster: tuple[str, ApiServer, Path], path: str
) -> None:
    # With cluster info on, the dispatcher's two asks per run must not look like a 401 retry.
    # (EKS_SHIM_DEBUG=1 sends every call through the full CLI, which serves hits too.)
    kubectl, api, config = stub_cluster
    env = {**shim.env, "EKS_SHIM_DEBUG": "1"} if path == "full CLI" else shim.env
    for _ in range(5):
        result = kubectl_version(kubectl, env, config)
        assert result.returncode == 0, result.stderr
    assert len(shim.calls()) == 1
    assert api.agents
    assert not [agent for agent in api.agents if agent == "eks-token-shim"]


def test_every_file_of_a_refresh_ahead_is_0600_whatever_the_umask(shim: Shim) -> None:
    """Entry, lock, .served note, .ahead marker, background log: private even under umask 0,
    and made private again when something left them open to others."""
    info = json.dumps({"apiVersion": "client.authentication.k8s.io/v1beta1", "kind": "x"})
    old = os.umask(0)
    try:
        first = token_of(shim.run("-c", "demo", KUBERNETES_EXEC_INFO=info).stdout)
        (shim.cache_dir / "background.log").write_bytes(b"")
        for path in shim.cache_dir.iterdir():
            if path.suffix != ".entry":  # (an entry others can read is not served)
                path.chmod(0o644)
        age(shim, 600)  # into the ahead window: served, and refreshed in the background
        shim.run("-c", "demo", KUBERNETES_EXEC_INFO=info)
        wait_for(lambda: cached_token(shim) != first, "the refresh")
        wait_for(lambda: not background_children(shim), "the background refresh to exit")
    finally:
        os.umask(old)
    suffixes = {path.suffix for path in shim.cache_dir.iterdir()}
    assert suffixes == {".entry", ".lock", ".served", ".ahead", ".log"}
    for path in shim.cache_dir.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(shim.cache_dir.stat().st_mode) == 0o700


@pytest.mark.parametrize(("size", "kept"), [(LOG_LIMIT, True), (LOG_LIMIT + 1, False)])
def test_the_background_log_is_emptied_once_past_its_limit(
    shim: Shim, size: int, kept: bool
) -> None:
    first = token_of(shim.run("-c", "demo").stdout)
    log = shim.cache_dir / "background.log"
    log.write_bytes(b"x" * size)
    log.chmod(0o600)
    age(shim, 600)
    shim.run("-c", "demo")  # in the ahead window: a background refresh, whose stderr is the log
    wait_for(lambda: cached_token(shim) != first, "the refresh")
    wait_for(lambda: not background_children(shim), "the background refresh to exit")
    if kept:
        assert log.read_bytes().startswith(b"x" * size)
    else:
        assert not log.read_bytes().startswith(b"x")  # emptied, then written by the refresh


def test_a_background_refresh_never_writes_into_a_cache_dir_made_unsafe(shim: Shim) -> None:
    """The dir may become group-writable between serving and the detached child's start:
    the child (the hidden --background-refresh, as background.start runs it) must not fetch
    into it."""
    shim.run("-c", "demo")
    age(shim, 600)
    (entry,) = shim.entries()
    before = entry.read_bytes()
    shim.cache_dir.chmod(0o770)
    try:
        shim.run(FLAG.decode(), "-c", "demo")
    finally:
        shim.cache_dir.chmod(0o700)
    assert len(shim.calls()) == 1
    assert entry.read_bytes() == before


@pytest.mark.parametrize("case", ["no entry", "fresh entry", "lock is a directory"])
def test_a_background_refresh_with_nothing_to_do_runs_no_backend(shim: Shim, case: str) -> None:
    """Run as background.start runs it, when the entry was purged, was refreshed by
    another process meanwhile, or cannot be locked."""
    shim.run("-c", "demo")
    if case == "no entry":
        assert b"removed 1" in shim.run("--purge").stdout
    elif case == "lock is a directory":
        age(shim, 600)
        lock = next(shim.cache_dir.glob("*.lock"))
        lock.unlink()
        lock.mkdir()
    result = shim.run(FLAG.decode(), "-c", "demo")
    assert len(shim.calls()) == 1
    if case == "lock is a directory":
        assert b"background refresh: cannot lock" in result.stderr


def test_a_failed_background_refresh_keeps_the_entry_and_says_why(shim: Shim) -> None:
    shim.run("-c", "demo")
    age(shim, 600)
    (entry,) = shim.entries()
    before = entry.read_bytes()
    result = shim.run(FLAG.decode(), "-c", "demo", FAKE_MODE="fail")
    assert len(shim.calls()) == 2
    assert b"exit code 3; the cached entry stays" in result.stderr
    # background.log is read long after the fact: every line says when.
    stamped = rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ eks-token-shim: error: background refresh: "
    assert re.search(stamped, result.stderr, re.MULTILINE)
    assert entry.read_bytes() == before
    assert not (shim.cache_dir / "crash.log").exists()


@pytest.mark.parametrize("credential", [b"not json", b"[]", b'{"status": 1}', b'{"status": {}}'])
def test_an_entry_with_no_token_to_check_is_served_when_asked_for_again(
    shim: Shim, credential: bytes
) -> None:
    """An entry of the right form whose credential is not what the shim caches (written by
    hand, or by a future version): a repeat ask serves it as it is, as any hit would."""
    info = json.dumps(
        {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "spec": {"cluster": {"server": "https://127.0.0.1:9"}},
        }
    )
    shim.run("-c", "demo", KUBERNETES_EXEC_INFO=info)
    (path,) = shim.entries()
    entry = decode_entry(path.read_bytes())
    assert entry is not None
    entry.credential = credential
    path.write_bytes(encode_entry(entry))
    again = shim.run("-c", "demo", KUBERNETES_EXEC_INFO=info)  # the same parent: asked again
    assert again.stdout == credential
    assert len(shim.calls()) == 1


def test_no_refresh_ahead_starts_without_its_marker(shim: Shim) -> None:
    """The .ahead marker's mtime is the 30 s guard: if it cannot be written (here a
    directory, made long ago), no refresh starts, or every call would start one."""
    first = token_of(shim.run("-c", "demo").stdout)
    (entry,) = shim.entries()
    marker = entry.with_suffix(".ahead")
    marker.mkdir()
    long_ago = time.time() - 3600
    os.utime(marker, (long_ago, long_ago))
    age(shim, 600)
    for _ in range(3):
        assert token_of(shim.run("-c", "demo").stdout) == first
    wait_for(lambda: not background_children(shim), "any background refresh to exit")
    assert len(shim.calls()) == 1


def test_a_refresh_ahead_runs_detached_from_kubectl(shim: Shim) -> None:
    """kubectl waits for every holder of the plugin's stdout and stderr, and a
    Ctrl-C goes to its whole session: the child has its own session, /dev/null for stdin
    and stdout, and the cache dir's background.log for stderr."""
    first = token_of(shim.run("-c", "demo").stdout)
    age(shim, 600)
    assert token_of(shim.run("-c", "demo", FAKE_MODE="sleep:3").stdout) == first
    wait_for(lambda: background_children(shim), "the background refresh to start")
    (child,) = background_children(shim)
    links = [os.readlink(f"/proc/{child}/fd/{fd}") for fd in (0, 1, 2)]
    assert links == [os.devnull, os.devnull, str(shim.cache_dir / "background.log")]
    assert os.getsid(child) == child != os.getsid(0)
    wait_for(lambda: not background_children(shim), "the background refresh to exit")


def test_a_background_refresh_never_runs_while_another_process_holds_the_lock(
    shim: Shim,
) -> None:
    import fcntl

    shim.run("-c", "demo")
    age(shim, 600)  # inside the ahead window
    (entry,) = shim.entries()
    lock = entry.with_suffix(".lock")
    with open(lock, "a+b") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another shim is fetching
        shim.run("-c", "demo")  # serves, and starts a background refresh
        wait_for(lambda: list(shim.cache_dir.glob("*.ahead")), "the refresh to start")
        time.sleep(0.5)  # let it find the lock busy
        wait_for(lambda: not background_children(shim), "the background refresh to exit")
    assert len(shim.calls()) == 1


def test_a_failing_background_refresh_is_retried_only_after_30_seconds(shim: Shim) -> None:
    shim.run("-c", "demo")
    age(shim, 600)
    (entry,) = shim.entries()
    marker = entry.with_suffix(".ahead")
    marker.touch()
    long_ago = time.time() - 3600
    os.utime(marker, (long_ago, long_ago))  # the last start was an hour ago: one is due
    for _ in range(3):
        shim.run("-c", "demo", FAKE_MODE="fail")
        wait_for(lambda: not background_children(shim), "the background refresh to exit")
    assert len(shim.calls()) == 2  # the first fetch, and one background start in 30 s
    assert time.time() - marker.stat().st_mtime < 60


def test_a_marker_from_the_future_does_not_turn_refresh_ahead_off(shim: Shim) -> None:
    """The clock was set back after a refresh ahead started: its marker's mtime is in the
    future, which says nothing about when the last start was."""
    shim.run("-c", "demo")
    age(shim, 600)
    (entry,) = shim.entries()
    marker = entry.with_suffix(".ahead")
    marker.touch()
    later = time.time() + 3600
    os.utime(marker, (later, later))
    shim.run("-c", "demo")
    wait_for(lambda: len(shim.calls()) == 2, "the refresh ahead")
    wait_for(lambda: not background_children(shim), "the background refresh to exit")


def test_a_rejected_token_is_dropped_even_when_the_new_fetch_fails(shim: Shim) -> None:
    with ApiServer(lambda token: False) as api:
        info = exec_info(api)
        shim.run("-c", "demo", KUBERNETES_EXEC_INFO=info)
        failed = shim.run("-c", "demo", KUBERNETES_EXEC_INFO=info, FAKE_MODE="fail", expect=3)
        assert b"rejected the cached token (401)" in failed.stderr
        assert failed.stdout == b""
    assert shim.entries() == []  # the rejected token is never served again
    shim.run("-c", "demo")
    assert len(shim.calls()) == 3


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
