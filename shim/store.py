"""The cache directory: one `<key>.entry` file per credential, beside its `<key>.lock`.

A cache hit imports this module: shim.main states the import diet it keeps.
Files are 0600 in a 0700 directory whatever the umask, written to a temp file in
the same directory and moved into place (readers never see half an entry), and
opened through shim.files: never following a symlink, never blocking on a FIFO. A
directory owned by someone else, or writable by group or others, is not used at
all. Only files whose names the shim could have written itself are ever
read, listed or removed: a cache directory may hold other people's files.
"""

from __future__ import annotations

import os
import stat

from shim.entry import Entry, decode_entry, encode_entry
from shim.files import (
    MAX_READ,
    TEMP_SUFFIX,
    make_private_dirs,
    my_uid,
    read_private,
    replace_file,
    unlink,
)
from shim.keys import file_state

ENTRY_SUFFIX = ".entry"
LOCK_SUFFIX = ".lock"
SERVED_SUFFIX = ".served"  # who was last served the entry, and when (shim.lookup)
AHEAD_SUFFIX = ".ahead"  # its mtime: when a background refresh was last started
# Where a fetch's holder shares its outcome (shim.share): half the key, as a socket's
# path must be short; a socket names its key in what it sends.
SOCKET_SUFFIX = ".sock"
_SOCKET_KEY_LENGTH = 32
KEY_SUFFIXES = (ENTRY_SUFFIX, LOCK_SUFFIX, SERVED_SUFFIX, AHEAD_SUFFIX)
BACKGROUND_LOG = "background.log"
# Its state changes at every --purge: a fetch that began before one does not keep its entry.
PURGE_MARKER = "purged"
CRASH_LOG = "crash.log"  # shim.crash: the traceback of the last unexpected error
_KEY_LENGTH = 64  # a SHA-256 in hex (shim.keys)
_HEX = frozenset("0123456789abcdef")


def cache_dir_problem(cache_dir: str) -> str | None:
    """Why `cache_dir` must not hold tokens, or None when it is safe (or does not exist yet)."""
    try:
        st = os.stat(cache_dir)
    except FileNotFoundError:
        return None
    except OSError as error:
        return f"cache dir {cache_dir} cannot be used: {error.strerror}"
    uid = my_uid()
    if not stat.S_ISDIR(st.st_mode):
        return f"cache dir {cache_dir} is not a directory"
    if uid is not None and st.st_uid != uid:
        return f"cache dir {cache_dir} belongs to uid {st.st_uid}, not to you (uid {uid})"
    if uid is not None and st.st_mode & 0o022:
        return f"cache dir {cache_dir} is writable by group or others (mode {st.st_mode & 0o777:o})"
    return None


class KeyFiles:
    """The files of one key: entry, lock, sidecars, and the directory's background log."""

    __slots__ = ("ahead", "entry", "key", "lock", "log", "served", "socket")

    def __init__(self, cache_dir: str, key: str) -> None:
        self.key = key
        self.socket = os.path.join(cache_dir, key[:_SOCKET_KEY_LENGTH] + SOCKET_SUFFIX)
        self.entry = os.path.join(cache_dir, key + ENTRY_SUFFIX)
        self.lock = os.path.join(cache_dir, key + LOCK_SUFFIX)
        self.served = os.path.join(cache_dir, key + SERVED_SUFFIX)
        self.ahead = os.path.join(cache_dir, key + AHEAD_SUFFIX)
        self.log = os.path.join(cache_dir, BACKGROUND_LOG)


def is_key(text: str) -> bool:
    """Whether `text` is a key as shim.keys makes them."""
    return len(text) == _KEY_LENGTH and _HEX.issuperset(text)


def key_of(name: str) -> str | None:
    """The key whose file `name` is (`<key>.entry`, `.lock`, `.served`, `.ahead`), else None."""
    stem, _, suffix = name.rpartition(".")  # (no dot: stem is "", which is no key)
    return stem if "." + suffix in KEY_SUFFIXES and is_key(stem) else None


def temp_of(name: str) -> tuple[str, int] | None:
    """The key file and writer's pid of a temp file named `name`
    (`.<key file>.<pid>.<random>.tmp`, as shim.files names them), else None."""
    parts = name.split(".")
    # ["", key, suffix, pid, random, "tmp"]
    if not (
        len(parts) == 6
        and parts[0] == ""
        and parts[3].isdigit()
        and len(parts[4]) == 8
        and _HEX.issuperset(parts[4])
        and "." + parts[5] == TEMP_SUFFIX
        and key_of(f"{parts[1]}.{parts[2]}") is not None
    ):
        return None
    return f"{parts[1]}.{parts[2]}", int(parts[3])


