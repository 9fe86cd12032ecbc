"""The credential-plugin flow, top to bottom: cached entry, else lock, fetch, validate, store."""

from __future__ import annotations

import time

from shim import log, store
from shim.entry import Entry, is_fresh
from shim.errors import BackendError
from shim.keys import cache_key
from shim.lock import KeyLock
from shim.process import describe, finish, start

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable

    from shim.credential import Credential
    from shim.selection import Request


def read_fresh(path: str, now: float, refresh_before: float) -> Entry | None:
    """The entry at `path` if it may still be served."""
    entry = store.read_entry(path)
    return entry if entry is not None and is_fresh(entry.expiry, now, refresh_before) else None


def get_credential(
    request: Request, api_version: str, force: bool = False, clock: Callable[[], float] = time.time
) -> bytes:
    """The credential to print: a fresh cached one, else a newly fetched and validated one."""
    key = cache_key(request.command, api_version, request.env)
    path = store.entry_path(request.cache_dir, key)
    problem = store.cache_dir_problem(request.cache_dir)
    if problem is not None:
        log.warn(f"{problem}: working without a cache")
        return fetch(request, api_version).output
    entry = None if force else read_fresh(path, clock(), request.refresh_before)
    if entry is not None:
        log.debug(f"cache hit: {path}")
        return entry.credential
    store.ensure_cache_dir(request.cache_dir)
    with KeyLock(store.lock_path(request.cache_dir, key), request.timeout) as held:
        if not held:
            log.warn(f"another shim held {key}.lock for {request.timeout:g} s: fetching anyway")
        # Whoever held the lock before us may have fetched it already (issue #2: one backend run).
        entry = None if force else read_fresh(path, clock(), request.refresh_before)
        if entry is not None:
            log.debug(f"fetched by another process while we waited: {path}")
            return entry.credential
        credential = fetch(request, api_version)
        save_if_cacheable(path, request, credential, clock())
    return credential.output


def fetch(request: Request, api_version: str) -> Credential:
    """Run the backend and validate what it printed; BackendError when it is not a credential."""
    log.debug(f"running {describe(request.command)}")
    process = start(request.command, request.env)
    # Imported while the backend runs: orjson and dateutil cost tens of ms (issue #3).
    from shim.credential import validate

    result = validate(finish(process, request.command, request.timeout), api_version)
    if isinstance(result, list):
        problems = "; ".join(result)
        raise BackendError(f"{describe(request.command)} printed no valid credential: {problems}")
    return result


def save_if_cacheable(path: str, request: Request, credential: Credential, now: float) -> None:
    """Cache `credential` unless it has no expiry or is due for refresh; never fail for it."""
    name = describe(request.command)
    if credential.expiry is None:
        log.warn(f"{name} gave no expirationTimestamp: printed, not cached")
        return
    if not is_fresh(credential.expiry, now, request.refresh_before):
        left = credential.expiry - now
        state = f"expires in {left:.0f} s" if left > 0 else f"expired {-left:.0f} s ago"
        log.warn(
            f"the credential from {name} {state} (refresh-before is "
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
