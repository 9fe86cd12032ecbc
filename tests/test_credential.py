"""Validation: bytes in, a Credential or every problem out."""

from __future__ import annotations

import datetime as dt
import json

from hypothesis import given
from hypothesis import strategies as st

from shim.credential import Credential, validate
from shim.timestamp import parse_timestamp

BETA = "client.authentication.k8s.io/v1beta1"


def credential(**status: object) -> bytes:
    body = {"kind": "ExecCredential", "apiVersion": BETA, "spec": {}, "status": status}
    return json.dumps(body).encode()


def test_a_valid_token_credential() -> None:
    result = validate(credential(token="t", expirationTimestamp="2030-01-01T00:00:00Z"), BETA)
    assert isinstance(result, Credential)
    assert result.expiry == dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc).timestamp()
    assert result.api_version == BETA
    assert result.output.endswith(b"}\n")


def test_client_certificate_credentials_are_valid_without_a_token() -> None:
    result = validate(credential(clientCertificateData="c", clientKeyData="k"), BETA)
    assert isinstance(result, Credential)
    assert result.expiry is None


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


@given(st.binary())
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    result = validate(raw, BETA)
    assert isinstance(result, (Credential, list))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


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
    assert isinstance(validate(credential(**status), BETA), (Credential, list))


offsets = st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59).map(
    lambda minutes: dt.timezone(dt.timedelta(minutes=minutes))
)
instants = st.datetimes(
    min_value=dt.datetime(1971, 1, 1),
    max_value=dt.datetime(9998, 1, 1),
    timezones=st.just(dt.timezone.utc),
)


@given(instants, offsets, st.sampled_from(["seconds", "milliseconds", "microseconds"]))
def test_rfc3339_with_any_offset_is_the_same_instant(
    instant: dt.datetime, offset: dt.timezone, precision: str
) -> None:
    text = instant.astimezone(offset).isoformat(timespec=precision)
    expected = instant.replace(microsecond=0) if precision == "seconds" else instant
    if precision == "milliseconds":
        expected = instant.replace(microsecond=instant.microsecond // 1000 * 1000)
    assert parse_timestamp(text) == expected.timestamp()
    if text.endswith("+00:00"):
        assert parse_timestamp(text[:-6] + "Z") == expected.timestamp()


def test_a_plus_nine_stamp_is_nine_hours_before_the_same_wall_clock_in_utc() -> None:
    assert parse_timestamp("2030-01-01T09:00:00+09:00") == parse_timestamp("2030-01-01T00:00:00Z")


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
