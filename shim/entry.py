"""The cache entry format, and freshness: pure functions, no I/O.

An entry is one header line and a body:

    eks-token-shim-entry/2 <expiry> <fetched_at> <meta_len> <watched_len> <credential_len>
        <fingerprint> <sha256>\\n   (one line)
    <meta: JSON for --list><watched: the identity files' paths, NUL between them>
    <credential: the backend's validated output, printed as is>

The expiry sits in the header so that a cache hit needs no JSON parser. The
fingerprint is the state of the watched files before the backend ran
(shim.keys.fingerprint). The lengths and the SHA-256 (of the header's other fields
and the body) turn a truncated or damaged file into a miss.
"""

from __future__ import annotations

from shim.keys import fingerprint, hexdigest

MAGIC = b"eks-token-shim-entry/2"
_MAX_HEADER = 256
_FIELDS = 8  # magic, 5 numbers, fingerprint, digest
WATCHED_SEPARATOR = b"\0"  # no path holds a NUL
UNWATCHED = fingerprint(())  # the fingerprint of no files


class Entry:
    """A cached credential: its expiry and fetch time (Unix seconds), --list metadata, bytes,
    and the identity files it was fetched under with their fingerprint (shim.keys)."""

    __slots__ = ("credential", "expiry", "fetched_at", "fingerprint", "meta", "watched")

    def __init__(
        self,
        expiry: int,
        fetched_at: int,
        meta: bytes,
        credential: bytes,
        watched: bytes = b"",
        fingerprint: bytes = UNWATCHED,
    ) -> None:
        self.expiry = expiry
        self.fetched_at = fetched_at
        self.meta = meta
        self.credential = credential
        self.watched = watched  # the paths, WATCHED_SEPARATOR between them
        self.fingerprint = fingerprint  # hex

    def watched_paths(self) -> list[str]:
        """The paths of the identity files this entry was fetched under."""
        if not self.watched:
            return []
        return self.watched.decode("utf-8", "surrogateescape").split("\0")

    def identity_unchanged(self) -> bool:
        """Whether every identity file is as it was before the backend ran (a `stat` each)."""
        return fingerprint(self.watched_paths()) == self.fingerprint


def watched_bytes(paths: list[str] | tuple[str, ...]) -> bytes:
    """Entry.watched for `paths`."""
    return WATCHED_SEPARATOR.join(path.encode("utf-8", "surrogateescape") for path in paths)


def encode_entry(entry: Entry) -> bytes:
    """The bytes of a cache file."""
    body = entry.meta + entry.watched + entry.credential
    numbers = (
        entry.expiry,
        entry.fetched_at,
        len(entry.meta),
        len(entry.watched),
        len(entry.credential),
    )
    fields = b" ".join([MAGIC, *(b"%d" % number for number in numbers), entry.fingerprint])
    return fields + b" " + _digest(fields, body) + b"\n" + body


def decode_entry(data: bytes) -> Entry | None:
    """The entry in `data`, or None when it is not a whole, undamaged entry of this format."""
    header, newline, body = data.partition(b"\n")
    parts = header.split(b" ")
    if not newline or len(header) > _MAX_HEADER or len(parts) != _FIELDS or parts[0] != MAGIC:
        return None
    if not all(part.isdigit() for part in parts[1:6]):
        return None
    expiry, fetched_at, meta_len, watched_len, credential_len = (int(p) for p in parts[1:6])
    fields = header[: -len(parts[-1]) - 1]
    if len(body) != meta_len + watched_len + credential_len or _digest(fields, body) != parts[-1]:
        return None
    watched_end = meta_len + watched_len
    return Entry(
        expiry,
        fetched_at,
        body[:meta_len],
        body[watched_end:],
        body[meta_len:watched_end],
        parts[6],
    )


# The life of a cached token, from the newest to the oldest:
MISSING = "missing"  # no usable entry at all
FRESH = "fresh"  # served as is
AHEAD = "ahead"  # served, and refreshed in the background
REFRESH = "refresh"  # refreshed in the foreground; served if that fails (stale-if-error)
EXPIRED = "expired"  # refreshed in the foreground; a failure reaches kubectl
SERVABLE = (FRESH, AHEAD)


def stage(
    entry: Entry | None,
    now: float,
    refresh_before: float,
    refresh_ahead: float,
    max_age: float,
) -> str:
    """Where `entry` is in its life at `now`: MISSING, FRESH, AHEAD, REFRESH or EXPIRED.

    An entry lives until its expiry, or until `max_age` seconds after it was fetched,
    whichever comes first (a backend's far-future expiry is not trusted for years).
    One fetched in the future (the clock was set back) is MISSING: its times mean nothing.
    The refresh-ahead window is at most half the entry's lifetime, so that a backend
    whose tokens live shorter than `refresh_ahead` does not start a refresh on every
    call right after a fetch (no refresh storm).
    """
    if entry is None or entry.fetched_at > now:
        return MISSING
    end = end_of_life(entry.expiry, entry.fetched_at, max_age)
    if now >= end:
        return EXPIRED
    if not is_fresh(end, now, refresh_before):
        return REFRESH
    ahead = min(refresh_ahead, (end - entry.fetched_at) / 2)
    return FRESH if is_fresh(end, now, ahead) else AHEAD  # ahead 0: fresh until REFRESH


def end_of_life(expiry: float, fetched_at: float, max_age: float) -> float:
    """When a token fetched at `fetched_at` stops being served: its expiry, or `max_age`
    seconds after it was fetched, whichever comes first."""
    return min(expiry, fetched_at + max_age)


def is_fresh(expiry: float, now: float, refresh_before: float) -> bool:
    """Whether an entry may be served: more than `refresh_before` seconds of validity left."""
    return now < expiry - refresh_before


def _digest(fields: bytes, body: bytes) -> bytes:
    # Over the header's numbers too: a changed expiry digit must not pass for a later expiry.
    return hexdigest(fields + b"\n" + body).encode("ascii")
