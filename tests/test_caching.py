"""End to end: what is cached, under which key, what is served, and what never is."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
from helpers import (
    KUBECONFIG_ENV,
    V1,
    WRAPPED,
    Shim,
    age,
    bug_in,
    one_warning,
    shim_argv,
    token_of,
)

from shim import cli
from shim.entry import decode_entry, encode_entry
from shim.files import MAX_READ


# Sane lifetimes.
def rewrite(shim: Shim, **fields: int) -> None:
    (path,) = shim.entries()
    entry = decode_entry(path.read_bytes())
    assert entry is not None
    for name, value in fields.items():
        setattr(entry, name, value)
    path.write_bytes(encode_entry(entry))


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


# The cache key: what differs never shares an entry; what is the same does.
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


# Validate before caching.
def test_a_failed_backend_prints_nothing_and_caches_nothing(shim: Shim) -> None:
    result = shim.run("-c", "demo", FAKE_MODE="fail", expect=3)
    assert result.stdout == b""
    assert b"failed with exit code 3" in result.stderr
    assert b"aws eks get-token --cluster-name demo" in result.stderr  # names the command
    assert b"Traceback" not in result.stderr
    assert shim.entries() == []
    assert list(shim.cache_dir.glob("*.lock")) == []  # nor a lock of a key with no entry
    assert shim.run("-c", "demo").returncode == 0  # the next good answer is not shadowed
    assert len(shim.calls()) == 2
    assert len(list(shim.cache_dir.glob("*.lock"))) == 1  # beside its entry


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("garbage", b"not a JSON object (kubectl reads it as YAML)"),
        ("empty", b"the output is empty"),
        ("notoken", b"status has no token and no client certificate and key"),
    ],
)
def test_output_that_is_no_credential_goes_to_kubectl_as_it_came_and_is_not_cached(
    shim: Shim, mode: str, message: bytes
) -> None:
    """kubectl then says what it says without the shim; the shim says why on stderr."""
    result = shim.run("-c", "demo", FAKE_MODE=mode)
    if mode == "notoken":
        assert json.loads(result.stdout)["status"].keys() == {"expirationTimestamp"}
    else:
        assert result.stdout == {"garbage": b"<html>Gateway Timeout</html>\n", "empty": b""}[mode]
    assert message + b": passed to kubectl as it came, not cached" in result.stderr
    assert b"aws eks get-token --cluster-name demo" in result.stderr  # names the command
    assert b"Traceback" not in result.stderr
    assert shim.entries() == []
    assert shim.run("-c", "demo").returncode == 0  # the next good answer is not shadowed
    assert len(shim.calls()) == 2


def test_no_expiry_is_printed_but_never_cached(shim: Shim) -> None:
    for _ in range(2):
        result = shim.run("-c", "demo", FAKE_MODE="noexpiry")
        assert result.returncode == 0
        assert b"no expirationTimestamp" in result.stderr
    assert len(shim.calls()) == 2
    assert shim.entries() == []
    assert list(shim.cache_dir.glob("*.lock")) == []


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


# Freshness: served while now < expiry - refresh_before.
def test_refresh_before_from_the_environment(shim: Shim) -> None:
    shim.run("-c", "demo", FAKE_LIFETIME="300")
    shim.run("-c", "demo", EKS_SHIM_REFRESH_BEFORE="200")
    assert len(shim.calls()) == 1
    shim.run("-c", "demo", EKS_SHIM_REFRESH_BEFORE="400")
    assert len(shim.calls()) == 2


# Damage.
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


# --refresh.
def test_refresh_fetches_now_and_replaces_the_entry(shim: Shim) -> None:
    first = shim.run("-c", "demo")
    refreshed = shim.run("-c", "demo", "--refresh")
    assert token_of(refreshed.stdout) != token_of(first.stdout)
    assert shim.run("-c", "demo").stdout == refreshed.stdout
    assert len(shim.calls()) == 2


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


# The identity of other plugins.
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


def test_eks_mode_and_the_same_wrapped_command_share_one_entry(shim: Shim) -> None:
    first = shim.run("-c", "prod", "-r", "eu-west-1", "-p", "ops").stdout
    assert shim.run(*WRAPPED, env=KUBECONFIG_ENV).stdout == first
    assert len(shim.calls()) == 1


@pytest.mark.parametrize("stdout", ["a pipe nobody reads", "closed"])
@pytest.mark.parametrize("path", ["hit", "miss"])
def test_kubectl_gone_before_the_credential_is_written(shim: Shim, path: str, stdout: str) -> None:
    """stdout's reader is gone (a killed kubectl), or stdout is not even open: exit 1 on
    either path, no traceback, no crash log (it is no bug)."""
    if path == "hit":
        shim.run("-c", "demo")
    argv = [*shim_argv(), "-c", "demo"]
    read_end, write_end = os.pipe()
    os.close(read_end)
    if stdout == "closed":
        argv = ["sh", "-c", 'exec "$@" >&-', "sh", *argv]
    try:
        result = subprocess.run(
            argv, env=shim.env, stdout=write_end, stderr=subprocess.PIPE, timeout=60, check=False
        )
    finally:
        os.close(write_end)
    assert result.returncode == 1, result.stderr.decode()
    assert result.stderr == b""
    assert not (shim.cache_dir / "crash.log").exists()
    assert len(shim.entries()) == 1  # a miss still cached what it fetched
    for other in set(shim.cache_dir.iterdir()) - set(shim.entries()):
        assert b"k8s-aws-v1" not in other.read_bytes(), other.name  # (no file took fd 1)


def test_an_unreadable_exec_info_gets_a_warning_and_the_default(shim: Shim) -> None:
    nested = "[" * 50_000 + "]" * 50_000  # JSON too deep for any parser's recursion
    result = shim.run("-c", "demo", KUBERNETES_EXEC_INFO=nested)
    assert json.loads(result.stdout)["apiVersion"] == "client.authentication.k8s.io/v1beta1"
    assert "KUBERNETES_EXEC_INFO holds no readable apiVersion" in one_warning(result.stderr)


# Bytes in, bytes out.
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


def test_a_bug_while_caching_costs_a_warning_not_the_credential(
    shim: Shim, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    from shim import meta

    bug_in(monkeypatch, meta, "encode", ValueError)
    shim.as_this_process(monkeypatch)
    assert cli.run(["-c", "demo"]) == 0
    captured = capfd.readouterr()
    assert token_of(captured.out.encode())
    assert captured.err.splitlines() == [
        "eks-token-shim: warning: could not cache the credential (ValueError): printed, not cached"
    ]
    assert shim.entries() == []
