"""One outcome for everyone who waited: the calls that queue behind a key's lock while
its holder fetches get the holder's credential or failure, not a backend run each.

The holder listens on `<key>.sock` in the cache directory (0600 in a 0700 directory:
only its owner can connect) while its backend runs. A call that finds the lock busy
connects and waits; the kernel queues those connections. When the fetch is over, the
holder accepts every queued connection, sends each the outcome, closes the socket and
removes it, then lets the lock go. A call that comes later finds no socket, or one
that refuses it, and takes the lock as before: an outcome is shared with those who
waited for it, never kept, and nothing of it is written to disk.

Where this cannot work (no AF_UNIX, as on Windows before Python has it; outside
Linux, a cache directory whose path is too long for a socket's: Linux reaches it
through /proc/self/fd), callers queue on the lock as before.
The standard library's `_socket` (C), not `socket`: that imports enum and selectors,
milliseconds on every miss before the backend starts.
"""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING, Union

from shim.errors import BackendError, NotACredential
from shim.files import my_uid, unlink

if TYPE_CHECKING:
    import _socket

    from shim.deadline import Deadline

MAGIC = b"eks-token-shim-outcome/1"
# What a holder's fetch came to: the credential it printed, or its failure.
Outcome = Union[bytes, BackendError]
_MAX_PATH = 100  # sun_path holds 104 bytes on macOS, 108 on Linux, with its NUL
_BACKLOG = 128  # the calls that may queue; more fall back to the lock
_MAX_OUTCOME = 32 << 20  # bytes: above any backend output the shim accepts (16 MiB), header too
_SEND_TIMEOUT = 1.0  # seconds for a waiter to take what we send (it waits in recv)
CREDENTIAL = b"credential"
FAILURE = b"failure"
PASSED = b"passed"  # NotACredential: its message's length, the message, the output


def _unix_socket() -> _socket.socket | None:
    try:
        import _socket
    except ImportError:  # pragma: no cover - every CPython has it
        return None
    family = getattr(_socket, "AF_UNIX", None)
    return None if family is None else _socket.socket(family, _socket.SOCK_STREAM)


def _accepted(fd: int) -> _socket.socket:
    import _socket

    return _socket.socket(fileno=fd)


def encode(key: str, identity: bytes, outcome: Outcome) -> bytes:
    """The bytes a holder sends: a header line naming the key, the fingerprint of the
    identity files its fetch began with (shim.keys.fingerprint), and the kind of outcome;
    then the credential; or the failure's message, hint (a line each) and the end of the
    backend's stderr; or, for output that is not a credential, the message and the output."""
    head = b"%s %s %s" % (MAGIC, key.encode(), identity)
    if isinstance(outcome, bytes):
        return b"%s %s 0\n%s" % (head, CREDENTIAL, outcome)
    if isinstance(outcome, NotACredential):
        message = _encoded(outcome.message)
        return b"%s %s %d\n%s%s" % (head, PASSED, len(message), message, outcome.output)
    lines = _encoded(outcome.message + "\n" + outcome.hint + "\n")
    return b"%s %s %d\n%s%s" % (
        head,
        FAILURE,
        outcome.exit_code,
        lines,
        outcome.stderr,
    )


def _encoded(text: str) -> bytes:
    try:  # (an argument that was not UTF-8 comes back as it was)
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate no decoder made: shown escaped
        return text.encode("utf-8", "backslashreplace")


def decode(key: str, identity: bytes, data: bytes) -> Outcome | None:
    """The outcome in `data`, if it is a whole one for `key`, fetched with the identity
    files as the caller found them (else it may be another identity's)."""
    header, newline, body = data.partition(b"\n")
    parts = header.split(b" ")
    if not newline or len(parts) != 5 or parts[:3] != [MAGIC, key.encode(), identity]:
        return None
    if parts[3] == CREDENTIAL and body:
        return body
    if parts[3] == FAILURE and parts[4].isdigit():
        message, _, rest = body.partition(b"\n")
        hint, _, stderr = rest.partition(b"\n")
        error = BackendError(
            message.decode("utf-8", "surrogateescape"),
            int(parts[4]),
            hint.decode("utf-8", "surrogateescape"),
        )
        error.stderr = stderr
        return error
    if parts[3] == PASSED and parts[4].isdigit() and int(parts[4]) <= len(body):
        size = int(parts[4])
        return NotACredential(body[:size].decode("utf-8", "surrogateescape"), body[size:])
    return None