def is_ours(name: str) -> bool:
    """Whether the shim could have written a file of this name (a key's file, its temp
    file `.<key file>.<pid>.<random>.tmp`, a fetch's socket, the purge marker,
    background.log or crash.log)."""
    if name in (BACKGROUND_LOG, CRASH_LOG, PURGE_MARKER) or key_of(name) is not None:
        return True
    stem, suffix = name[: -len(SOCKET_SUFFIX)], name[-len(SOCKET_SUFFIX) :]
    if suffix == SOCKET_SUFFIX and len(stem) == _SOCKET_KEY_LENGTH and _HEX.issuperset(stem):
        return True
    return temp_of(name) is not None


def read_entry(path: str) -> Entry | None:
    """The entry at `path`; None when missing, damaged, not a regular file, or not private."""
    data = read_private(path)
    return decode_entry(data) if data is not None else None


def ensure_cache_dir(cache_dir: str) -> None:
    """Create `cache_dir` and its missing parents as 0700 directories."""
    make_private_dirs(cache_dir)


def write_entry(path: str, entry: Entry) -> bool:
    """Write `entry` to `path` atomically, as a 0600 file; False, writing nothing, when it is
    too large to be read back (it would be rewritten on every call and never served)."""
    data = encode_entry(entry)
    if len(data) > MAX_READ:
        return False
    replace_file(path, data)
    return True


def remove_entry(files: KeyFiles, unfinished: bool = False) -> bool:
    """Remove an entry and its sidecars (not its lock, which others may hold), and with
    `unfinished` its temp files, whoever writes them (a purge: that write then fails);
    whether there was an entry."""
    unlink(files.served)
    unlink(files.ahead)
    if unfinished:
        for path, _, _ in unfinished_writes(os.path.dirname(files.entry), files.key):
            unlink_unless_in_use(path)
    return unlink(files.entry)


def unfinished_writes(cache_dir: str, key: str | None = None) -> list[tuple[str, str, int]]:
    """The temp files in `cache_dir` (of `key`'s files only, if given): their paths, the
    names of the files they were to become, and the pids of their writers."""
    try:
        names = os.listdir(cache_dir)
    except OSError:
        return []
    found = []
    for name in names:
        temp = temp_of(name)
        if temp is not None and (key is None or temp[0].startswith(key + ".")):
            found.append((os.path.join(cache_dir, name), *temp))
    return found


def remove_abandoned_writes(cache_dir: str) -> int:
    """Remove the temp files whose writers are gone (killed between write and rename: an
    entry's may hold a valid token); how many there were."""
    removed = 0
    for path, _, pid in unfinished_writes(cache_dir):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            removed += unlink(path)
        except OSError:
            pass  # alive (another user's pid: not ours to judge), or unknown here
    return removed


def list_keys(cache_dir: str) -> list[str]:
    """The keys that have an entry file in `cache_dir`, sorted."""
    try:
        names = os.listdir(cache_dir)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(
        name[: -len(ENTRY_SUFFIX)] for name in names if key_of(name) and name.endswith(ENTRY_SUFFIX)
    )


def list_entries(cache_dir: str) -> list[tuple[str, Entry | None]]:
    """Every entry in `cache_dir` by key, sorted; None for one that cannot be read."""
    return [(key, read_entry(KeyFiles(cache_dir, key).entry)) for key in list_keys(cache_dir)]


def note_purge(cache_dir: str) -> None:
    """Change the purge marker's state, before a purge removes anything (an existing cache
    directory only: a purge creates none)."""
    try:  # (replaced, not touched: a new inode even within one tick of the file clock)
        if os.path.isdir(cache_dir):
            replace_file(os.path.join(cache_dir, PURGE_MARKER), b"")
    except OSError:
        pass  # no directory, nothing to purge; or one we cannot write: nothing we can remove


def purge_state(cache_dir: str) -> str:
    """The purge marker's state (shim.keys.file_state): it changes at every purge."""
    return file_state(os.path.join(cache_dir, PURGE_MARKER))


def purge_all(cache_dir: str) -> tuple[int, int, int]:
    """Remove every file of ours (entries, locks, sidecars, temp files, the log) but the
    purge marker: how many entries there were, how many other things were left alone, and
    how many files of ours were in use (Windows: a lock a running call holds)."""
    note_purge(cache_dir)
    try:
        found = list(os.scandir(cache_dir))
    except (FileNotFoundError, NotADirectoryError):
        return 0, 0, 0
    removed = left = in_use = 0
    for item in found:
        if not is_ours(item.name) or item.is_dir(follow_symlinks=False):
            left += 1
        elif item.name != PURGE_MARKER:
            gone = unlink_unless_in_use(item.path)
            if gone is None:
                in_use += 1
            elif gone and item.name.endswith(ENTRY_SUFFIX):
                removed += 1
    return removed, left, in_use


def unlink_unless_in_use(path: str) -> bool | None:
    """files.unlink, but None where Windows refuses because another process holds `path`
    open: its holder goes on with it (a call's lock, a write that ends with a replace)."""
    try:
        return unlink(path)
    except PermissionError:
        if os.name != "nt":
            raise
        return None
