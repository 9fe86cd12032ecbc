"""shim.keys: which requests share a cache entry, and the identity files an entry watches."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from shim.execinfo import DEFAULT_API_VERSION
from shim.keys import (
    IDENTITY_ENV_VARS,
    cache_key,
    expand_path,
    file_state,
    fingerprint,
    identity_files,
    identity_files_now,
)

argvs = st.lists(st.text(min_size=0, max_size=8), min_size=1, max_size=5)

envs = st.dictionaries(st.sampled_from(IDENTITY_ENV_VARS), st.text(max_size=5), max_size=4)

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


@given(argvs, st.text(max_size=10), envs, argvs, st.text(max_size=10), envs)
def test_keys_differ_when_any_input_differs(
    argv1: list[str],
    api1: str,
    env1: dict[str, str],
    argv2: list[str],
    api2: str,
    env2: dict[str, str],
) -> None:
    assume((argv1, api1, env1) != (argv2, api2, env2))
    assert cache_key(argv1, api1, env1) != cache_key(argv2, api2, env2)


def test_keys_are_stable_file_names() -> None:
    key = cache_key(["aws", "eks"], DEFAULT_API_VERSION, {"AWS_PROFILE": "dev", "HOME": "/x"})
    assert key == cache_key(["aws", "eks"], DEFAULT_API_VERSION, {"AWS_PROFILE": "dev"})
    assert len(key) == 64
    assert set(key) <= set("0123456789abcdef")


def test_unset_and_empty_identity_variables_differ() -> None:
    assert cache_key(["a"], "v", {}) != cache_key(["a"], "v", {"AWS_PROFILE": ""})


def test_argv_boundaries_matter() -> None:
    assert cache_key(["a b"], "v", {}) != cache_key(["a", "b"], "v", {})
    assert cache_key(["ab", ""], "v", {}) != cache_key(["a", "b"], "v", {})


def test_every_identity_variable_tells_identities_apart() -> None:
    """Each variable's values key different entries; the same value, the same entry; a
    variable outside the list (and --key-env) changes nothing. The end-to-end run of one
    variable is tests/test_caching.py's; this holds the whole list, in milliseconds."""
    command = ["aws-iam-authenticator", "token", "-i", "demo"]
    base = {"HOME": "/h", "PATH": "/bin"}
    for name in IDENTITY_VARIABLES:
        one = cache_key(command, DEFAULT_API_VERSION, {**base, name: "one"})
        assert one != cache_key(command, DEFAULT_API_VERSION, {**base, name: "two"}), name
        assert one != cache_key(command, DEFAULT_API_VERSION, base), name
        assert one == cache_key(command, DEFAULT_API_VERSION, {**base, name: "one"}), name
    unrelated = {**base, "SOME_OTHER_VARIABLE": "x"}
    assert cache_key(command, DEFAULT_API_VERSION, unrelated) == cache_key(
        command, DEFAULT_API_VERSION, base
    )


def test_paths_of_identity_files_are_in_the_key() -> None:
    one = cache_key(["aws"], "v", {}, (), ["/home/a/.aws/credentials"])
    assert one != cache_key(["aws"], "v", {}, (), ["/home/b/.aws/credentials"])
    assert one != cache_key(["aws"], "v", {}, (), [])
    assert one != cache_key(["aws", "/home/a/.aws/credentials"], "v", {})  # fields stay apart
    assert one == cache_key(["aws"], "v", {}, (), ["/home/a/.aws/credentials"])


def test_the_default_identity_files_are_under_home() -> None:
    assert identity_files({"HOME": "/h"}) == (
        "/h/.aws/config",
        "/h/.aws/credentials",
        "/h/.config/gcloud/active_config",
        "/h/.azure/azureProfile.json",
        "/h/.azure/clouds.config",
    )


def test_variables_move_identity_files_and_an_empty_one_names_none() -> None:
    env = {
        "HOME": "/h",
        "AWS_CONFIG_FILE": "~/aws-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/etc/creds",
        "CLOUDSDK_CONFIG": "",
        "AZURE_CONFIG_DIR": "/az",
    }
    assert identity_files(env, ["~/extra", "/abs"]) == (
        "/h/aws-config",
        "/etc/creds",
        "/az/azureProfile.json",
        "/az/clouds.config",
        "/h/extra",
        "/abs",
    )


def test_an_empty_gcloud_or_azure_directory_names_no_file_of_theirs() -> None:
    """Not "/configurations/config_work" or "/azureProfile.json" at the root either."""
    env = {"HOME": "/h", "CLOUDSDK_CONFIG": "", "CLOUDSDK_ACTIVE_CONFIG_NAME": "work"}
    env["AZURE_CONFIG_DIR"] = ""
    assert identity_files(env) == ("/h/.aws/config", "/h/.aws/credentials")


