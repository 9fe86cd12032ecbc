"""The one lookup both paths make: a request's key, its entry, the entry's stage, and
whether the same kubectl process is asking again; and `deliver`, which writes what is
served and does the bookkeeping after it, on either path.

Asking again is the sign that kubectl's server rejected what we served: client-go
runs the plugin again in the same process after a 401 (and does not retry the
request). So when the same process asks for the same key again soon after we served
it, the full path checks the token with the server before serving it again. The
Google Cloud SDK's kubectl dispatcher also asks twice per healthy run from one pid,
but the first time as the dispatcher and the second after exec'ing the versioned
kubectl: the parent's executable tells them apart (seen on Linux).

A cache hit imports this module: shim.main states the import diet it keeps.
"""

from __future__ import annotations

import os

from shim.background import due, start
from shim.entry import SERVABLE, stage
from shim.errors import EXIT_FAILURE
from shim.execinfo import ENV_VAR
from shim.files import read_private, write_credential, write_private
from shim.keys import cache_key
from shim.store import KeyFiles, read_entry

TYPE_CHECKING = False
if TYPE_CHECKING:
    from shim.entry import Entry
    from shim.request import Request

ASKED_AGAIN_WITHIN = 10.0  # seconds; client-go asks again right after the 401


class Lookup:
    """A request's cache files, its entry, the entry's stage, and who is asking."""

    __slots__ = ("asked_again", "asker", "entry", "files", "identity_changed", "stage")

    def __init__(
        self,
        files: KeyFiles,
        entry: Entry | None,
        stage: str,
        asker: str | None,
        again: bool,
        identity_changed: bool,
    ) -> None:
        self.files = files
        self.entry = entry
        self.stage = stage
        self.asker = asker  # the kubectl process asking, None outside kubectl
        self.asked_again = again  # it was served this entry moments ago: maybe a 401 (heal)
        self.identity_changed = identity_changed  # an entry was there, for another identity

    @property
    def servable(self) -> Entry | None:
        """The entry, when its stage lets it be served (fresh, or ahead of its refresh)."""
        return self.entry if self.stage in SERVABLE else None


def key_files(request: Request, api_version: str) -> KeyFiles:
    """The cache files of `request` answered with `api_version`."""
    key = cache_key(request.command, api_version, request.env, request.key_env, request.watched)
    return KeyFiles(request.cache_dir, key)


def read_current(path: str) -> Entry | None:
    """The entry at `path`, unless an identity file changed since it was fetched: a token
    signed for another identity is never served, not even when its refresh fails."""
    entry = read_entry(path)
    return entry if entry is not None and entry.identity_unchanged() else None


def stage_of(entry: Entry | None, now: float, request: Request) -> str:
    """Where `entry` is in its life (shim.entry.stage), with the request's settings."""
    return stage(entry, now, request.refresh_before, request.refresh_ahead, request.max_age)


def look_up(request: Request, api_version: str, now: float, force: bool = False) -> Lookup:
    """Key, entry, stage, and the repeat-ask check (read only for a servable entry asked for
    by kubectl, which sets KUBERNETES_EXEC_INFO). `force` ignores the entry."""
    files = key_files(request, api_version)
    entry = None if force else read_entry(files.entry)
    changed = entry is not None and not entry.identity_unchanged()
    if changed:
        entry = None
    phase = stage_of(entry, now, request)
    asker = client_identity() if request.env.get(ENV_VAR) else None
    again = (
        phase in SERVABLE
        and asker is not None
        and asked_again(read_private(files.served), asker, now)
    )
    return Lookup(files, entry, phase, asker, again, changed)


def deliver(
    credential: bytes, request: Request, found: Lookup | None, ahead: bool, now: float
) -> int:
    """Write `credential` for kubectl, then do the bookkeeping of serving it from the cache
    `found` (None: no cache): note who asked, for healing, and if `ahead`, start a refresh
    ahead unless one started recently. The exit code: 0, or 1 when kubectl went away.

    The bookkeeping never raises: the credential is served, and that must not turn into
    a failure (contextlib.suppress would cost the hot path milliseconds).
    """
    try:
        write_credential(credential)
    except OSError:  # stdout closed or broken: kubectl went away, nobody to tell
        return EXIT_FAILURE
    if found is None:
        return 0
    try:
        note_served(found.files.served, found.asker, now)
        if ahead and due(found.files.ahead, now):
            start(request.args, found.files.ahead, found.files.log)
    except Exception:  # noqa: S110
        pass
    return 0


def client_identity() -> str:
    """The asking process: its pid and, where the system tells, its executable."""
    if os.name == "nt":  # (our parent may be pip's shim.exe: shim.windows sees past it)
        from shim.windows import asker

        return asker()
    ppid = os.getppid()
    try:
        executable = os.readlink(f"/proc/{ppid}/exe")
    except OSError:
        executable = ""
    return f"{ppid} {executable}"


def served_record(identity: str, now: float) -> bytes:
    """What we note next to an entry when we serve it to a kubectl process."""
    return f"{now:.3f} {identity}\n".encode("utf-8", "surrogateescape")


def note_served(path: str, identity: str | None, now: float) -> None:
    """Note who was served, when kubectl is asking (`identity` is None otherwise)."""
    if identity is None:
        return
    try:  # noqa: SIM105 - contextlib would cost the hot path milliseconds
        write_private(path, served_record(identity, now))
    except OSError:
        pass  # a lost note costs at most one heal, never a failure


def asked_again(record: bytes | None, identity: str, now: float) -> bool:
    """Whether `identity` was served this entry within the last ASKED_AGAIN_WITHIN seconds."""
    if not record:
        return False
    stamp, _, who = record.decode("utf-8", "surrogateescape").rstrip("\n").partition(" ")
    try:
        served_at = float(stamp)
    except ValueError:
        return False
    return who == identity and 0 <= now - served_at < ASKED_AGAIN_WITHIN
