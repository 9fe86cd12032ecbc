"""The credential-plugin flow, top to bottom: from a request to the credential to print.

A cached entry goes through four stages (shim.entry.stage): fresh, served as is;
ahead, served while a detached process refreshes it; refresh, fetched in the
foreground and served anyway if that fails (stale-if-error); expired, fetched,
and a failure reaches kubectl. A fresh entry that the same kubectl process asks
for again right after we served it is checked with the API server first (heal).

`--timeout` is one deadline for the whole call: lock wait, backend and token check.
A cache that cannot be used (read-only, full, not ours, a lock that cannot be
opened) costs a warning, never the credential: only the backend's own failure or
invalid output is an error.
"""

from __future__ import annotations

import errno
import os
import sys
import time
from typing import TYPE_CHECKING, NamedTuple

from shim import background, log, store
from shim.backends import failure_hint
from shim.deadline import Deadline
from shim.entry import (
    AHEAD,
    FRESH,
    REFRESH,
    SERVABLE,
    Entry,
    end_of_life,
    is_fresh,
    watched_bytes,
)
from shim.errors import BackendError, NotACredential
from shim.execinfo import cluster_info
from shim.files import unlink
from shim.keys import fingerprint, identity_files_now
from shim.lock import KeyLock
from shim.lookup import Lookup, key_files, look_up, read_current, stage_of
from shim.process import describe
from shim.request import Request
from shim.share import Holder, Outcome, Waiter

if sys.platform == "win32":  # no process groups or posix_spawn: a job object
    from shim.windows import start
else:
    from shim.process import start

if TYPE_CHECKING:
    from shim.credential import Credential  # (json: imported while the backend runs)

# Why a lock file could not be made, when nothing could be written in the directory.
_UNWRITABLE = (errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM)


# NamedTuples, not dataclasses, on a miss before the backend starts: `import dataclasses`
# (inspect and all it imports) costs ~10 ms on a 2-core machine.
class Answer(NamedTuple):
    """The credential to print, and what shim.lookup.deliver needs for the bookkeeping."""

    credential: bytes
    found: Lookup | None  # the cache lookup it came through; None: no cache
    ahead: bool  # refresh the entry in the background: due for a refresh ahead, or cut short


def get_credential(request: Request, api_version: str, force: bool) -> Answer:
    """A servable cached credential, else a newly fetched and validated one."""
    deadline = Deadline(request.timeout)
    log.bound_stderr(deadline.at)
    problem = store.cache_dir_problem(request.cache_dir)
    if problem is not None:
        log.warn(f"{problem}: working without a cache")
        return Answer(fetch(request, api_version, deadline).output, None, False)
    found = look_up(request, api_version, time.time(), force)
    if found.identity_changed:
        log.debug(f"an identity file changed since the entry was fetched: {found.files.entry}")
    stale = found.entry
    if found.servable is not None:
        if not (found.asked_again and rejected_by_server(found.servable, request, deadline)):
            log.debug(f"cache hit ({found.stage}): {found.files.entry}")
            return Answer(found.servable.credential, found, found.stage == AHEAD)
        store.remove_entry(found.files)  # (a fresh entry another shim writes meanwhile is served)
        stale = None
    credential, behind = fetch_and_cache(request, api_version, found.files, stale, force, deadline)
    return Answer(credential, found, behind)