def test_a_named_gcloud_configuration_is_watched_without_reading_active_config() -> None:
    env = {"HOME": "/h", "CLOUDSDK_CONFIG": "/g", "CLOUDSDK_ACTIVE_CONFIG_NAME": "work"}
    watched = identity_files(env)
    assert "/g/active_config" in watched
    assert "/g/configurations/config_work" in watched
    assert identity_files_now(env, watched) == watched


def test_a_relative_path_stays_as_it_is_when_the_current_directory_is_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    assert expand_path("creds", {"HOME": "/h"}) == "creds"  # (it names nothing anyone opens)


def test_a_file_that_cannot_be_looked_at_has_its_error_for_a_state(tmp_path: Path) -> None:
    import errno

    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    assert file_state(str(loop)) == f"!{errno.ELOOP}"


def test_a_relative_path_is_taken_from_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert expand_path("creds", {"HOME": "/h"}) == str(tmp_path / "creds")
    assert expand_path("~", {"HOME": "/h"}) == "/h"
    assert expand_path("~/x/../y", {"HOME": "/h"}) == "/h/y"


@pytest.mark.parametrize(
    ("active_config", "properties"),
    [
        (None, "config_default"),  # gcloud's default when there is no active_config
        (b"work\n", "config_work"),
        (b"", "config_default"),
        (b"../../etc/passwd", None),  # not a name gcloud makes: nothing more is watched
        (b".hidden", None),
        (b"a/b", None),
        (b"x" * 300, "config_" + "x" * 256),  # (read up to 256 bytes: a name, not a file)
    ],
)
def test_the_active_gcloud_configuration_is_read_at_fetch(
    tmp_path: Path, active_config: bytes | None, properties: str | None
) -> None:
    env = {"HOME": str(tmp_path), "CLOUDSDK_CONFIG": str(tmp_path / "g")}
    (tmp_path / "g").mkdir()
    if active_config is not None:
        (tmp_path / "g" / "active_config").write_bytes(active_config)
    watched = identity_files(env)
    now = identity_files_now(env, watched)
    assert now[: len(watched)] == watched
    extra = [str(tmp_path / "g" / "configurations" / properties)] if properties else []
    assert list(now[len(watched) :]) == extra


def test_without_a_gcloud_directory_nothing_more_is_read() -> None:
    env = {"HOME": "/h", "CLOUDSDK_CONFIG": ""}
    assert identity_files_now(env, ("/a",)) == ("/a",)


def _changes(tmp_path: Path) -> dict[str, Callable[[], None]]:
    """Each way an identity file changes, as a function that changes `file`."""
    file = tmp_path / "credentials"

    def rewrite_same_size() -> None:
        with open(file, "r+b") as handle:
            handle.write(b"AKIANEWIDENTITY99999")

    def replace() -> None:
        (tmp_path / "new").write_bytes(file.read_bytes())
        os.replace(tmp_path / "new", file)

    def retarget() -> None:
        (tmp_path / "other").write_bytes(file.read_bytes())
        file.unlink()
        file.symlink_to(tmp_path / "other")

    def touch() -> None:
        stat = file.stat()
        os.utime(file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))

    return {
        "rewrite": rewrite_same_size,
        "replace": replace,
        "remove": file.unlink,
        "retarget": retarget,
        "touch": touch,
    }


@pytest.mark.parametrize("change", ["rewrite", "replace", "remove", "retarget", "touch"])
def test_any_change_to_a_file_changes_its_fingerprint(tmp_path: Path, change: str) -> None:
    file = tmp_path / "credentials"
    file.write_bytes(b"AKIAEXAMPLEEXAMPLE12")
    before = fingerprint([str(file)])
    assert fingerprint([str(file)]) == before  # looking again is no change
    _changes(tmp_path)[change]()
    assert fingerprint([str(file)]) != before


def test_a_file_that_appears_changes_the_fingerprint(tmp_path: Path) -> None:
    file = tmp_path / "credentials"
    before = fingerprint([str(file)])
    assert file_state(str(file)) == "-"
    file.write_bytes(b"")
    assert fingerprint([str(file)]) != before


def test_a_fifo_or_a_directory_is_only_stated_never_opened(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert file_state(str(fifo)) not in ("-", "")  # a stat: no open, so no wait for a writer
    assert file_state(str(tmp_path / "fifo" / "below")) == "-"  # (ENOTDIR: nothing there)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may search any directory")
def test_a_file_that_cannot_be_stated_has_its_error_for_a_state(tmp_path: Path) -> None:
    closed = tmp_path / "closed"
    closed.mkdir()
    closed.chmod(0)
    try:
        assert file_state(str(closed / "credentials")) == "!13"  # EACCES
    finally:
        closed.chmod(0o700)
