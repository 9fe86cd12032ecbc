"""The credential-plugin flow, top to bottom (issues #2 and #4).

A cached entry goes through four stages (shim.entry.stage): fresh, served as is;
ahead, served while a detached process refreshes it; refresh, fetched in the
foreground and served anyway if that fails (stale-if-error); expired, fetched,
and a failure reaches kubectl. A fresh entry that the same kubectl process asks
for again right after we served it is checked with the API server first (heal).
"""

from __future__ import annotations

import os
import time

from shim import background, log, store
from shim.client import asked_again, client_identity, note_served
from shim.entry import FRESH, SERVABLE, Entry, is_fresh, stage
from shim.errors import BackendError
from shim.execinfo import ENV_VAR, cluster_info
from shim.keys import cache_key
from shim.lock import KeyLock
from shim.process import describe, finish, start

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Callable

    from shim.credential import Credential
    from shim.selection import Request


def get_credential(
    request: Request,
    api_version: str,
    argv: list[str],
    force: bool = False,
    clock: Callable[[], float] = time.time,
    environ: Mapping[str, str] = os.environ,
) -> bytes:
    """The credential to print: a servable cached one, else a newly fetched and validated one."""
    files = store.KeyFiles(request.cache_dir, cache_key(request.command, api_version, request.env))
    problem = store.cache_dir_problem(request.cache_dir)
    if problem is not None:
        log.warn(f"{problem}: working without a cache")
        return fetch(request, api_version).output
    asker = client_identity() if environ.get(ENV_VAR) else None
    entry = None if force else store.read_entry(files.entry)
    now = clock()
    phase = stage(entry, now, request.refresh_before, request.refresh_ahead)
    if entry is not None and phase in SERVABLE:
        if not rejected_by_server(entry, files, asker, environ, now):
            log.debug(f"cache hit ({phase}): {files.entry}")
            background.after_serving(argv, files, asker, phase, now)
            return entry.credential
        store.remove_entry(files)
        entry, force = None, True
    credential = fetch_under_lock(request, api_version, files, entry, force, clock)
    note_served(files.served, asker, clock())
    return credential


def fetch_under_lock(
    request: Request,
    api_version: str,
    files: store.KeyFiles,
    stale: Entry | None,
    force: bool,
    clock: Callable[[], float],
) -> bytes:
    """Fetch with the key's lock held; serve a still-valid entry when the backend fails."""
    store.ensure_cache_dir(request.cache_dir)
    with KeyLock(files.lock, request.timeout) as held:
        if not held:
            log.warn(f"another shim held {files.lock} for {request.timeout:g} s: fetching anyway")
        if not force:
            # Whoever held the lock before us may have fetched it already (one backend run).
            stale = store.read_entry(files.entry) or stale
            phase = stage(stale, clock(), request.refresh_before, request.refresh_ahead)
            if stale is not None and phase in SERVABLE:
                log.debug(f"fetched by another process while we waited: {files.entry}")
                return stale.credential
        try:
            credential = fetch(request, api_version)
        except BackendError as error:
            left = stale.expiry - clock() if stale is not None else 0
            if stale is None or left <= 0:
                raise
            # Stale-if-error: the token has not expired yet, only its refresh is due.
            log.warn(f"{error.message}: serving the cached credential, valid for {left:.0f} s more")
            return stale.credential
        save_if_cacheable(files.entry, request, credential, clock())
    return credential.output


def rejected_by_server(
    entry: Entry, files: store.KeyFiles, asker: str | None, environ: Mapping[str, str], now: float
) -> bool:
    """Heal: when the same kubectl process asks again, whether the server now answers 401."""
    if asker is None or not asked_again(store.read_private(files.served), asker, now):
        return False
    cluster = cluster_info(environ)
    if cluster is None:
        log.debug("asked again by the same process, without cluster info: serving the cache")
        return False
    token = _token_of(entry.credential)
    from shim import verify

    if token is None or not verify.rejected(cluster, token):
        log.debug("asked again by the same process; the server still accepts the cached token")
        return False
    log.warn("the API server rejected the cached token (401): fetching a new one")
    return True


def refresh_in_background(
    request: Request, api_version: str, clock: Callable[[], float] = time.time
) -> int:
    """The detached child of a refresh ahead: refresh the entry once, unless it is done already."""
    background.bound_log()
    log.set_timestamps(True)
    files = store.KeyFiles(request.cache_dir, cache_key(request.command, api_version, request.env))
    if store.cache_dir_problem(request.cache_dir) is not None:
        return 0
    with KeyLock(files.lock, 0) as held:
        entry = store.read_entry(files.entry)
        if not held or entry is None:
            return 0  # a fetch is running, or the entry went away: nothing to get ahead of
        if stage(entry, clock(), request.refresh_before, request.refresh_ahead) == FRESH:
            return 0  # another process refreshed it
        try:
            credential = fetch(request, api_version)
        except BackendError as error:
            log.error(f"background refresh: {error.message}; the cached entry stays")
            return error.exit_code
        save_if_cacheable(files.entry, request, credential, clock())
    log.debug(f"background refresh of {describe(request.command)} done")
    return 0


def fetch(request: Request, api_version: str) -> Credential:
    """Run the backend and validate what it printed; BackendError when it is not a credential."""
    if log.is_verbose():
        log.debug(f"running {describe(request.command)}")
    process = start(request.command, request.env)
    # Imported while the backend runs: orjson and dateutil cost tens of ms (issue #3).
    from shim.credential import validate

    result = validate(finish(process, request.timeout), api_version)
    if isinstance(result, list):
        problems = "; ".join(result)
        raise BackendError(f"{describe(request.command)} printed no valid credential: {problems}")
    return result


def save_if_cacheable(path: str, request: Request, credential: Credential, now: float) -> None:
    """Cache `credential` unless it has no expiry or is due for refresh; never fail for it."""
    if credential.expiry is None:
        log.warn(f"{describe(request.command)} gave no expirationTimestamp: printed, not cached")
        return
    if not is_fresh(credential.expiry, now, request.refresh_before):
        left = credential.expiry - now
        state = f"expires in {left:.0f} s" if left > 0 else f"expired {-left:.0f} s ago"
        log.warn(
            f"the credential from {describe(request.command)} {state} (refresh-before is "
            f"{request.refresh_before:g} s): printed, not cached"
        )
        return
    entry = Entry(int(credential.expiry), int(now), _meta(request, credential), credential.output)
    try:
        store.write_entry(path, entry)
    except OSError as error:
        log.warn(f"could not write the cache entry {path}: {error.strerror}: printed, not cached")
        return
    log.debug(f"cached until {credential.expiry - request.refresh_before:.0f}: {path}")


def _token_of(credential: bytes) -> str | None:
    import orjson

    try:
        token = orjson.loads(credential)["status"].get("token")
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        return None
    return token if isinstance(token, str) and token else None


def _meta(request: Request, credential: Credential) -> bytes:
    import orjson

    return orjson.dumps(
        {
            "cluster": request.cluster or cluster_in_command(request.command),
            "command": request.command,
            "profile": request.profile,
            "region": request.region,
            "apiVersion": credential.api_version,
        }
    )


def cluster_in_command(argv: list[str]) -> str | None:
    """The cluster an `aws eks get-token` or `aws-iam-authenticator token` argv names, if any."""
    for flag in ("--cluster-name", "--cluster-id", "-i"):
        for at, arg in enumerate(argv[:-1]):
            if arg == flag:
                return argv[at + 1]
        for arg in argv:
            if arg.startswith(flag + "="):
                return arg[len(flag) + 1 :]
    return None
