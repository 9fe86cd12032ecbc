"""Entry metadata: what --list shows and --purge matches, never the token.

Encoded with the standard library's json, which round-trips any str Python gives
us, lone surrogates included: arguments and environment are bytes on POSIX, and a
cluster or profile name that is not UTF-8 arrives as surrogate-escaped text.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from shim.backends import Selection, selection_of

if TYPE_CHECKING:
    from shim.request import Request


def encode(request: Request, api_version: str) -> bytes:
    """The metadata stored with an entry for `request`: what the backend table reads out of
    its command and environment, so that entries made in EKS mode and through a wrapped
    kubeconfig (generic mode) say the same things."""
    selected = selection_of(request.command, request.env) or Selection(None)
    record = {
        "cluster": selected.cluster,
        "command": request.command,
        "profile": selected.profile,
        "region": selected.region,
        "apiVersion": api_version,
        "mode": request.mode,
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
    """`value` as text safe for any terminal: bytes that were not UTF-8 shown as \\xNN,
    control characters (C0, DEL, C1: ESC, CSI and the rest) as \\xNN too."""
    text = str(value)
    try:
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate no decoder made: show it escaped
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text.translate(_CONTROLS)


# Each control character to its escape: what a terminal would act on, shown instead.
_CONTROLS = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0))}
