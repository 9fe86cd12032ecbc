"""The files `shim kubeconfig` edits (kubeconfig and kuberc): read under kubectl's own
lock, written all or nothing.

kubectl takes `<file>.lock` (created exclusively, removed after) while it edits a
kubeconfig, and fails its edit when the lock is there: the editor takes the same lock
from the read to the write, so that neither loses the other's change. Before anything
is written, every file is checked the way kubectl would be refused (read-only, an
immutable file, a directory that cannot take the new file, an owner or group that
cannot be kept); then each file is replaced atomically with its owner, group and mode,
signals held, and when one write fails the files already written get their old bytes
back. ruamel.yaml is imported only here and in shim.yamltext, and only on this path.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from shim.errors import ShimError
from shim.files import replace_file, unlink

BACKUP_SUFFIX = ".eks-token-shim.bak"
LOCK_SUFFIX = ".lock"  # client-go's clientcmd lockFile
LOCK_WAIT = 5.0  # seconds: kubectl holds its lock for one write


def read(path: str) -> bytes:
    """The file's bytes; a ShimError that names it when it cannot be read."""
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as error:
        raise ShimError(f"{path}: cannot read: {error.strerror}; nothing was changed") from None


@contextlib.contextmanager
def kubectl_locks(paths: Sequence[str]) -> Iterator[None]:
    """Hold kubectl's `<file>.lock` for each path, waiting a little for a kubectl that
    holds one; a ShimError when one stays taken."""
    taken: list[str] = []
    try:
        for path in paths:
            lock = path + LOCK_SUFFIX
            deadline = time.monotonic() + LOCK_WAIT
            while True:
                try:
                    os.close(os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0))
                    break
                except FileExistsError:
                    if time.monotonic() > deadline:
                        raise ShimError(
                            f"{path} is being edited: {lock} has been there for "
                            f"{LOCK_WAIT:.0f} s; nothing was changed",
                            hint=f"if no kubectl is running, remove {lock}",
                        ) from None
                    time.sleep(0.05)
                except OSError as error:
                    raise ShimError(
                        f"{path}: cannot take kubectl's lock {lock}: "
                        f"{error.strerror}; nothing was changed"
                    ) from None
            taken.append(lock)
        yield
    finally:
        for lock in taken:
            unlink(lock)


@dataclass(frozen=True)
class Write:
    """One file of an edit: its path (as given), its bytes before and after (None: the
    file is not there before, or not after). A new file takes the owner, group and mode
    of the file `like`; `backup=False` keeps no backup of it."""

    path: str
    before: bytes | None
    after: bytes | None
    like: str | None = None
    backup: bool = True


def check_writable(write: Write) -> os.stat_result:
    """The stat whose owner, group and mode the written file gets; a ShimError when kubectl
    could not write it or an atomic replace could not keep its owner and group."""
    path = write.path
    target = os.path.realpath(path)
    st = os.stat(target if write.before is not None else write.like or os.path.dirname(target))
    if write.before is not None and not os.access(target, os.W_OK):
        raise ShimError(f"{path} is read-only (or immutable); nothing was changed")
    directory = os.path.dirname(target)
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ShimError(
            f"{path}: its directory {directory} does not let a new version of it be written; "
            "nothing was changed"
        )
    uid = os.geteuid() if hasattr(os, "geteuid") else None
    if uid not in (None, 0):
        if st.st_uid != uid:
            raise ShimError(f"{path} belongs to another user; nothing was changed")
        if st.st_gid != os.getegid() and st.st_gid not in os.getgroups():
            raise ShimError(
                f"{path} belongs to group {st.st_gid}, which you are not in, and a new "
                "version of it could not keep it; nothing was changed"
            )
    return st


def commit(writes: Sequence[Write], backup: bool) -> None:
    """Write every file, or none: checked first, then replaced one by one (following a
    symlink), signals held; a failed write puts the files already written back. With
    `backup`, a file's bytes before its first edit are kept in `<file>.eks-token-shim.bak`."""
    stats = [check_writable(write) for write in writes]
    held = _hold_signals()
    done: list[tuple[str, bytes | None, os.stat_result]] = []
    backups: list[str] = []  # made by this edit: gone again if it fails
    try:
        for write, st in zip(writes, stats):
            target = os.path.realpath(write.path)
            keep = backup and write.backup and write.before is not None
            if keep and write.before is not None and not os.path.lexists(target + BACKUP_SUFFIX):
                _replace(target + BACKUP_SUFFIX, write.before, st)
                backups.append(target + BACKUP_SUFFIX)
            _replace(target, write.after, st)
            done.append((target, write.before, st))
    except OSError as error:
        failed, stuck = writes[len(done)].path, []
        for target, before, st in reversed(done):
            try:
                _replace(target, before, st)
            except OSError:
                stuck.append(target)
        for made in backups:
            if not any(made == target + BACKUP_SUFFIX for target in stuck):
                unlink(made)
        reason = f"{failed}: cannot write: {error.strerror or error}"
        if stuck:  # (the old bytes are in the backup: wrap made one)
            raise ShimError(
                f"{reason}; and {', '.join(stuck)} could not be put back as it was",
                hint=f"its contents before are in {stuck[0]}{BACKUP_SUFFIX}" if backup else "",
            ) from None
        raise ShimError(f"{reason}; nothing was changed") from None
    finally:
        _release_signals(held)


def _replace(path: str, data: bytes | None, st: os.stat_result) -> None:
    """`path` with `data` (None: no file there)."""
    if data is None:
        unlink(path)
        return
    owner = (st.st_uid, st.st_gid) if hasattr(os, "fchown") else None
    replace_file(path, data, st.st_mode & 0o7777, durable=True, owner=owner)


def _hold_signals() -> Any:
    if not hasattr(signal, "pthread_sigmask"):
        return None
    wanted = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGTSTP}
    return signal.pthread_sigmask(signal.SIG_BLOCK, wanted)


def _release_signals(held: Any) -> None:
    if held is not None:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
