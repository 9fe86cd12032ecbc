"""A per-key lock on a separate `<key>.lock` file, so that parallel misses run the backend once.

The lock is an OS advisory lock on an open file: the kernel drops it when its
holder dies, so a lock left by a killed process never blocks the next call.

Two implementations with the same semantics (tests run both):
- `flock`: fcntl.flock(2) directly, on POSIX. It costs nothing to import, where
  `import portalocker` costs 60-150 ms on a 2-core machine (its `__about__` loads
  importlib.metadata): that would come straight on top of every refresh.
- `portalocker`: the cross-platform library, used where fcntl does not exist (Windows).
  On POSIX it makes the same flock(2) call, so both kinds of holders exclude each other.
"""

from __future__ import annotations

import os
import time
from typing import IO, TYPE_CHECKING, Any, Callable

from shim.files import make_0600, open_regular

if TYPE_CHECKING:
    from shim.deadline import Deadline

_FIRST_POLL = 0.001
_LAST_POLL = 0.05


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


def _portalocker_try(file: IO[Any]) -> bool:
    import portalocker

    try:
        portalocker.lock(file, portalocker.LOCK_EX | portalocker.LOCK_NB)
    except portalocker.AlreadyLocked:
        return False
    return True


def _portalocker_release(file: IO[Any]) -> None:
    import portalocker

    portalocker.unlock(file)


IMPLEMENTATIONS: dict[str, tuple[Callable[[IO[Any]], bool], Callable[[IO[Any]], None]]] = {
    "flock": (_flock_try, _flock_release),
    "portalocker": (_portalocker_try, _portalocker_release),
}
DEFAULT_IMPLEMENTATION = "flock" if os.name == "posix" else "portalocker"


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

    def release(self) -> None:
        """Let the lock go, if it is held."""
        if self._file is not None:
            self._release(self._file)
            self._file.close()
            self._file = None

    def _still_at_path(self, file: IO[Any]) -> bool:
        try:
            on_disk = os.stat(self.path)
        except FileNotFoundError:
            return False
        held = os.fstat(file.fileno())
        return (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino)