class Holder:
    """The lock holder's listening socket, for a `with` around its fetch: set `outcome`
    before the block ends, and every call that connected meanwhile gets it."""

    def __init__(self, path: str, key: str, identity: bytes) -> None:
        self.path = path
        self.key = key
        self.identity = identity  # the fingerprint of the identity files the fetch began with
        self.outcome: Outcome | None = None  # None: none to share (they take the lock)
        self._listener = _listen(path)

    def __enter__(self) -> Holder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.publish()

    def publish(self) -> None:
        """Send the outcome to every call that connected while we fetched, then close
        the socket and remove it. Never raises: the fetch's own outcome comes first."""
        if self._listener is None:
            return
        outcome = self.outcome
        data = encode(self.key, self.identity, outcome) if outcome is not None else b""
        try:
            self._listener.setblocking(False)
            while True:
                try:
                    # (the C socket's accept, which socket.socket.accept wraps)
                    fd, _ = self._listener._accept()  # type: ignore[attr-defined]
                except (BlockingIOError, InterruptedError):
                    break
                _send(_accepted(fd), data)
        except OSError:
            pass
        finally:
            self._listener.close()
            self._listener = None
            unlink(self.path)


def _listen(path: str) -> _socket.socket | None:
    """A socket listening at `path` (we hold the key's lock: a socket file there is a dead
    holder's); None where there can be none, which only costs the sharing."""
    listener = _unix_socket()
    address = _address(path)
    if listener is None or address is None:
        return None
    unlink(path)
    old_umask = os.umask(0o177)  # the socket file is made 0600, with no window
    try:
        listener.bind(address.name)
        listener.listen(_BACKLOG)
    except OSError:
        listener.close()
        return None
    finally:
        os.umask(old_umask)
        address.close()
    return listener


class _Address:
    """A name for a socket at `path` that fits in sun_path: the path itself, or, for a
    long one on Linux, the path through /proc/self/fd/N of its open directory (which
    `close` closes once the name has been used)."""

    def __init__(self, name: str, directory_fd: int | None = None) -> None:
        self.name = name
        self._fd = directory_fd

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)


def _address(path: str) -> _Address | None:
    """The _Address of `path`; None when no name of it fits."""
    if len(os.fsencode(path)) <= _MAX_PATH:
        return _Address(path)
    directory, name = os.path.split(path)
    try:
        flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(directory, flags)
    except OSError:
        return None
    address = _Address(f"/proc/self/fd/{fd}/{name}", fd)
    if len(address.name) > _MAX_PATH or not os.path.isdir(f"/proc/self/fd/{fd}"):
        address.close()
        return None
    return address


def _send(connection: _socket.socket, data: bytes) -> None:
    try:
        connection.settimeout(_SEND_TIMEOUT)
        if data:
            connection.sendall(data)
    except OSError:
        pass  # that caller went away; the others still get theirs
    finally:
        connection.close()


class Waiter:
    """A call waiting behind the lock: called between two tries of the lock, it connects
    to the holder's socket and, once connected, waits for the outcome until `deadline`.
    True once there is an outcome (in `outcome`) for the identity files as they were
    when the call began (`identity`, their fingerprint)."""

    def __init__(self, path: str, key: str, identity: bytes, deadline: Deadline) -> None:
        self.path = path
        self.key = key
        self.identity = identity
        self.deadline = deadline
        self.outcome: Outcome | None = None

    def __call__(self) -> bool:
        connection = self._connect()
        if connection is None:
            return False
        try:
            self.outcome = decode(self.key, self.identity, self._receive(connection))
        except OSError:
            self.outcome = None  # the holder went away, or the deadline came: the lock decides
        finally:
            connection.close()
        return self.outcome is not None

    def _connect(self) -> _socket.socket | None:
        try:
            st = os.lstat(self.path)
        except OSError:
            return None
        uid = my_uid()
        if not stat.S_ISSOCK(st.st_mode) or (uid is not None and st.st_uid != uid):
            return None  # not a holder of ours
        connection = _unix_socket()
        address = _address(self.path)
        if connection is None or address is None:
            return None
        try:
            connection.settimeout(max(self.deadline.left(), 0.001))
            connection.connect(address.name)
        except OSError:  # refused: the holder is gone, or done
            connection.close()
            return None
        finally:
            address.close()
        return connection

    def _receive(self, connection: _socket.socket) -> bytes:
        """Everything the holder sends, up to its closing; b"" (no outcome) for more than
        _MAX_OUTCOME bytes: a credential cut short must never pass for a whole one."""
        chunks: list[bytes] = []
        size = 0
        while True:
            left = self.deadline.left()
            if not left:
                raise TimeoutError
            connection.settimeout(left)
            chunk = connection.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            size += len(chunk)
            if size > _MAX_OUTCOME:
                return b""
