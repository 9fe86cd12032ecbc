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
from shim.options import scan, split_command
from shim.selection import resolve
from shim.store import KeyFiles, cache_dir_problem, read_entry

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


def serve_hit(argv: Sequence[str], environ: Mapping[str, str]) -> int | None:
    """Print a servable cached credential and return 0; None when the full CLI must decide."""
    options_argv, command = split_command(argv)
    values = scan(options_argv)
    if values is None or environ.get("EKS_SHIM_DEBUG") == "1":
        return None
    try:
        request = resolve(values, command, environ)
    except UsageError:
        return None
    api_version = requested_api_version_fast(environ)
    if api_version is None or cache_dir_problem(request.cache_dir):
        return None
    key = cache_key(request.command, api_version, request.env, request.key_env)
    files = KeyFiles(request.cache_dir, key)
    entry = read_entry(files.entry)
    now = time.time()
    phase = stage(entry, now, request.refresh_before, request.refresh_ahead, request.max_age)
    if entry is None or phase not in SERVABLE:
        return None
    asker = client_identity() if environ.get(ENV_VAR) else None
    if asker is not None and asked_again(read_private(files.served), asker, now):
        return None  # maybe the server rejected it: the full CLI checks (issue #4)
    try:
        write_credential(entry.credential)
    except OSError:  # kubectl went away: nothing to tell anyone
        return 1
    after_serving(list(argv), files, asker, phase, now)
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
