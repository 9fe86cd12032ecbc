"""The hot path: kubectl runs us on every command, so a cache hit must cost little more
than starting Python (issue #3).

A hit imports only os, sys, time, stat and the builtin sha256: no argparse, json,
orjson, json, portalocker, pathlib, subprocess or tempfile (tests/test_hot_path.py
guards this). It resolves the request and derives the key with the same functions
as the full CLI; anything it is not sure of (flags, odd spellings, a miss) goes to
`shim.cli.main`, which decides.
"""

from __future__ import annotations

import os
import sys
import time

from shim.background import after_serving
from shim.client import asked_again, client_identity
from shim.entry import SERVABLE, stage
from shim.errors import UsageError
from shim.execinfo import ENV_VAR, requested_api_version_fast
from shim.files import read_private, write_credential
from shim.keys import cache_key
from shim.options import debug_requested, scan, split_command
from shim.selection import resolve
from shim.store import KeyFiles, cache_dir_problem, read_entry

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from shim.entry import Entry
    from shim.selection import Request


class Lookup:
    """A request's cache files, its entry, the entry's stage, and who is asking."""

    __slots__ = ("asked_again", "asker", "entry", "files", "stage")

    def __init__(
        self, files: KeyFiles, entry: Entry | None, stage: str, asker: str | None, again: bool
    ) -> None:
        self.files = files
        self.entry = entry
        self.stage = stage
        self.asker = asker  # the kubectl process asking (shim.client), None outside kubectl
        self.asked_again = again  # it was served this entry moments ago: maybe a 401 (heal)


def key_files(request: Request, api_version: str) -> KeyFiles:
    """The cache files of `request` answered with `api_version`."""
    key = cache_key(request.command, api_version, request.env, request.key_env)
    return KeyFiles(request.cache_dir, key)


def entry_stage(entry: Entry | None, now: float, request: Request) -> str:
    """Where `entry` is in its life (shim.entry.stage), with the request's settings."""
    return stage(entry, now, request.refresh_before, request.refresh_ahead, request.max_age)


def look_up(
    request: Request, api_version: str, environ: Mapping[str, str], now: float, force: bool = False
) -> Lookup:
    """The one lookup both paths make (issue #9): key, entry, stage, and the repeat-ask check
    (read only for a servable entry asked for by kubectl). `force` ignores the entry."""
    files = key_files(request, api_version)
    entry = None if force else read_entry(files.entry)
    phase = entry_stage(entry, now, request)
    asker = client_identity() if environ.get(ENV_VAR) else None
    again = (
        phase in SERVABLE
        and asker is not None
        and asked_again(read_private(files.served), asker, now)
    )
    return Lookup(files, entry, phase, asker, again)


def serve_hit(argv: Sequence[str], environ: Mapping[str, str]) -> int | None:
    """Print a servable cached credential and return 0; None when the full CLI must decide."""
    options_argv, command = split_command(argv)
    values = scan(options_argv)
    if values is None or debug_requested(environ):
        return None
    try:
        request = resolve(values, command, environ)
    except UsageError:
        return None
    api_version = requested_api_version_fast(environ)
    if api_version is None or cache_dir_problem(request.cache_dir):
        return None
    now = time.time()
    found = look_up(request, api_version, environ, now)
    entry = found.entry if found.stage in SERVABLE and not found.asked_again else None
    if entry is None:
        return None  # a miss, or maybe the server rejected it: the full CLI decides (issue #4)
    try:
        write_credential(entry.credential)
    except OSError:  # kubectl went away: nothing to tell anyone
        return 1
    after_serving(list(argv), found.files, found.asker, found.stage, now)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `shim` and `eks-get-token-use-cache` scripts."""
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        code = serve_hit(args, os.environ)
    except Exception:  # whatever went wrong before anything was printed: the full CLI decides
        code = None
    if code is not None:
        return code
    from shim.cli import main as full_main

    return full_main(args)
