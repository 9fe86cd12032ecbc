"""The entry point, and the hot path: kubectl runs us on every command, so a cache hit
must cost little more than starting Python.

The hot path's import diet is a boundary: a hit imports only the modules
tests/test_hot_path.py lists (os, sys, time, stat and the builtin sha256 from the
standard library; no argparse, json, pathlib, subprocess, typing,
dataclasses or enum), and those modules keep that diet (`TYPE_CHECKING = False`
instead of importing typing, classes with __slots__ instead of dataclasses).
Everywhere else, the code is plain idiomatic Python.

A hit resolves the request and derives the key with the same functions as the full
CLI; anything it is not sure of (flags, odd spellings, a miss, a repeat ask that may
be a 401) goes to `shim.cli.run`, which decides.
"""

from __future__ import annotations

import os
import sys
import time

from shim.entry import AHEAD
from shim.errors import UsageError
from shim.execinfo import requested_api_version_fast
from shim.lookup import deliver, look_up
from shim.options import debug_requested, scan, split_command
from shim.request import resolve
from shim.store import cache_dir_problem

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


def serve_hit(argv: Sequence[str], environ: Mapping[str, str]) -> int | None:
    """Print a servable cached credential: the exit code; None when the full CLI must decide."""
    options_argv, command = split_command(argv)
    values = scan(options_argv)
    if values is None or debug_requested(environ):
        return None
    try:
        request = resolve(values, command, environ, argv)
    except UsageError:
        return None
    api_version = requested_api_version_fast(environ)
    if api_version is None or cache_dir_problem(request.cache_dir):
        return None
    now = time.time()
    found = look_up(request, api_version, now)
    entry = found.servable
    if entry is None or found.asked_again:
        return None  # a miss, or maybe the server rejected it: the full CLI decides
    return deliver(entry.credential, request, found, found.stage == AHEAD, now)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `shim` and `eks-get-token-use-cache` scripts."""
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        code = serve_hit(args, os.environ)
    except Exception:  # whatever went wrong before anything was printed: the full CLI decides
        code = None
    if code is not None:
        return code
    from shim.cli import run

    return run(args)
