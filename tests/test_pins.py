"""Behaviours that mutants of the credential path changed while the suite still passed
(the mutation campaign's examples): each test here pins one of them, through the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest
from apiserver import ApiServer
from conftest import Shim, age, shim_argv, token_of
from test_lifecycle import background_children, exec_info, wait_for

from shim.credential import validate

# Written out, not drawn from shim.keys: the list itself is the behaviour pinned here.
IDENTITY_VARIABLES = [
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_ACCESS_KEY_ID",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_STS_REGIONAL_ENDPOINTS",
    "AWS_VAULT",
    "CLOUDSDK_CONFIG",
    "CLOUDSDK_ACTIVE_CONFIG_NAME",
    "CLOUDSDK_CORE_ACCOUNT",
    "CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT",
    "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE",
    "CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "AZURE_CONFIG_DIR",
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_AUTHORITY_HOST",
    "AAD_LOGIN_METHOD",
    "AAD_SERVICE_PRINCIPAL_CLIENT_ID",
    "AAD_SERVICE_PRINCIPAL_CLIENT_CERTIFICATE",
    "AAD_USER_PRINCIPAL_NAME",
]


def test_every_identity_variable_tells_identities_apart(shim: Shim) -> None:
    """One backend run per value of each variable, and a second run of a value is a hit."""
    command = ["--", "aws-iam-authenticator", "token", "-i", "demo"]
    runs = 0
    for name in IDENTITY_VARIABLES:
        for value in ("one", "two"):
            shim.run(*command, env={name: value})
        shim.run(*command, env={name: "one"})
        runs += 2
        assert len(shim.calls()) == runs, f"{name} is not in the cache key"


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


def test_a_repeated_option_means_its_last_value(shim: Shim) -> None:
    a = shim.run("-c", "a").stdout
    b = shim.run("-c", "a", "-c", "b").stdout  # as argparse: the last one wins
    assert token_of(b) != token_of(a)
    assert shim.calls()[-1]["argv"][-3] == "b"
    assert shim.run("-c", "a", "-c", "b").stdout == b  # and the hit path agrees


def test_an_entry_owned_by_another_user_is_not_served(shim: Shim) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to give a file to another uid")
    first = shim.run("-c", "demo").stdout
    (entry,) = shim.entries()
    os.chown(entry, 65534, 65534)  # still 0600, still in our 0700 directory
    assert shim.run("-c", "demo").stdout != first
    assert len(shim.calls()) == 2


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


def rewrite_served(shim: Shim, seconds_ago: float) -> None:
    (served,) = shim.cache_dir.glob("*.served")
    stamp, _, who = served.read_text().partition(" ")
    served.write_text(f"{float(stamp) - seconds_ago:.3f} {who}")


@pytest.mark.parametrize(("seconds_ago", "verified"), [(9.5, True), (10.5, False)])
def test_the_repeat_ask_window_is_ten_seconds(
    shim: Shim, seconds_ago: float, verified: bool
) -> None:
    with ApiServer(lambda token: True) as api:
        info = exec_info(api)
        shim.run("-c", "demo", KUBERNETES_EXEC_INFO=info)
        rewrite_served(shim, seconds_ago)
        shim.run("-c", "demo", KUBERNETES_EXEC_INFO=info)
    assert len(api.tokens) == (1 if verified else 0)


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


@pytest.mark.parametrize(
    "status",
    [
        {"clientCertificateData": "cert", "clientKeyData": ""},
        {"clientCertificateData": "", "clientKeyData": "key"},
        {"clientCertificateData": "cert"},
        {"token": ""},
    ],
)
def test_a_credential_needs_a_token_or_both_halves_of_a_certificate(status: dict[str, str]) -> None:
    output = json.dumps(
        {
            "kind": "ExecCredential",
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "status": {**status, "expirationTimestamp": "2099-01-01T00:00:00Z"},
        }
    ).encode()
    assert isinstance(validate(output, "client.authentication.k8s.io/v1beta1"), list)


def test_a_certificate_and_key_without_a_token_is_a_credential() -> None:
    output = json.dumps(
        {
            "kind": "ExecCredential",
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "status": {"clientCertificateData": "c", "clientKeyData": "k"},
        }
    ).encode()
    assert not isinstance(validate(output, "client.authentication.k8s.io/v1beta1"), list)


@pytest.mark.parametrize(
    "status",
    [
        {"token": 5},
        {"clientCertificateData": 5, "clientKeyData": "k"},
        {"clientCertificateData": "c", "clientKeyData": 5},
    ],
)
def test_token_and_certificate_must_be_strings(status: dict[str, object]) -> None:
    """kubectl decodes them into Go strings: a number there is an error, not a credential."""
    output = json.dumps(
        {
            "kind": "ExecCredential",
            "apiVersion": "client.authentication.k8s.io/v1",
            "status": status,
        }
    ).encode()
    assert isinstance(validate(output, "client.authentication.k8s.io/v1"), list)


def test_problems_name_the_values_shortly_and_never_the_token() -> None:
    output = json.dumps(
        {"kind": "x" * 100, "apiVersion": "example.com/v1", "status": {"token": "secret-token"}}
    ).encode()
    problems = validate(output, "client.authentication.k8s.io/v1")
    assert isinstance(problems, list)
    assert problems[0] == f'kind is "{"x" * 56}..., not "ExecCredential"'  # 60 characters
    assert problems[1] == ('apiVersion "example.com/v1" is not client.authentication.k8s.io/*')
    assert all("secret-token" not in problem for problem in problems)
    missing = validate(b'{"status": {"token": "t"}}', "client.authentication.k8s.io/v1")
    assert missing == [
        'kind is missing, not "ExecCredential"',
        "apiVersion missing is not client.authentication.k8s.io/*",
    ]
    exactly = json.dumps({"kind": "y" * 58, "apiVersion": "client.authentication.k8s.io/v1"})
    exact = validate(exactly.encode(), "client.authentication.k8s.io/v1")
    assert isinstance(exact, list)
    assert exact[0] == f'kind is "{"y" * 58}", not "ExecCredential"'  # 60 characters: whole
    longer = json.dumps({"kind": "z" * 59, "apiVersion": "client.authentication.k8s.io/v1"})
    cut = validate(longer.encode(), "client.authentication.k8s.io/v1")
    assert isinstance(cut, list)
    assert cut[0] == f'kind is "{"z" * 56}..., not "ExecCredential"'  # 61 characters: cut


def test_no_served_note_unless_kubectl_asks(shim: Shim) -> None:
    shim.run("-c", "demo")  # from a shell: no KUBERNETES_EXEC_INFO
    assert list(shim.cache_dir.glob("*.served")) == []


def test_a_damaged_served_note_is_no_repeat_ask(shim: Shim) -> None:
    with ApiServer(lambda token: False) as api:
        info = exec_info(api)
        first = shim.run("-c", "demo", KUBERNETES_EXEC_INFO=info).stdout
        (served,) = shim.cache_dir.glob("*.served")
        who = served.read_text().partition(" ")[2]
        served.write_text(f"not-a-time {who}")
        assert shim.run("-c", "demo", KUBERNETES_EXEC_INFO=info).stdout == first
    assert api.tokens == []  # not verified: the note said nothing readable


def test_without_proc_the_asking_process_is_its_pid_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """macOS has no /proc/PID/exe (and a parent may be gone): the identity is the pid."""
    from shim import lookup

    def no_proc(path: str) -> str:
        raise FileNotFoundError(path)

    monkeypatch.setattr(os, "readlink", no_proc)
    assert lookup.client_identity() == f"{os.getppid()} "


def test_the_debug_variable_makes_a_hit_explain_itself(shim: Shim) -> None:
    shim.run("-c", "demo")
    hit = shim.run("-c", "demo", EKS_SHIM_DEBUG="1")
    assert b"eks-token-shim: debug: cache hit" in hit.stderr
    assert len(shim.calls()) == 1


@pytest.mark.parametrize("path", ["hit", "miss"])
def test_kubectl_gone_before_the_credential_is_written(shim: Shim, path: str) -> None:
    """stdout's reader is gone (a killed kubectl): exit 1, no traceback, no crash log."""
    if path == "hit":
        shim.run("-c", "demo")
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [*shim_argv(), "-c", "demo"],
            env=shim.env,
            stdout=write_end,
            stderr=subprocess.PIPE,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert result.returncode == 1, result.stderr.decode()
    assert result.stderr == b""
    assert not (shim.cache_dir / "crash.log").exists()
    assert len(shim.entries()) == 1  # a miss still cached what it fetched
