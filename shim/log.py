"""Diagnostics: one stderr logger for the whole tool. stdout belongs to kubectl.

Nothing logged here ever contains a token: messages name commands, files and times.
"""

from __future__ import annotations

import sys

PREFIX = "eks-token-shim: "
_state = {"verbose": False}


def set_verbose(verbose: bool) -> None:
    """Turn debug messages on or off (-v, EKS_SHIM_DEBUG=1)."""
    _state["verbose"] = verbose


def is_verbose() -> bool:
    """Whether debug messages are on."""
    return _state["verbose"]


def _write(level: str, message: str) -> None:
    sys.stderr.write(f"{PREFIX}{level}{message}\n")
    sys.stderr.flush()


def error(message: str) -> None:
    """A failure: the command did not print a credential."""
    _write("error: ", message)


def warn(message: str) -> None:
    """Something the user should know; the credential was printed anyway."""
    _write("warning: ", message)


def debug(message: str) -> None:
    """Detail for -v only."""
    if _state["verbose"]:
        _write("debug: ", message)
