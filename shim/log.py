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
    if sys.stderr is None:  # started with stderr closed: nobody to tell
        return
    try:  # noqa: SIM105 - contextlib is not imported for this alone
        sys.stderr.write(f"{stamp}{PREFIX}{level}{message}\n")  # line-buffered (3.9+)
    except (OSError, ValueError):
        pass  # stderr broken or closed: a message lost must not cost the credential


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
    if sys.stderr is not None:
        try:  # noqa: SIM105 - as in _write
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
    try:
        while data:
            data = data[os.write(2, data) :]
    except OSError:
        pass  # our own stderr is gone: the backend's messages have nowhere to go


def standard_streams_open() -> None:
    """Open /dev/null on any of descriptors 0, 1 and 2 that we were started without, so
    that no file we open later takes one of their numbers (a lock file as descriptor 2
    would receive the backend's stderr; as descriptor 1, the credential). Descriptor 1
    is opened read-only: writing the credential still fails as on a closed stdout."""
    for fd, mode in ((0, os.O_RDONLY), (1, os.O_RDONLY), (2, os.O_WRONLY)):
        try:
            os.fstat(fd)
        except OSError:
            opened = os.open(os.devnull, mode)
            if opened != fd:  # (the lowest free number: fd itself, as 0..fd-1 are open)
                os.dup2(opened, fd)
                os.close(opened)