def fetch_and_cache(
    request: Request,
    api_version: str,
    files: store.KeyFiles,
    stale: Entry | None,
    force: bool,
    deadline: Deadline,
) -> tuple[bytes, bool]:
    """Fetch with the key's lock held where it can be; serve a still-valid entry when the
    backend fails (stale-if-error) or keeps it waiting past --refresh-wait; cache what was
    fetched where the cache can be written. The credential, and whether to refresh the
    entry in the background (the backend was cut short for a still-valid token)."""
    try:
        store.ensure_cache_dir(request.cache_dir)
    except OSError as error:
        log.warn(f"cannot create {request.cache_dir}: {error.strerror}: working without a cache")
        return fetch(request, api_version, deadline).output, False
    lock = KeyLock(files.lock)
    patience = refresh_wait(stale, request, deadline)
    # Half the time left at most for another process's fetch: then the backend gets the rest.
    wait = deadline.share(0.5).earlier(patience)
    asked = FetchStart.now(request)  # (what this call began with)
    # A --refresh wants a fetch that starts after it asked: it shares no one's.
    waiter = None if force else Waiter(files.socket, files.key, asked.fingerprint, wait)
    try:
        if not lock.acquire(wait, waiter):
            if waiter is not None and waiter.outcome is not None:
                return shared(waiter.outcome, stale, request), False
            valid = still_valid(stale, request)
            if patience is not deadline and valid is not None:
                return serve_stale(valid, request, f"another shim held {files.lock}"), False
            log.warn(f"another shim held {files.lock} for {wait.seconds:.3g} s: fetching anyway")
    except OSError as error:
        reason = error.strerror or str(error)
        if error.errno in _UNWRITABLE:  # the entry could not be written either: one warning
            log.warn(f"cannot write in {request.cache_dir}: {reason}: working without a cache")
            return fetch(request, api_version, deadline).output, False
        log.warn(f"cannot lock {files.lock}: {reason}: fetching without the lock")
    try:
        if not force:
            # Whoever held the lock before us may have fetched it already (one backend run).
            stale = read_current(files.entry) or stale
            if stale is not None and stage_of(stale, time.time(), request) in SERVABLE:
                log.debug(f"fetched by another process while we waited: {files.entry}")
                return stale.credential, False
        store.remove_abandoned_writes(request.cache_dir)  # (a writer killed mid-write)
        began = FetchStart.now(request)
        with Holder(files.socket, files.key, began.fingerprint) as holder:
            try:
                if patience.passed():  # (--refresh-wait 0): the background refreshes it
                    raise BackendError(f"{patience.setting} is {patience.seconds:g} s")
                credential = fetch(request, api_version, patience)
            except BackendError as error:
                behind = patience is not deadline and patience.passed()
                # Those who waited get the failure, unless --refresh-wait cut it short.
                holder.outcome = None if behind else error
                valid = still_valid(stale, request)
                if valid is None:
                    raise
                # Stale-if-error: the token has not expired yet, only its refresh is due.
                return serve_stale(valid, request, error.message, behind), behind
            holder.outcome = credential.output
            save_if_cacheable(files.entry, request, credential, began, time.time())
            return credential.output, False
    finally:
        _let_go(lock, files)


def _let_go(lock: KeyLock, files: store.KeyFiles) -> None:
    """Release the key's lock; its file goes too when the key has no entry (a failed or
    uncachable fetch, a purge that won), so that lock files do not pile up."""
    lock.release(remove=not os.path.lexists(files.entry))


def shared(outcome: Outcome, stale: Entry | None, request: Request) -> bytes:
    """The outcome of the fetch we waited for, as if it were ours: its credential, or its
    failure (a still-valid `stale` entry is served instead, as after our own)."""
    log.debug("served the outcome of the fetch we waited for")
    if isinstance(outcome, bytes):
        return outcome
    log.relay(outcome.stderr)
    valid = still_valid(stale, request)
    if valid is None:
        raise outcome
    return serve_stale(valid, request, outcome.message)


def refresh_wait(stale: Entry | None, request: Request, deadline: Deadline) -> Deadline:
    """How long this call may wait for a new token: with one still valid for more than
    --refresh-wait (the refresh stage), that long at most, else the whole `deadline`."""
    if stale is None or stage_of(stale, time.time(), request) != REFRESH:
        return deadline
    left = end_of_life(stale.expiry, stale.fetched_at, request.max_age) - time.time()
    if left <= request.refresh_wait:
        return deadline  # it would end while we wait: the backend gets the whole deadline
    return deadline.earlier(Deadline(request.refresh_wait, "--refresh-wait"))


def still_valid(stale: Entry | None, request: Request) -> Entry | None:
    """`stale`, if it may still be served when its refresh fails (the refresh stage)."""
    return stale if stale is not None and stage_of(stale, time.time(), request) == REFRESH else None


def serve_stale(stale: Entry, request: Request, why: str, behind: bool = False) -> bytes:
    """The credential of `stale`, still valid, with a warning that says why and for how long."""
    left = end_of_life(stale.expiry, stale.fetched_at, request.max_age) - time.time()
    more = "; refreshing it in the background" if behind else ""
    log.warn(f"{why}: serving the cached credential, valid for {left:.0f} s more{more}")
    return stale.credential


def rejected_by_server(entry: Entry, request: Request, deadline: Deadline) -> bool:
    """Heal: the same kubectl process asked again; whether the server now answers 401."""
    cluster = cluster_info(request.env)
    if cluster is None:
        log.debug("asked again by the same process, without cluster info: serving the cache")
        return False
    from shim import verify
    from shim.credential import token_of

    token = token_of(entry.credential)

    check = Deadline(min(verify.TIMEOUT, deadline.left()))
    if token is None or not verify.rejected(cluster, token, check, request.env):
        log.debug("asked again by the same process; the server still accepts the cached token")
        return False
    log.warn("the API server rejected the cached token (401): fetching a new one")
    return True


