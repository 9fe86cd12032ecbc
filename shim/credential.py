"""What a backend printed, judged as kubectl 1.35 judges it: bytes in, a Credential the
shim may cache, or every reason it may not.

client-go decodes a plugin's stdout with apimachinery's universal decoder
(plugin/pkg/client/auth/exec/exec.go, refreshCredsLocked): output that starts with
`{` after white space is read as JSON, into typed structs whose field names match
case-sensitively (sigs.k8s.io/json); anything else, a UTF-8 BOM first included, is
read as YAML. Then: a status object; a token or a certificate and key, both or
neither; the pair must parse (tls.X509KeyPair); the token must fit in an HTTP header
(net/http refuses control characters). Go's JSON reader replaces invalid UTF-8 and
lone surrogates with U+FFFD, skips unknown fields without reading their numbers, and
lets a repeated key merge into what came before.

A Credential is returned only where the shim is sure kubectl accepts the output, so
nothing kubectl would refuse is ever cached. Everything else comes back as a list of
reasons; the caller passes such output to kubectl as it came, and kubectl decides.
Some of it kubectl does accept (YAML, a repeated key, nesting deeper than Python's
reader goes): then it works, uncached. tests/test_parity.py asks the real kubectl
about each form in the same run.

Pure (no clock, no I/O but two pipes to load a certificate and key): the caller decides
what to do with an expired one.
"""

from __future__ import annotations

import codecs
import json
import os
import re
from typing import NamedTuple, cast

from shim.timestamp import parse_timestamp

BOM = b"\xef\xbb\xbf"
_JSON_SPACE = b" \t\r\n"
# Where Go's struct decoding reads a field, the JSON types it takes (besides null).
_STRING, _BOOL, _OBJECT, _BASE64 = "a string", "a boolean", "an object", "a base64 string"
_ANY = "any JSON"
_TOP = {"apiVersion": _STRING, "kind": _STRING, "spec": _OBJECT, "status": _OBJECT}
_SPEC = {"cluster": _OBJECT, "interactive": _BOOL}
_CLUSTER = {
    "server": _STRING,
    "tls-server-name": _STRING,
    "insecure-skip-tls-verify": _BOOL,
    "certificate-authority-data": _BASE64,
    "proxy-url": _STRING,
    "disable-compression": _BOOL,
    "config": _ANY,
}
_STATUS = {
    "expirationTimestamp": _STRING,
    "token": _STRING,
    "clientCertificateData": _STRING,
    "clientKeyData": _STRING,
}
# The objects whose fields are checked in turn: their fields, and where they are.
_NESTED = {
    "spec": (_SPEC, "spec."),
    "cluster": (_CLUSTER, "spec.cluster."),
    "status": (_STATUS, "status."),
}
_CREDENTIALS = ("token", "clientCertificateData", "clientKeyData")
_TYPES = {_STRING: str, _BOOL: bool, _OBJECT: dict, _BASE64: str}
_STANDARD_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
# What YAML reads in a JSON document as JSON does: the escapes of YAML 1.1 double-quoted
# scalars that JSON has too, \uXXXX included except surrogates (go-yaml refuses `\/`
# and "\ud800"); no tab and no other control character outside them.
_YAML_SAFE = re.compile(
    r'(?:[^\\\x00-\x09\x0b\x0c\x0e-\x1f\x7f]|\\["\\nrt]|\\u(?![dD][89a-fA-F])[0-9a-fA-F]{4})*'
)
_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----")
_KEY_LABELS = ("PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY")


class Credential(NamedTuple):
    """An ExecCredential kubectl accepts: the bytes to print, apiVersion, expiry (Unix s)."""

    output: bytes
    api_version: str
    expiry: float | None


class _Repeated(ValueError):
    pass


def validate(output: bytes, requested_api_version: str) -> Credential | list[str]:
    """The Credential in `output` if kubectl surely accepts it, else the reasons why not."""
    body = _without_bom(output)
    if not body.strip(_JSON_SPACE):
        return ["the output is empty"]
    if not body.lstrip(_JSON_SPACE).startswith(b"{"):
        return ["the output is not a JSON object (kubectl reads it as YAML)"]
    text = body.decode("utf-8", "go-replace")
    if body is not output and not _YAML_SAFE.fullmatch(text):
        return ["a UTF-8 BOM and an escape or control character YAML may read otherwise"]
    try:
        document = json.loads(text, object_pairs_hook=_object, parse_constant=_no_constant)
    except _Repeated as repeated:
        return [f"the key {_show(str(repeated))} appears twice in one object"]
    except (ValueError, RecursionError) as error:
        return [f"the output is not JSON that the shim reads as Go does ({_reason(error)})"]
    problems = _type_problems(document, _TOP, "")  # (an object: the output starts with `{`)
    problems += _kubectl_refuses(document, requested_api_version)
    if problems:
        return problems
    stamp = document["status"].get("expirationTimestamp")
    expiry = parse_timestamp(stamp) if isinstance(stamp, str) else None
    return Credential(output.strip(_JSON_SPACE) + b"\n", requested_api_version, expiry)


def token_of(output: bytes) -> str | None:
    """The token kubectl sends for a cached credential, as Go decodes it (U+FFFD for a lone
    surrogate); None when it has none (a client certificate) or is not what we cache."""
    body = _without_bom(output)
    try:
        status = json.loads(body.decode("utf-8", "go-replace"))["status"]
    except (ValueError, RecursionError, KeyError, TypeError):
        return None
    token = status.get("token") if isinstance(status, dict) else None
    if not isinstance(token, str) or not token:
        return None
    return token.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def fits_a_header(token: str) -> bool:
    """Whether Go's net/http sends `token` in a header: no control character but tab."""
    return not any((ord(c) < 0x20 and c != "\t") or c == "\x7f" for c in token)


