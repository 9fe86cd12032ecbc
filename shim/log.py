"""Diagnostics: one stderr logger for the whole tool. stdout belongs to kubectl.

Nothing logged here ever contains a token: messages name commands, files and times.

Everything written to stderr, messages and the backend's own stderr alike, goes
through one writer to descriptor 2 that a full pipe nobody reads cannot hold past
the call's deadline (bound_stderr): it waits for room with poll, writes what fits,
and once the deadline has passed with stderr still full, it drops the rest of the
call's stderr rather than the credential.
"""

from __future__ import annotations

import os
import time

PREFIX = "eks-token-shim: "
_state = {"verbose": False, "timestamps": False}


class _Stderr:
    until: float | None = None  # monotonic time after which nothing waits for room
    pending = b""  # written, and waiting for room
    stuck = False  # the deadline passed with stderr full: the rest is dropped


_PENDING_LIMIT = 1 << 20  # bytes that may wait for room; the oldest go first


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


def bound_stderr(until: float) -> None:
    """From now on, stderr waits for room until the monotonic time `until` at most (the
    call's --timeout), and nothing waits in a write: what does not fit waits here for
    flush_stderr, so that a full pipe nobody reads holds neither the backend's output
    nor the call. (Not on Windows, whose pipes cannot be polled: writes go straight
    through there.)"""
    if os.name != "nt":
        _Stderr.until = until


def _write(level: str, message: str) -> None:
    stamp = utc() + " " if _state["timestamps"] else ""
    text = f"{stamp}{PREFIX}{level}{message}\n"
    try:  # bytes of an argument or path that were not UTF-8 (surrogateescape'd): \xNN
        data = text.encode("utf-8", "surrogateescape")
        _emit(data.decode("utf-8", "backslashreplace").encode("utf-8"))
    except UnicodeEncodeError:  # a surrogate no decoder made
        _emit(text.encode("utf-8", "backslashreplace"))


def _emit(data: bytes) -> None:
    """Write `data` to descriptor 2: at once, or (bound_stderr) as room comes. A message
    lost, or stderr broken or closed, must not cost the credential."""
    if _Stderr.stuck:
        return
    if _Stderr.until is None:
        try:
            while data:
                data = data[os.write(2, data) :]
        except OSError:
            _Stderr.stuck = True
        return
    _Stderr.pending = (_Stderr.pending + data)[-_PENDING_LIMIT:]
    flush_stderr(wait=False)


def stderr_waiting() -> bool:
    """Whether something waits for room on stderr (poll descriptor 2 for POLLOUT)."""
    return bool(_Stderr.pending)


def flush_stderr(wait: bool = True) -> None:
    """Write what waits for room on stderr: if `wait`, until the stderr deadline, else what
    fits now. When the deadline passes with stderr still full, the rest is dropped, and
    so is everything written after it."""
    if not _Stderr.pending:
        return
    import select  # (only when there is something to say: not on a silent hit)

    poller = select.poll()
    poller.register(2, select.POLLOUT)
    try:
        while _Stderr.pending:
            until = _Stderr.until if wait else None
            left = 0.0 if until is None else max(0.0, until - time.monotonic())
            if not poller.poll(left * 1000):
                if wait:
                    _Stderr.stuck, _Stderr.pending = True, b""
                return
            # No more than PIPE_BUF at once: what poll says fits without blocking.
            written = os.write(2, _Stderr.pending[: select.PIPE_BUF])
            _Stderr.pending = _Stderr.pending[written:]
    except OSError:  # (POLLERR, POLLHUP: the write fails as it would)
        _Stderr.stuck, _Stderr.pending = True, b""


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
    _emit(data)


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
