"""shim.keys: which requests share a cache entry."""

from __future__ import annotations

from hypothesis import assume, given
from hypothesis import strategies as st

from shim.execinfo import DEFAULT_API_VERSION
from shim.keys import IDENTITY_ENV_VARS, cache_key

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
