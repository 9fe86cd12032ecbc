"""Entry metadata: what --list shows and --purge matches, never the token.

Encoded with the standard library's json, which round-trips any str Python gives
us, lone surrogates included: arguments and environment are bytes on POSIX, and a
cluster or profile name that is not UTF-8 arrives as surrogate-escaped text. orjson
refuses those, and that used to throw a valid credential away (issue #8).
"""

from __future__ import annotations

import json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from shim.selection import Request


def encode(request: Request, api_version: str) -> bytes:
    """The metadata stored with an entry for `request`."""
    record = {
        "cluster": request.cluster or cluster_in_command(request.command),
        "command": request.command,
        "profile": request.profile,
        "region": request.region,
        "apiVersion": api_version,
    }
    return json.dumps(record, ensure_ascii=True).encode("ascii")


def decode(data: bytes) -> dict[str, object]:
    """The metadata in `data`; empty when it cannot be read."""
    try:
        record = json.loads(data)
    except (ValueError, RecursionError):
        return {}
    return record if isinstance(record, dict) else {}


def printable(value: object) -> str:
    """`value` as text safe for any terminal: bytes that were not UTF-8 shown as \\xNN."""
    text = str(value)
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate no decoder made: show it escaped
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def cluster_in_command(argv: list[str]) -> str | None:
    """The cluster an `aws eks get-token` or `aws-iam-authenticator token` argv names, if any."""
    for flag in ("--cluster-name", "--cluster-id", "-i"):
        for at, arg in enumerate(argv[:-1]):
            if arg == flag:
                return argv[at + 1]
        for arg in argv:
            if arg.startswith(flag + "="):
                return arg[len(flag) + 1 :]
    return None
