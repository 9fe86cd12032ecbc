"""The one place that runs a backend command: an argv list, never a shell string.

Started and finished in two steps, so that the caller can prepare validation
while the backend (hundreds of milliseconds of AWS CLI) runs (issue #3).
stdin and stderr are inherited (MFA prompts, the backend's own messages);
stdout is captured: it is the credential, and only a valid one reaches kubectl.

Built on os.posix_spawnp and a pipe rather than subprocess: `import subprocess`
costs about 24 ms on our 2-core machine (it pulls in threading, selectors,
signal, locale...), paid on every refresh before the backend can even start.
"""

from __future__ import annotations

import os
import time

from shim.errors import EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND, EXIT_TIMEOUT, BackendError

_READ_SIZE = 65536


class Running:
    """A started backend: its pid and the read end of its stdout."""

    __slots__ = ("argv", "pid", "stdout")

    def __init__(self, argv: list[str], pid: int, stdout: int) -> None:
        self.argv = argv
        self.pid = pid
        self.stdout = stdout


def describe(argv: list[str]) -> str:
    """The command as a user would type it, for messages."""
    import shlex

    return " ".join(shlex.quote(arg) for arg in argv)


def start(argv: list[str], env: dict[str, str]) -> Running:
    """Start `argv` (looked up on PATH) with `env`, its stdout piped to us."""
    read_end, write_end = os.pipe()  # both close-on-exec: only the dup2'd copy reaches the child
    try:
        pid = os.posix_spawnp(
            argv[0], argv, env, file_actions=[(os.POSIX_SPAWN_DUP2, write_end, 1)]
        )
    except OSError as error:
        os.close(read_end)
        raise _start_error(argv, error) from None
    finally:
        os.close(write_end)
    return Running(argv, pid, read_end)


def _start_error(argv: list[str], error: OSError) -> BackendError:
    if isinstance(error, FileNotFoundError):
        return BackendError(f"{argv[0]}: command not found (is it on PATH?)", EXIT_NOT_FOUND)
    if isinstance(error, PermissionError):
        return BackendError(f"{argv[0]}: permission denied", EXIT_NOT_EXECUTABLE)
    return BackendError(f"{argv[0]}: cannot run: {error.strerror}")


def finish(running: Running, timeout: float) -> bytes:
    """Wait for the backend; its stdout, or a BackendError with the command and exit code."""
    deadline = time.monotonic() + timeout
    try:
        stdout = _read_all(running.stdout, deadline)
        status = _wait(running.pid, deadline)
    except BaseException as error:  # the timeout, Ctrl-C: never leave the backend running
        _kill(running.pid)
        if isinstance(error, TimeoutError):
            raise BackendError(
                f"{describe(running.argv)} timed out after {timeout:g} s and was killed",
                EXIT_TIMEOUT,
            ) from None
        raise
    finally:
        os.close(running.stdout)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        # A signal -N becomes 128+N, as the shell reports it.
        exit_code = code if code > 0 else 128 - code
        raise BackendError(f"{describe(running.argv)} failed with exit code {code}", exit_code)
    return stdout


def _read_all(fd: int, deadline: float) -> bytes:
    import select

    poller = select.poll()
    poller.register(fd, select.POLLIN)
    chunks: list[bytes] = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        if not poller.poll(left * 1000):
            continue
        chunk = os.read(fd, _READ_SIZE)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _wait(pid: int, deadline: float) -> int:
    # stdout is closed: the backend is exiting. Poll rather than block, in case it
    # closed stdout and went on running.
    pause = 0.0005
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        if time.monotonic() >= deadline:
            raise TimeoutError
        time.sleep(pause)
        pause = min(pause * 2, 0.02)


def _kill(pid: int) -> None:
    import signal

    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass
