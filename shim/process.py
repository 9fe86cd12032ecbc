"""The one place that runs a backend command: an argv list, never a shell string.

Started and finished in two steps, so that the caller can prepare validation
while the backend (hundreds of milliseconds of AWS CLI) runs (issue #3).
stdin and stderr are inherited (MFA prompts, the backend's own messages);
stdout is captured: it is the credential, and only a valid one reaches kubectl.
"""

from __future__ import annotations

import shlex
import subprocess

from shim.errors import EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND, EXIT_TIMEOUT, BackendError


def describe(argv: list[str]) -> str:
    """The command as a user would type it, for messages."""
    return " ".join(shlex.quote(arg) for arg in argv)


def start(argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start `argv` with `env`, its stdout piped to us."""
    try:
        return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE)
    except FileNotFoundError:
        raise BackendError(
            f"{argv[0]}: command not found (is it on PATH?)", EXIT_NOT_FOUND
        ) from None
    except PermissionError:
        raise BackendError(f"{argv[0]}: permission denied", EXIT_NOT_EXECUTABLE) from None
    except OSError as error:
        raise BackendError(f"{argv[0]}: cannot run: {error.strerror}") from None


def finish(process: subprocess.Popen[bytes], argv: list[str], timeout: float) -> bytes:
    """Wait for the backend; its stdout, or a BackendError with the command and exit code."""
    try:
        stdout, _ = process.communicate(timeout=timeout)
    except BaseException as error:  # the timeout, Ctrl-C: never leave the backend running
        process.kill()
        process.wait()
        if isinstance(error, subprocess.TimeoutExpired):
            raise BackendError(
                f"{describe(argv)} timed out after {timeout:g} s and was killed", EXIT_TIMEOUT
            ) from None
        raise
    code = process.returncode
    if code != 0:
        # A signal -N becomes 128+N, as the shell reports it.
        raise BackendError(
            f"{describe(argv)} failed with exit code {code}", code if code > 0 else 128 - code
        )
    return stdout
