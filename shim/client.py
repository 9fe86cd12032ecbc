"""Which process is asking: the signal that kubectl's server rejected what we served.

client-go runs the plugin again in the same process after a 401 (and does not
retry the request). So when the same process asks for the same key again soon
after we served it from the cache, the token may have been rejected (issue #4).
The Google Cloud SDK's kubectl dispatcher also asks twice per healthy run from
one pid, but the first time as the dispatcher and the second after exec'ing the
versioned kubectl: the parent's executable tells them apart (seen here, Linux).
Only `os`: this runs on the hot path.
"""

from __future__ import annotations

import os

ASKED_AGAIN_WITHIN = 10.0  # seconds; client-go asks again right after the 401


def client_identity() -> str:
    """The asking process: its pid and, where /proc tells, its executable."""
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
    from shim.files import write_private

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