def refresh_in_background(request: Request, api_version: str) -> None:
    """The detached child of a refresh ahead: refresh the entry once, unless it is done
    already. Nobody waits for it: what it has to say goes to background.log."""
    background.bound_log()
    log.set_timestamps(True)
    deadline = Deadline(request.timeout)
    files = key_files(request, api_version)
    if store.cache_dir_problem(request.cache_dir) is not None:
        return
    lock = KeyLock(files.lock)
    try:
        held = lock.acquire(Deadline(0))
    except OSError as error:
        log.error(f"background refresh: cannot lock {files.lock}: {error.strerror or error}")
        return
    try:
        entry = read_current(files.entry)
        if not held or entry is None:
            return  # a fetch is running, or the entry went away: nothing to get ahead of
        if stage_of(entry, time.time(), request) == FRESH:
            return  # another process refreshed it
        began = FetchStart.now(request)
        with Holder(files.socket, files.key, began.fingerprint) as holder:
            try:
                credential = fetch(request, api_version, deadline)
            except BackendError as error:
                holder.outcome = error
                log.error(f"background refresh: {error.message}; the cached entry stays")
                return
            holder.outcome = credential.output
            save_if_cacheable(files.entry, request, credential, began, time.time())
    finally:
        _let_go(lock, files)
    log.debug(f"background refresh of {describe(request.command)} done")


def fetch(request: Request, api_version: str, deadline: Deadline) -> Credential:
    """Run the backend and validate what it printed: BackendError when it failed,
    NotACredential when what it printed is not a credential kubectl surely accepts."""
    if log.is_verbose():
        log.debug(f"running {describe(request.command)}")
    from shim.kuberc import read_policy

    # kubectl's credential-plugin policy, which the shim never widens.
    argv = read_policy(request.env).resolve(request.command, request.env)
    with start(argv, request.env, request.command) as backend:
        from shim.credential import validate  # (json: imported while the backend runs)

        try:
            output = backend.finish(deadline)
        except BackendError as error:
            error.hint = failure_hint(request.command, request.env, backend.stderr_tail)
            error.stderr = backend.stderr_tail
            raise
    result = validate(output, api_version)
    if isinstance(result, list):
        problems = "; ".join(result)
        shown = describe(request.command)
        raise NotACredential(f"{shown} printed no valid credential: {problems}", output)
    return result


class FetchStart(NamedTuple):
    """What a fetch began with, taken before the backend runs: its identity files and their
    fingerprint (a file that changes while it runs makes the entry a miss at the next
    call), and the state of the cache's purge marker (a purge meanwhile wins)."""

    watched: bytes  # shim.entry.Entry.watched
    fingerprint: bytes
    purges: str

    @classmethod
    def now(cls, request: Request) -> FetchStart:
        paths = identity_files_now(request.env, request.watched)
        return cls(watched_bytes(paths), fingerprint(paths), store.purge_state(request.cache_dir))


def save_if_cacheable(
    path: str, request: Request, credential: Credential, began: FetchStart, now: float
) -> None:
    """Cache `credential` unless it has no expiry or is due for refresh; never fail for it:
    the credential is valid, and kubectl gets it whatever happens to the cache."""
    if credential.expiry is None:
        log.warn(f"{describe(request.command)} gave no expirationTimestamp: printed, not cached")
        return
    end = end_of_life(credential.expiry, now, request.max_age)
    if not is_fresh(end, now, request.refresh_before):
        left = credential.expiry - now
        state = f"expires in {left:.0f} s" if left > 0 else f"expired {-left:.0f} s ago"
        log.warn(
            f"the credential from {describe(request.command)} {state} (refresh-before is "
            f"{request.refresh_before:g} s, max-age {request.max_age:g} s): printed, not cached"
        )
        return
    try:
        from shim import meta

        record = meta.encode(request, credential.api_version)
        entry = Entry(
            int(credential.expiry),
            int(now),
            record,
            credential.output,
            began.watched,
            began.fingerprint,
        )
        if not store.write_entry(path, entry):
            log.warn(f"the credential is too large to cache ({len(credential.output)} bytes)")
            return
        # Checked after the write: a purge that ran before it, or runs from now on, wins.
        if store.purge_state(request.cache_dir) != began.purges:
            unlink(path)
            log.debug(f"a --purge ran while the backend did: printed, not cached: {path}")
            return
    except OSError as error:
        log.warn(f"could not write the cache entry {path}: {error.strerror}: printed, not cached")
        return
    except Exception as error:  # a bookkeeping bug must not cost kubectl a valid credential
        log.warn(f"could not cache the credential ({type(error).__name__}): printed, not cached")
        return
    log.debug(f"cached until {log.utc(end - request.refresh_before)}: {path}")
