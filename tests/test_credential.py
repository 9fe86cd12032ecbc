"""shim.credential: a backend's output validated, every problem at once."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shim.credential import Credential, validate

BETA = "client.authentication.k8s.io/v1beta1"


def credential(**status: object) -> bytes:
    body = {"kind": "ExecCredential", "apiVersion": BETA, "spec": {}, "status": status}
    return json.dumps(body).encode()


NO_TOKEN = "status.token is missing or empty, and there is no client certificate+key"
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


def test_a_valid_token_credential() -> None:
    result = validate(credential(token="t", expirationTimestamp="2030-01-01T00:00:00Z"), BETA)
    assert isinstance(result, Credential)
    assert result.expiry == dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc).timestamp()
    assert result.api_version == BETA
    assert result.output.endswith(b"}\n")


def test_client_certificate_credentials_are_valid_without_a_token() -> None:
    output = credential(clientCertificateData="c", clientKeyData="k")
    result = validate(output, BETA)
    assert isinstance(result, Credential)
    assert (result.output, result.expiry) == (output + b"\n", None)


def test_all_problems_are_reported_at_once() -> None:
    raw = json.dumps(
        {
            "kind": "Secret",
            "apiVersion": "v1",
            "status": {"token": "", "expirationTimestamp": "tomorrow"},
        }
    ).encode()
    problems = validate(raw, BETA)
    assert isinstance(problems, list)
    assert len(problems) == 4
    assert any("kind" in p for p in problems)
    assert any("apiVersion" in p for p in problems)
    assert any("status.token" in p for p in problems)
    assert any("expirationTimestamp" in p for p in problems)


def test_an_api_version_other_than_the_asked_one_is_invalid() -> None:
    problems = validate(credential(token="t"), "client.authentication.k8s.io/v1")
    assert problems == [
        f"apiVersion is {BETA}, but kubectl asked for client.authentication.k8s.io/v1"
    ]


def test_problems_never_quote_the_token() -> None:
    raw = json.dumps(
        {
            "kind": "ExecCredential",
            "apiVersion": "nope",
            "status": {"token": "secret-token-value", "expirationTimestamp": 5},
        }
    ).encode()
    problems = validate(raw, BETA)
    assert isinstance(problems, list)
    assert all("secret-token-value" not in problem for problem in problems)


def test_null_expiry_means_no_expiry() -> None:
    result = validate(credential(token="t", expirationTimestamp=None), BETA)
    assert isinstance(result, Credential)
    assert result.expiry is None


def is_answer(result: Credential | list[str], raw: bytes) -> bool:
    """Whether `result` is one of validate's two answers: the credential as printed, or a
    non-empty list of problems."""
    if isinstance(result, Credential):
        return result.output == raw.strip() + b"\n"
    return bool(result) and all(isinstance(problem, str) and problem for problem in result)


@given(st.binary())
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    assert is_answer(validate(raw, BETA), raw)


@given(json_values)
def test_arbitrary_json_never_raises_and_is_valid_only_with_a_token(value: object) -> None:
    result = validate(json.dumps(value).encode(), BETA)
    if isinstance(result, Credential):
        assert isinstance(value, dict)
        assert value["kind"] == "ExecCredential"
        assert value["status"].get("token") or value["status"].get("clientKeyData")


@given(
    st.dictionaries(
        st.sampled_from(["token", "expirationTimestamp", "clientKeyData", "clientCertificateData"]),
        json_values,
    )
)
def test_arbitrary_status_never_raises(status: dict[str, object]) -> None:
    raw = credential(**status)
    assert is_answer(validate(raw, BETA), raw)


@given(
    st.sampled_from(
        [
            "2030-01-01",
            "2030-01-01T00:00:00",
            "2030-01-01T00:00:00.000",
            "12:00:00Z",
            "2030-01-01T00:00",
        ]
    )
)
def test_timestamps_without_offset_or_time_are_refused(text: str) -> None:
    result = validate(credential(token="t", expirationTimestamp=text), BETA)
    assert isinstance(result, list)
    assert "expirationTimestamp" in result[0]


@pytest.mark.parametrize(
    "status",
    [
        {"clientCertificateData": "cert", "clientKeyData": ""},
        {"clientCertificateData": "", "clientKeyData": "key"},
        {"clientCertificateData": "cert"},
        {"token": ""},
        # kubectl decodes them into Go strings: a number there is an error, not a credential
        {"token": 5},
        {"clientCertificateData": 5, "clientKeyData": "k"},
        {"clientCertificateData": "c", "clientKeyData": 5},
    ],
)
def test_a_credential_needs_a_token_or_both_halves_of_a_certificate(status: dict[str, str]) -> None:
    assert validate(credential(**status), BETA) == [NO_TOKEN]


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
