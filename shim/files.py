"""Careful file I/O: the cache directory, kubeconfig files, and the credential on stdout.

Every file in a cache directory may be something else than it should be: a FIFO,
a symlink, a directory, a socket, a file of someone else's. So files are
opened with O_NONBLOCK (opening a FIFO never waits for a writer or reader) and
O_NOFOLLOW, and used only after fstat says they are regular files we own. Writes
that must not be seen half-done go through a temp file in the same directory and
os.replace. A cache hit reads entries and writes the credential through here (one
module, not two: each costs a hit a .pyc to load); shim.main states its import diet.
"""

from __future__ import annotations

import os
import stat
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
# Windows: binary (text mode would turn \n into \r\n, and stop a read at a Ctrl-Z byte),
# and not inherited by the processes we start (its close-on-exec).
_WINDOWS = getattr(os, "O_BINARY", 0) | getattr(os, "O_NOINHERIT", 0)
CAREFUL = _NOFOLLOW | _CLOEXEC | _NONBLOCK | _WINDOWS
MAX_READ = 1 << 20  # what we write is a few kB; anything larger is not ours
TEMP_SUFFIX = ".tmp"


class NotRegular(OSError):
    """What stands at a path is not a regular file of ours (a FIFO, a directory...)."""


def my_uid() -> int | None:
    """Our effective uid, where the platform has one."""
    return os.geteuid() if hasattr(os, "geteuid") else None


def is_private(st: os.stat_result) -> bool:
    """A file (open_regular's: regular) owned by us with no group or other permission bits."""
    uid = my_uid()
    return uid is None or (st.st_uid == uid and not st.st_mode & 0o077)


def open_regular(
    path: str, flags: int, mode: int = 0o600, follow: bool = False
) -> tuple[int, os.stat_result]:
    """Open `path` without blocking, and without following a symlink unless `follow`;
    NotRegular unless what it opened is a regular file."""
    fd = os.open(path, flags | (CAREFUL & ~_NOFOLLOW if follow else CAREFUL), mode)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegular("not a regular file")  # the caller names the path
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def make_0600(fd: int, st: os.stat_result) -> None:
    """Give the open file `fd` mode 0600 if it has another: O_CREAT's mode is filtered by the
    umask (0277 would make a file we create unwritable)."""
    if st.st_mode & 0o777 != 0o600 and hasattr(os, "fchmod"):
        os.fchmod(fd, 0o600)


def read_private(path: str) -> bytes | None:
    """The bytes of a regular file at `path` private to us, at most MAX_READ of them (its
    reader refuses a file cut short: an entry's digest, a note's format); None for anything
    else."""
    try:
        fd, st = open_regular(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        # As aws-iam-authenticator's filecache: refuse a token file others could read or plant.
        if not is_private(st):
            return None
        return os.read(fd, MAX_READ)
    except OSError:
        return None
    finally:
        os.close(fd)


def read_all(fd: int) -> bytes:
    """Everything left in the open file `fd`."""
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def write_private(path: str, data: bytes) -> None:
    """Overwrite a small 0600 file in place: for sidecars, which may be lost but not leaked."""
    fd, st = open_regular(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        make_0600(fd, st)
        os.write(fd, data)
    finally:
        os.close(fd)


def touch_private(path: str) -> None:
    """Create `path` as a 0600 file if need be, and set its mtime to now."""
    fd, _ = open_regular(path, os.O_WRONLY | os.O_CREAT)
    try:
        os.utime(fd if os.utime in os.supports_fd else path)  # (not on Windows)
    finally:
        os.close(fd)


def open_append(path: str) -> int:
    """A descriptor appending to a 0600 log file of ours at `path`."""
    fd, st = open_regular(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    make_0600(fd, st)
    return fd


def temp_name(path: str) -> str:
    """A fresh name for a temp file beside `path`: `.NAME.PID.RANDOM.tmp`."""
    directory, name = os.path.split(path)
    return os.path.join(directory, f".{name}.{os.getpid()}.{os.urandom(4).hex()}{TEMP_SUFFIX}")


def replace_file(
    path: str,
    data: bytes,
    mode: int = 0o600,
    durable: bool = False,
    owner: tuple[int, int] | None = None,
) -> None:
    """Atomically replace `path` with `data`: a temp file in the same directory, then os.replace.

    Readers see the old file or the new one, never half. `mode` is set whatever the
    umask. `durable` adds an fsync, for files that cannot be fetched again (kubeconfig).
    `owner` (uid, gid) is given to the new file before its mode (a chown clears setuid).
    """
    temp = temp_name(path)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | CAREFUL, 0o600)
    try:
        try:
            if owner is not None:
                os.fchown(fd, *owner)
            if hasattr(os, "fchmod"):
                os.fchmod(fd, mode)  # O_CREAT's mode is filtered by the umask
            while data:
                data = data[os.write(fd, data) :]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        _while_open_elsewhere(lambda: os.replace(temp, path))
    except BaseException:
        unlink(temp)
        raise


def _while_open_elsewhere(action: Callable[[], None]) -> None:
    """Run `action`, a replace or an unlink. On Windows a file another process has open
    cannot be replaced or removed while it is (WinError 5 or 32), and our readers hold
    one for microseconds: try again, for a second at most."""
    deadline = time.monotonic() + 1.0
    while True:
        try:
            return action()
        except PermissionError:
            if os.name != "nt" or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def make_private_dirs(path: str) -> None:
    """Create `path` and any missing parents as 0700 directories, whatever the umask."""
    missing = []
    while not os.path.isdir(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    for directory in reversed(missing):
        try:
            if os.name == "nt":  # (mode bits mean nothing there: an owner-only ACL)
                from shim.windows import make_private_dir

                make_private_dir(directory)
                continue
            os.mkdir(directory, 0o700)
        except FileExistsError:
            if not os.path.isdir(directory):
                raise
            continue  # another process made it first
        os.chmod(directory, 0o700)  # mkdir's mode is filtered by the umask


def unlink(path: str) -> bool:
    """Remove `path` unless it is a directory; whether something was removed."""
    try:
        os.unlink(path)
    except (FileNotFoundError, IsADirectoryError):
        return False
    except PermissionError:
        if os.name != "nt" or os.path.isdir(path):
            raise
        # Windows: a read-only file (mode 0, as kubectl makes its lock) is removed as Go's
        # os.Remove does it, writable first; one open elsewhere, once it is closed.
        try:  # noqa: SIM105 - a cache hit does without contextlib
            os.chmod(path, stat.S_IWRITE)
        except OSError:
            pass
        _while_open_elsewhere(lambda: os.unlink(path))
    return True


def write_credential(data: bytes) -> None:
    """Write `data` whole to stdout, which kubectl parses: the only writer of file descriptor
    1 (bypassing sys.stdout's text layer)."""
    while data:
        data = data[os.write(1, data) :]
