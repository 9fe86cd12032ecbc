"""The cache directory: one `<key>.entry` file per credential, beside its `<key>.lock`.

Only `os` is used here, so that the hot path can read entries cheaply. Files are
0600 in a 0700 directory whatever the umask, written to a temp file in the same
directory and moved into place with os.replace (readers never see half an entry),
and opened without following symlinks. A directory owned by someone else, or
writable by group or others, is not used at all (issue #2).
"""

from __future__ import annotations

import os
import stat

from shim.entry import Entry, decode_entry, encode_entry

ENTRY_SUFFIX = ".entry"
LOCK_SUFFIX = ".lock"
SERVED_SUFFIX = ".served"  # who was last served the entry, and when (shim.client)
AHEAD_SUFFIX = ".ahead"  # its mtime: when a background refresh was last started
TEMP_SUFFIX = ".tmp"
BACKGROUND_LOG = "background.log"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_MAX_ENTRY_SIZE = 1 << 20  # a credential is a few kB; anything this large is not ours


def _my_uid() -> int | None:
    return os.geteuid() if hasattr(os, "geteuid") else None


def cache_dir_problem(cache_dir: str) -> str | None:
    """Why `cache_dir` must not hold tokens, or None when it is safe (or does not exist yet)."""
    try:
        st = os.stat(cache_dir)
    except FileNotFoundError:
        return None
    except OSError as error:
        return f"cache dir {cache_dir} cannot be used: {error.strerror}"
    uid = _my_uid()
    if not stat.S_ISDIR(st.st_mode):
        return f"cache dir {cache_dir} is not a directory"
    if uid is not None and st.st_uid != uid:
        return f"cache dir {cache_dir} belongs to uid {st.st_uid}, not to you (uid {uid})"
    if uid is not None and st.st_mode & 0o022:
        return f"cache dir {cache_dir} is writable by group or others (mode {st.st_mode & 0o777:o})"
    return None


def entry_path(cache_dir: str, key: str) -> str:
    """Where the entry for `key` lives."""
    return os.path.join(cache_dir, key + ENTRY_SUFFIX)


def lock_path(cache_dir: str, key: str) -> str:
    """The lock file that serialises fetches for `key` (kept apart from the entry, as kubelogin)."""
    return os.path.join(cache_dir, key + LOCK_SUFFIX)


class KeyFiles:
    """The files of one key: entry, lock, sidecars, and the directory's background log."""

    __slots__ = ("ahead", "entry", "lock", "log", "served")

    def __init__(self, cache_dir: str, key: str) -> None:
        self.entry = entry_path(cache_dir, key)
        self.lock = lock_path(cache_dir, key)
        self.served = os.path.join(cache_dir, key + SERVED_SUFFIX)
        self.ahead = os.path.join(cache_dir, key + AHEAD_SUFFIX)
        self.log = os.path.join(cache_dir, BACKGROUND_LOG)


def read_entry(path: str) -> Entry | None:
    """The entry at `path`; None when missing, damaged, a symlink, or not private to us."""
    data = read_private(path)
    return decode_entry(data) if data is not None else None


def read_private(path: str) -> bytes | None:
    """The bytes of a regular file at `path` private to us; None for anything else."""
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        uid = _my_uid()
        if not stat.S_ISREG(st.st_mode) or st.st_size > _MAX_ENTRY_SIZE:
            return None
        # As aws-iam-authenticator's filecache: refuse a token file others could read or plant.
        if uid is not None and (st.st_uid != uid or st.st_mode & 0o077):
            return None
        return os.read(fd, _MAX_ENTRY_SIZE + 1)
    except OSError:
        return None
    finally:
        os.close(fd)


def write_private(path: str, data: bytes) -> None:
    """Overwrite a small 0600 file in place: for sidecars, which may be lost but not leaked."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _NOFOLLOW | _CLOEXEC, 0o600)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o600)
        os.write(fd, data)
    finally:
        os.close(fd)


def ensure_cache_dir(cache_dir: str) -> None:
    """Create `cache_dir` as 0700 when it is missing (parents as the umask says)."""
    if not os.path.isdir(cache_dir):
        os.makedirs(cache_dir, mode=0o700, exist_ok=True)
        os.chmod(cache_dir, 0o700)  # makedirs' mode is filtered by the umask


def write_entry(path: str, entry: Entry) -> None:
    """Write `entry` to `path` atomically, as a 0600 file."""
    replace_file(path, encode_entry(entry))


def replace_file(path: str, data: bytes, mode: int = 0o600, durable: bool = False) -> None:
    """Atomically replace `path` with `data`: a temp file in the same directory, then os.replace.

    Readers see the old file or the new one, never half. `mode` is set whatever the
    umask. `durable` adds an fsync, for files that cannot be fetched again (kubeconfig).
    """
    directory, name = os.path.split(path)
    temp = os.path.join(directory, f".{name}.{os.getpid()}.{os.urandom(4).hex()}{TEMP_SUFFIX}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC
    fd = os.open(temp, flags, 0o600)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, mode)  # O_CREAT's mode is filtered by the umask
        while data:
            data = data[os.write(fd, data) :]
        if durable:
            os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(temp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        _unlink(temp)
        raise


def remove_entry(files: KeyFiles) -> bool:
    """Remove an entry and its sidecars (not its lock, which others may hold); whether it was."""
    _unlink(files.served)
    _unlink(files.ahead)
    return _unlink(files.entry)


def list_entries(cache_dir: str) -> list[tuple[str, Entry | None]]:
    """Every entry file in `cache_dir` by key, sorted; None for one that cannot be read."""
    try:
        names = sorted(os.listdir(cache_dir))
    except FileNotFoundError:
        return []
    keys = [name[: -len(ENTRY_SUFFIX)] for name in names if name.endswith(ENTRY_SUFFIX)]
    return [(key, read_entry(entry_path(cache_dir, key))) for key in keys]


def purge_all(cache_dir: str) -> int:
    """Remove every entry with its lock and sidecars, and the log; how many entries there were."""
    try:
        names = os.listdir(cache_dir)
    except FileNotFoundError:
        return 0
    removed = 0
    for name in names:
        ours = name == BACKGROUND_LOG or name.endswith(
            (ENTRY_SUFFIX, LOCK_SUFFIX, SERVED_SUFFIX, AHEAD_SUFFIX, TEMP_SUFFIX)
        )
        if ours and _unlink(os.path.join(cache_dir, name)) and name.endswith(ENTRY_SUFFIX):
            removed += 1
    return removed


def _unlink(path: str) -> bool:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True
