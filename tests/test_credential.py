"""shim.credential: a backend's output judged as kubectl judges it, every problem at once.

The real kubectl is asked about the same forms in tests/test_parity.py; here, the
reasons the shim gives, and that nothing it vouches for is anything but what it printed.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
import trustme
from cryptography.hazmat.primitives import serialization
from helpers import open_descriptors
from hypothesis import given
from hypothesis import strategies as st

from shim.credential import BOM, Credential, _reason, token_of, validate

BETA = "client.authentication.k8s.io/v1beta1"
V1 = "client.authentication.k8s.io/v1"
HEAD = {"kind": "ExecCredential", "apiVersion": BETA}


def credential(**status: object) -> bytes:
    return json.dumps({**HEAD, "spec": {}, "status": status}).encode()


def document(**fields: object) -> bytes:
    return json.dumps({**HEAD, "status": {"token": "t"}, **fields}).encode()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@pytest.fixture(scope="module")
def pair() -> tuple[str, str]:
    """A client certificate and its key, PEM."""
    leaf = trustme.CA().issue_cert("client")
    return leaf.cert_chain_pems[0].bytes().decode(), leaf.private_key_pem.bytes().decode()


def test_a_valid_token_credential() -> None:
    result = validate(credential(token="t", expirationTimestamp="2030-01-01T00:00:00Z"), BETA)
    assert isinstance(result, Credential)
    assert result.expiry == dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc).timestamp()
    assert result.api_version == BETA
    assert result.output.endswith(b"}\n")


def test_a_client_certificate_and_its_key_are_a_credential_without_a_token(
    pair: tuple[str, str],
) -> None:
    cert, key = pair
    output = credential(clientCertificateData=cert, clientKeyData=key)
    result = validate(output, BETA)
    assert result == Credential(output + b"\n", BETA, None)


def test_a_certificate_and_key_that_do_not_load_as_a_pair_are_refused(
    pair: tuple[str, str],
) -> None:
    cert, key = pair
    other_key = trustme.CA().issue_cert("other").private_key_pem.bytes().decode()
    no_certificate = ["status.clientCertificateData does not start with a PEM CERTIFICATE"]
    no_key = ["status.clientKeyData does not start with an unencrypted PEM private key"]
    for certificate_data, key_data, problems in [
        ("c", "k", no_certificate),
        ("c", key, no_certificate),
        (key, key, no_certificate),
        (cert, "k", no_key),
        (cert, cert, no_key),
    ]:
        output = credential(clientCertificateData=certificate_data, clientKeyData=key_data)
        assert validate(output, BETA) == problems
    mismatched = validate(credential(clientCertificateData=cert, clientKeyData=other_key), BETA)
    assert isinstance(mismatched, list)
    assert mismatched[0].startswith("the client certificate and key do not load as a pair (")
    broken = cert.replace(cert.splitlines()[3], "A" * 64)
    broken_pair = credential(clientCertificateData=broken, clientKeyData=key)
    assert isinstance(validate(broken_pair, BETA), list)


def test_an_encrypted_key_is_refused_without_asking_for_a_password(
    pair: tuple[str, str],
) -> None:
    cert, key = pair
    loaded = serialization.load_pem_private_key(key.encode(), password=None)
    encrypted = loaded.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,  # "RSA/EC PRIVATE KEY" + Proc-Type
        serialization.BestAvailableEncryption(b"secret"),
    ).decode()
    problems = validate(credential(clientCertificateData=cert, clientKeyData=encrypted), BETA)
    assert isinstance(problems, list)
    assert problems[0].startswith("the client certificate and key do not load as a pair (")


def test_a_pair_larger_than_a_pipe_holds_is_not_vouched_for(pair: tuple[str, str]) -> None:
    cert, key = pair
    huge = cert + "\n" * (1 << 20)  # (PEM after the first block is ignored by both)
    descriptors = open_descriptors()
    problems = validate(credential(clientCertificateData=huge, clientKeyData=key), BETA)
    assert problems == [
        "the client certificate and key do not load as a pair (larger than a pipe holds)"
    ]
    assert validate(credential(clientCertificateData=cert, clientKeyData=key), BETA)
    assert open_descriptors() == descriptors  # the pipes closed, in failure and success


def test_a_reason_is_cut_to_80_characters() -> None:
    assert _reason(ValueError("x" * 80)) == "x" * 80
    assert _reason(ValueError("x" * 81)) == "x" * 77 + "..."
    assert _reason(ValueError("first\nsecond")) == "first"
    assert _reason(ValueError()) == "ValueError"


def test_all_problems_are_reported_at_once() -> None:
    raw = json.dumps(
        {
            "kind": "Secret",
            "apiVersion": "v1",
            "spec": {"interactive": "yes"},
            "status": {"token": "", "expirationTimestamp": "tomorrow"},
        }
    ).encode()
    assert validate(raw, BETA) == [
        "spec.interactive is not a boolean",
        f'apiVersion is "v1", but kubectl asked for {BETA}',
        'kind is "Secret", not "ExecCredential"',
        "status has no token and no client certificate and key",
        'status.expirationTimestamp "tomorrow" is not a date-time kubectl accepts '
        "(RFC 3339 as Go reads it: 2006-01-02T15:04:05Z or ...+07:00)",
    ]


def test_an_api_version_other_than_the_asked_one_is_refused() -> None:
    assert validate(credential(token="t"), V1) == [
        f'apiVersion is "{BETA}", but kubectl asked for {V1}'
    ]


def test_a_missing_kind_is_supplied_by_kubectl() -> None:
    output = json.dumps({"apiVersion": BETA, "status": {"token": "t"}}).encode()
    assert isinstance(validate(output, BETA), Credential)
    assert validate(json.dumps({"kind": None, "apiVersion": BETA}).encode(), BETA) == [
        'kind is missing, not "ExecCredential"',
        "status is missing",
    ]


@pytest.mark.parametrize(
    ("output", "problem"),
    [
        (document(spec="x"), "spec is not an object"),
        (document(spec={"cluster": []}), "spec.cluster is not an object"),
        (document(spec={"cluster": {"server": 5}}), "spec.cluster.server is not a string"),
        (
            document(spec={"cluster": {"insecure-skip-tls-verify": "true"}}),
            "spec.cluster.insecure-skip-tls-verify is not a boolean",
        ),
        (
            document(spec={"cluster": {"certificate-authority-data": "!!"}}),
            "spec.cluster.certificate-authority-data is not standard base64",
        ),
        (
            document(spec={"cluster": {"certificate-authority-data": "YWI"}}),
            "spec.cluster.certificate-authority-data is not standard base64",
        ),
        (document(status=[]), "status is not an object"),
        (document(status=None), "status is missing"),
        (credential(token=5), "status.token is not a string"),
        (
            credential(token="t", expirationTimestamp=[]),
            "status.expirationTimestamp is not a string",
        ),
    ],
)
def test_a_known_field_of_another_json_type_is_refused(output: bytes, problem: str) -> None:
    problems = validate(output, BETA)
    assert isinstance(problems, list)
    assert problems[0] == problem


def test_fields_kubectl_does_not_read_may_hold_anything() -> None:
    config = {"cluster": {"config": {"any": [1, "thing"]}, "certificate-authority-data": "YWI="}}
    anything = {"metadata": {"name": 5}, "x": [1e300, None, True], "spec": config}
    assert isinstance(validate(document(**anything), BETA), Credential)
    for raw in (b'"x":1e999', b'"x":"\\ud800"', b'"x":123456789012345678901234567890'):
        output = document()[:-1] + b"," + raw + b"}"
        assert isinstance(validate(output, BETA), Credential), raw
    assert isinstance(validate(document()[:-1] + b',"x":"\xff"}', BETA), Credential)


def test_field_names_match_case_sensitively_and_a_near_miss_is_named() -> None:
    assert validate(credential(Token="t"), BETA) == [
        "status.Token is spelt unlike its field (kubectl ignores it)",
        "status has no token and no client certificate and key",
    ]
    escaped = document()[:-1] + b',"status":{"tok\\u0065n":"t"}}'  # (the later status wins)
    assert validate(escaped, BETA) == ['the key "status" appears twice in one object']
    assert isinstance(validate(credential(**{"tok\u0065n": "t"}), BETA), Credential)


def test_a_repeated_key_is_left_to_kubectl() -> None:
    """Go merges a repeated object into the first (a certificate from one and a token from
    the other): the shim cannot vouch for what that makes."""
    output = document()[:-1] + b',"status":{"token":""}}'
    assert validate(output, BETA) == ['the key "status" appears twice in one object']


@pytest.mark.parametrize("character", ["\n", "\r", "\x00", "\x01", "\x1b", "\x7f"])
def test_a_token_no_http_header_may_carry_is_refused(character: str) -> None:
    assert validate(credential(token=f"t{character}k"), BETA) == [
        "status.token holds a control character (no HTTP header may carry it)"
    ]


@pytest.mark.parametrize("token", ["t\tk", "t\u00e9k", "t\u0085k", " t ", "t\ud800k"])
def test_a_token_with_tabs_spaces_or_any_unicode_is_sent(token: str) -> None:
    assert isinstance(validate(credential(token=token), BETA), Credential)


@pytest.mark.parametrize(
    ("output", "problem"),
    [
        (b"", "the output is empty"),
        (b" \n\t", "the output is empty"),
        (BOM, "the output is empty"),
        (b"apiVersion: x\n", "the output is not a JSON object (kubectl reads it as YAML)"),
        (b"\xc2\xa0{}", "the output is not a JSON object (kubectl reads it as YAML)"),
        (b"\x0c{}", "the output is not a JSON object (kubectl reads it as YAML)"),
        (b"[]", "the output is not a JSON object (kubectl reads it as YAML)"),
    ],
)
def test_output_kubectl_reads_as_yaml_or_not_at_all_is_not_vouched_for(
    output: bytes, problem: str
) -> None:
    assert validate(output, BETA) == [problem]


@pytest.mark.parametrize("tail", [b"x", b"{}", b"\x0c", b'\n{"kind":"ExecCredential"}', b"// note"])
def test_anything_after_the_object_but_white_space_is_refused(tail: bytes) -> None:
    problems = validate(credential(token="t") + tail, BETA)
    assert isinstance(problems, list)
    assert problems[0].startswith("the output is not JSON that the shim reads as Go does (")
    assert isinstance(validate(b" \r\n" + credential(token="t") + b"\n\t ", BETA), Credential)


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_python_json_extensions_are_not_json(constant: bytes) -> None:
    problems = validate(document()[:-1] + b',"x":' + constant + b"}", BETA)
    assert isinstance(problems, list)
    assert f"{constant.decode().lstrip('-')} is not JSON" in problems[0]


def test_a_bom_is_vouched_for_where_yaml_reads_the_json_alike() -> None:
    """After a BOM kubectl reads YAML: the JSON escapes YAML 1.1 lacks (`\\/`) or refuses
    (a lone surrogate) and raw tabs are left to kubectl."""
    plain = BOM + credential(token="t\tk\u00e9", expirationTimestamp="2030-01-01T00:00:00Z")
    result = validate(plain, BETA)
    assert isinstance(result, Credential)
    assert result.output == plain + b"\n"  # printed as it came: kubectl reads the BOM
    for unsafe in (b'"a\\/b"', b'"\\ud800"', b'"\\uDC00"', b'"a\tb"', b'"\\b"'):
        output = BOM + document()[:-1] + b',"x":' + unsafe + b"}"
        assert validate(output, BETA) == [
            "a UTF-8 BOM and an escape or control character YAML may read otherwise"
        ], unsafe
    assert isinstance(validate(BOM + document()[:-1] + b',"x":"\\ud7ff"}', BETA), Credential)


def test_invalid_utf8_becomes_one_replacement_character_per_byte_as_in_go() -> None:
    output = credential(token="t").replace(b'"t"', b'"t\xe2\x82k\xff"')
    assert token_of(output) == "t\ufffd\ufffdk\ufffd"


def test_token_of_is_the_token_kubectl_sends() -> None:
    assert token_of(credential(token="k8s-aws-v1.abc")) == "k8s-aws-v1.abc"
    assert token_of(credential(token="a\ud800b")) == "a\ufffdb"  # (lone surrogate: U+FFFD)
    assert token_of(credential(token="\U0001f600")) == "\U0001f600"  # (a pair: one character)
    assert token_of(BOM + credential(token="t")) == "t"
    assert token_of(credential(clientCertificateData="c", clientKeyData="k")) is None
    for output in (b"", b"[]", b'{"status": 5}', credential(token=5), credential(token="")):
        assert token_of(output) is None


def test_problems_name_the_values_shortly_and_never_the_token() -> None:
    output = json.dumps(
        {"kind": "x" * 100, "apiVersion": "example.com/v1", "status": {"token": "secret-token"}}
    ).encode()
    problems = validate(output, V1)
    assert problems == [
        f'apiVersion is "example.com/v1", but kubectl asked for {V1}',
        f'kind is "{"x" * 56}..., not "ExecCredential"',  # 60 characters
    ]
    for kind, shown in (("y" * 58, f'"{"y" * 58}"'), ("z" * 59, f'"{"z" * 56}...')):
        exact = validate(json.dumps({"kind": kind, "apiVersion": V1}).encode(), V1)
        assert isinstance(exact, list)
        assert exact[0] == f'kind is {shown}, not "ExecCredential"'
    secret = credential(token="secret-token\n", expirationTimestamp="secret-token")
    problems = validate(secret, BETA)
    assert isinstance(problems, list)
    assert all("secret-token\\n" not in problem for problem in problems)


def is_answer(result: Credential | list[str], raw: bytes) -> bool:
    """Whether `result` is one of validate's two answers: the credential as printed, or a
    non-empty list of problems."""
    if isinstance(result, Credential):
        return result.output == raw.strip(b" \t\r\n") + b"\n"
    return bool(result) and all(isinstance(problem, str) and problem for problem in result)


@given(st.binary())
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    assert is_answer(validate(raw, BETA), raw)


@given(json_values)
def test_arbitrary_json_never_raises_and_is_valid_only_with_a_token(value: object) -> None:
    result = validate(json.dumps(value).encode(), BETA)
    if isinstance(result, Credential):
        assert isinstance(value, dict)
        assert value.get("kind", "ExecCredential") == "ExecCredential"
        assert value["status"].get("token")


@given(
    st.dictionaries(
        st.sampled_from(["token", "expirationTimestamp", "clientKeyData", "clientCertificateData"]),
        json_values,
    )
)
def test_arbitrary_status_never_raises(status: dict[str, object]) -> None:
    raw = credential(**status)
    assert is_answer(validate(raw, BETA), raw)


@pytest.mark.parametrize(
    "text",
    ["2030-01-01", "2030-01-01T00:00:00", "2030-01-01T00:00:00.000", "12:00:00Z", ""],
)
def test_timestamps_without_offset_or_time_are_refused(text: str) -> None:
    result = validate(credential(token="t", expirationTimestamp=text), BETA)
    assert isinstance(result, list)
    assert "expirationTimestamp" in result[0]


@pytest.mark.parametrize(
    ("status", "problem"),
    [
        ({"clientCertificateData": "cert", "clientKeyData": ""}, "or key, not both"),
        ({"clientCertificateData": "", "clientKeyData": "key"}, "or key, not both"),
        ({"token": "t", "clientCertificateData": "cert"}, "or key, not both"),
        ({"token": ""}, "no token and no client certificate and key"),
        ({"token": None, "clientKeyData": None}, "no token and no client certificate and key"),
        ({}, "no token and no client certificate and key"),
    ],
)
def test_a_credential_needs_a_token_or_both_halves_of_a_certificate(
    status: dict[str, str], problem: str
) -> None:
    problems = validate(credential(**status), BETA)
    assert isinstance(problems, list)
    assert problems[0].endswith(problem)
