"""Validation of what a backend printed: bytes in, a Credential or every problem out.

Pure (no clock, no I/O): the caller decides what to do with an expired one.
Nothing reaches the cache or kubectl without passing here.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import orjson

from shim.timestamp import parse_timestamp

API_GROUP = "client.authentication.k8s.io/"


@dataclass(frozen=True)
class Credential:
    """A valid ExecCredential: the bytes to print, its apiVersion and expiry (Unix seconds)."""

    output: bytes
    api_version: str
    expiry: float | None


def _status_problems(status: object) -> tuple[list[str], float | None]:
    if not isinstance(status, dict):
        return ["status is missing or not an object"], None
    problems = []
    token = status.get("token")
    has_token = isinstance(token, str) and token != ""
    cert, key = status.get("clientCertificateData"), status.get("clientKeyData")
    has_cert = isinstance(cert, str) and cert != "" and isinstance(key, str) and key != ""
    if not (has_token or has_cert):
        problems.append("status.token is missing or empty, and there is no client certificate+key")
    expiry = None
    stamp = status.get("expirationTimestamp")
    if stamp is not None:
        with contextlib.suppress(ValueError):  # expiry stays None: the problem below
            expiry = parse_timestamp(stamp) if isinstance(stamp, str) else None
        if expiry is None:
            problems.append(
                f"status.expirationTimestamp {_show(stamp)} is not a date-time kubectl accepts "
                "(RFC 3339 as Go reads it: 2006-01-02T15:04:05Z or ...+07:00)"
            )
    return problems, expiry


def validate(output: bytes, requested_api_version: str) -> Credential | list[str]:
    """The Credential in `output`, or the list of all its problems."""
    try:
        document = orjson.loads(output)
    except orjson.JSONDecodeError:
        return ["the output is not JSON" if output.strip() else "the output is empty"]
    if not isinstance(document, dict):
        return ["the output is not a JSON object"]
    problems = []
    if document.get("kind") != "ExecCredential":
        problems.append(f'kind is {_show(document.get("kind"))}, not "ExecCredential"')
    api_version = document.get("apiVersion")
    if not (isinstance(api_version, str) and api_version.startswith(API_GROUP)):
        problems.append(f"apiVersion {_show(api_version)} is not {API_GROUP}*")
    elif api_version != requested_api_version:
        # kubectl refuses it: "plugin returned version ..., expected ..." (client-go exec.go)
        problems.append(
            f"apiVersion is {api_version}, but kubectl asked for {requested_api_version}"
        )
    status_problems, expiry = _status_problems(document.get("status"))
    problems += status_problems
    if problems:
        return problems
    return Credential(output.strip() + b"\n", str(api_version), expiry)  # a str: no problems


def _show(value: object) -> str:
    # Values in messages are short, and never the token: only kind, apiVersion, timestamp.
    text = orjson.dumps(value).decode() if value is not None else "missing"
    return text if len(text) <= 60 else text[:57] + "..."
