"""A per-key lock on a separate `<key>.lock` file, so that parallel misses run the backend once.

The lock is an OS lock on an open file: the system drops it when its holder dies,
so a lock left by a killed process never blocks the next call.

One implementation per platform, from the standard library, with the same semantics:
- `flock`: fcntl.flock(2), on POSIX.
- `msvcrt`: msvcrt.locking on the file's first byte, on Windows (LockFile underneath,
  as Go's and kubelogin's locks there).
Not portalocker, which makes the same calls: importing it costs about 60 ms on Linux
and ~240 ms under Wine, on top of every refresh, where these imports cost nothing.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import IO, TYPE_CHECKING, Any, Callable

from shim.files import make_0600, open_regular

if TYPE_CHECKING:
    from shim.deadline import Deadline

_FIRST_POLL = 0.001
_LAST_POLL = 0.05
# msvcrt.locking's answers when another holds the lock: EACCES, and EDEADLOCK; Wine's
# C runtime sets no errno there, so Python says 0.
_HELD_ELSEWHERE = (13, 36, 0)


def _flock_try(file: IO[Any]) -> bool:
    import fcntl

    try:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _flock_release(file: IO[Any]) -> None:
    import fcntl

    fcntl.flock(file.fileno(), fcntl.LOCK_UN)


def _msvcrt_try(file: IO[Any]) -> bool:
    import msvcrt

    os.lseek(file.fileno(), 0, os.SEEK_SET)  # (it locks from the current position)
    try:
        msvcrt.locking(file.fileno(), msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
    except OSError as error:
        if error.errno in _HELD_ELSEWHERE:
            return False
        raise
    return True


def _msvcrt_release(file: IO[Any]) -> None:
    import msvcrt

    os.lseek(file.fileno(), 0, os.SEEK_SET)
    msvcrt.locking(file.fileno(), msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]


IMPLEMENTATIONS: dict[str, tuple[Callable[[IO[Any]], bool], Callable[[IO[Any]], None]]] = {
    "flock": (_flock_try, _flock_release),
    "msvcrt": (_msvcrt_try, _msvcrt_release),
}
DEFAULT_IMPLEMENTATION = "flock" if os.name == "posix" else "msvcrt"


def _open(path: str) -> IO[Any]:
    """The lock file, opened as shim.files opens everything in the cache directory: a FIFO,
    symlink or directory there is an OSError, never a hang."""
    fd, st = open_regular(path, os.O_RDWR | os.O_CREAT)
    make_0600(fd, st)
    return os.fdopen(fd, "r+b", buffering=0)  # held until release


class KeyLock:
    """The lock of one key: `acquire(deadline)` waits for it, `release()` lets it go.

    `acquire` raises OSError when the lock file cannot be opened (a read-only or full
    file system, something else than a file at its path): the caller decides.
    """

    def __init__(self, path: str, implementation: str = DEFAULT_IMPLEMENTATION) -> None:
        self.path = path
        self._try, self._release = IMPLEMENTATIONS[implementation]
        self._file: IO[Any] | None = None

    def acquire(self, deadline: Deadline, meanwhile: Callable[[], bool] | None = None) -> bool:
        """Take the lock, waiting until `deadline` at most; whether it was taken. Between
        two tries, `meanwhile()` may end the wait early by answering True."""
        poll = _FIRST_POLL
        while True:
            file = _open(self.path)
            if self._try(file):
                if self._still_at_path(file):
                    self._file = file
                    return True
                # A purge removed the file we locked: lock the new one (the race of
                # https://github.com/tox-dev/filelock/issues/31).
                self._release(file)
                file.close()
                continue
            file.close()
            if (meanwhile is not None and meanwhile()) or deadline.passed():
                return False
            time.sleep(poll)
            poll = min(poll * 2, _LAST_POLL)

    def release(self, remove: bool = False) -> None:
        """Let the lock go, if it is held. With `remove`, its file goes too, so that locks
        of keys with no entry (a failed fetch, a purged entry) do not pile up: on POSIX
        while still held, and only if it is still our file at the path (a waiter that
        opened it then finds it gone and locks the new one); on Windows, which removes no
        file another process holds open, after closing it, if no one has it open."""
        if self._file is None:
            return
        if remove and os.name == "posix" and self._still_at_path(self._file):
            _unlink_quietly(self.path)
        self._release(self._file)
        self._file.close()
        self._file = None
        if remove and os.name == "nt":
            _unlink_quietly(self.path)

    def _still_at_path(self, file: IO[Any]) -> bool:
        try:
            on_disk = os.stat(self.path)
        except FileNotFoundError:
            return False
        held = os.fstat(file.fileno())
        return (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino)


def _unlink_quietly(path: str) -> None:
    """Remove a lock file if the file system lets us: it is bookkeeping, never a failure."""
    with contextlib.suppress(OSError):  # gone already, a read-only file system, open elsewhere
        os.unlink(path)
