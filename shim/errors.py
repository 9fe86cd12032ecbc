"""The expected failures: each carries a one-line message and an exit code."""

from __future__ import annotations

import sys

# Exit codes follow the shell's conventions so that scripts can tell them apart.
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_CRASH = 3  # an unexpected exception: a bug, with a crash log (shim.crash)
EXIT_TIMEOUT = 124  # as timeout(1)
EXIT_NOT_EXECUTABLE = 126
EXIT_NOT_FOUND = 127
EXIT_INTERRUPTED = 130


class ShimError(Exception):
    """A failure the user can act on; the error boundary prints it without a traceback."""

    exit_code = EXIT_FAILURE

    def __init__(self, message: str, exit_code: int | None = None, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint  # what to do about it, a line of its own
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(ShimError):
    """The command line or an EKS_SHIM_* variable is wrong; the backend never ran."""

    exit_code = EXIT_USAGE


class BackendError(ShimError):
    """The backend failed, timed out, could not start or printed an invalid credential."""

    stderr = b""  # the end of what the backend wrote to stderr (passed on as it came)


class NotACredential(BackendError):
    """The backend succeeded, but printed nothing the shim can be sure kubectl accepts:
    kubectl gets it as it came, uncached, and decides (its own error, or a credential
    in a form the shim does not vouch for, such as YAML)."""

    def __init__(self, message: str, output: bytes) -> None:
        super().__init__(message)
        self.output = output


def not_found(command: str) -> BackendError:
    """The backend's program is nowhere to be run: exit 127, as a shell says it. A path
    names no file; a name was looked for on PATH."""
    if has_directory(command):
        return BackendError(f"{command}: no such file", EXIT_NOT_FOUND)
    return BackendError(f"{command}: command not found (is it on PATH?)", EXIT_NOT_FOUND)


def has_directory(command: str) -> bool:
    """Whether `command` names a path, not a program to look up (Go's test: a `/`; on
    Windows also `\\` or a drive's `:`)."""
    return any(char in command for char in (":\\/" if sys.platform == "win32" else "/"))


class Terminated(BaseException):
    """SIGTERM, SIGHUP or SIGINT arrived while a backend ran; its group has been ended.

    A BaseException, as KeyboardInterrupt: no `except Exception` may swallow it.
    """

    def __init__(self, signum: int) -> None:  # (BaseException.__new__ keeps the args)
        self.signum = signum
        self.exit_code = 128 + signum
