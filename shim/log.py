"""Diagnostics: one stderr logger for the whole tool. stdout belongs to kubectl.

Nothing logged here ever contains a token: messages name commands, files and times.
"""

from __future__ import annotations

import os
import sys
import time

PREFIX = "eks-token-shim: "
_state = {"verbose": False, "timestamps": False}


def set_verbose(verbose: bool) -> None:
    """Turn debug messages on or off (-v, EKS_SHIM_DEBUG=1)."""
    _state["verbose"] = verbose


def set_timestamps(timestamps: bool) -> None:
    """Stamp each message with the time: for background.log, read long after the fact."""
    _state["timestamps"] = timestamps


def is_verbose() -> bool:
    """Whether debug messages are on."""
    return _state["verbose"]


def utc(seconds: float | None = None) -> str:
    """Unix `seconds` (default: now) as kubectl writes times: 2006-01-02T15:04:05Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _write(level: str, message: str) -> None:
    stamp = utc() + " " if _state["timestamps"] else ""
    sys.stderr.write(f"{stamp}{PREFIX}{level}{message}\n")  # stderr is line-buffered (3.9+)


def error(message: str) -> None:
    """A failure: the command did not print a credential."""
    _write("error: ", message)


def warn(message: str) -> None:
    """Something the user should know; the credential was printed anyway."""
    _write("warning: ", message)


def hint(message: str) -> None:
    """What the user can do about the error just reported."""
    _write("hint: ", message)


def debug(message: str) -> None:
    """Detail for -v only."""
    if _state["verbose"]:
        _write("debug: ", message)


def relay(data: bytes) -> None:
    """Bytes a backend wrote to its stderr, passed on as they are."""
    sys.stderr.flush()
    try:
        while data:
            data = data[os.write(2, data) :]
    except OSError:
        pass  # our stderr is gone: nowhere to pass them on to