def _without_bom(output: bytes) -> bytes:
    return output[len(BOM) :] if output.startswith(BOM) else output


def _kubectl_refuses(document: dict[str, object], requested: str) -> list[str]:
    """What refreshCredsLocked refuses in a document whose fields have the right types."""
    problems = []
    api_version = document.get("apiVersion")
    if api_version != requested:
        problems.append(f"apiVersion is {_show(api_version)}, but kubectl asked for {requested}")
    kind = document.get("kind", "ExecCredential")  # (kubectl supplies a missing kind)
    if kind != "ExecCredential":
        problems.append(f'kind is {_show(kind)}, not "ExecCredential"')
    status = document.get("status")
    if status is None:
        return [*problems, "status is missing"]
    if not isinstance(status, dict):
        return problems  # (a type problem)
    token, cert, key = (_string(status, name) for name in _CREDENTIALS)
    if not (token or cert or key):
        problems.append("status has no token and no client certificate and key")
    elif bool(cert) != bool(key):
        problems.append("status has a client certificate or key, not both")
    elif cert:
        problems += _key_pair_problems(cert, key)
    if not fits_a_header(token):
        problems.append("status.token holds a control character (no HTTP header may carry it)")
    stamp = status.get("expirationTimestamp")
    if isinstance(stamp, str):
        try:
            parse_timestamp(stamp)
        except ValueError:
            problems.append(
                f"status.expirationTimestamp {_show(stamp)} is not a date-time kubectl accepts "
                "(RFC 3339 as Go reads it: 2006-01-02T15:04:05Z or ...+07:00)"
            )
    return problems


def _string(value: dict[str, object], name: str) -> str:
    """A string field as Go decodes it: "" when missing, null or (a type problem) not one."""
    field = value.get(name)
    return field if isinstance(field, str) else ""


def _type_problems(value: dict[str, object], fields: dict[str, str], where: str) -> list[str]:
    """Where a known field holds a JSON type Go cannot decode into it: kubectl fails."""
    problems = []
    for name, value_of in value.items():
        kind = fields.get(name)
        if kind is None:
            if any(name.lower() == known.lower() for known in fields):
                problems.append(f"{where}{name} is spelt unlike its field (kubectl ignores it)")
            continue
        if value_of is None or kind == _ANY:
            continue
        if not isinstance(value_of, _TYPES[kind]):
            problems.append(f"{where}{name} is not {kind}")
        elif kind == _BASE64 and not _STANDARD_BASE64.fullmatch(str(value_of)):
            problems.append(f"{where}{name} is not standard base64")
        elif name in _NESTED:  # (an object, as its kind says)
            problems += _type_problems(cast("dict[str, object]", value_of), *_NESTED[name])
    return problems


def _key_pair_problems(cert: str, key: str) -> list[str]:
    """Whether the client certificate and key load as a pair (tls.X509KeyPair), as far as
    OpenSSL tells: their first PEM blocks of the types Go reads, a key that fits the
    certificate. Read through pipes: nothing of the key touches a disk."""
    blocks = [_PEM_BLOCK.search(cert), _PEM_BLOCK.search(key)]
    if blocks[0] is None or blocks[0][1] != "CERTIFICATE":
        return ["status.clientCertificateData does not start with a PEM CERTIFICATE"]
    if blocks[1] is None or blocks[1][1] not in _KEY_LABELS:
        return ["status.clientKeyData does not start with an unencrypted PEM private key"]
    try:
        import ssl

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        with _PipePath(cert) as cert_path, _PipePath(key) as key_path:
            context.load_cert_chain(cert_path, key_path, password=_no_password)
    except (ImportError, OSError, ValueError) as error:  # (ssl.SSLError is an OSError)
        return [f"the client certificate and key do not load as a pair ({_reason(error)})"]
    return []


class _PipePath:
    """A path that reads `text` from a pipe (/dev/fd/N): OSError where there is none or
    `text` does not fit in the pipe at once."""

    def __init__(self, text: str) -> None:
        self.read, write = os.pipe()
        try:
            os.set_blocking(write, False)
            data = text.encode("utf-8", "surrogatepass")
            if os.write(write, data) != len(data):
                raise BlockingIOError("larger than a pipe holds")
        except BaseException:
            os.close(self.read)
            raise
        finally:
            os.close(write)

    def __enter__(self) -> str:
        return f"/dev/fd/{self.read}"

    def __exit__(self, *exc_info: object) -> None:
        os.close(self.read)


def _no_password() -> bytes:
    raise ValueError("the key is encrypted (kubectl cannot read it)")


def _object(pairs: list[tuple[str, object]]) -> dict[str, object]:
    found: dict[str, object] = {}
    for name, value in pairs:
        if name in found:  # Go would merge the second into the first: kubectl decides
            raise _Repeated(name)
        found[name] = value
    return found


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _reason(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return text if len(text) <= 80 else text[:77] + "..."


def _show(value: object) -> str:
    # Values in messages are short, and never the token: only kind, apiVersion, timestamp.
    text = json.dumps(value) if value is not None else "missing"
    return text if len(text) <= 60 else text[:57] + "..."


def _go_replace(error: UnicodeError) -> tuple[str, int]:
    # Go's UTF-8 decoding gives U+FFFD for each byte of an invalid sequence; Python's
    # "replace" gives one for the longest invalid prefix of a valid one.
    assert isinstance(error, UnicodeDecodeError)  # noqa: S101 - registered for decoding only
    return "\ufffd", error.start + 1


codecs.register_error("go-replace", _go_replace)
