"""An unexpected exception: a bug. The user sees one line and exit 3; the traceback, with
the versions that explain it, goes to a crash log (as pre-commit's error handler does).

kubectl shows the plugin's stderr to users (and GUI front ends show nothing else), so
a traceback there is noise at best. The log is 0600 in the cache directory, replaced
by the next crash; it holds no argv and no environment, which may carry secrets.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from shim import __version__, log
from shim.errors import EXIT_CRASH

_where: dict[str, str] = {}  # the cache directory of the call, once the options said it


def note_cache_dir(cache_dir: str) -> None:
    """Where a crash of this call is logged: its cache directory."""
    _where["cache_dir"] = cache_dir


def report(error: BaseException, environ: Mapping[str, str]) -> int:
    """Log `error` with its traceback, tell the user in one line; the exit code, 3."""
    import platform
    import traceback

    trace = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    text = (
        f"eks-token-shim {__version__} crashed at "
        f"{log.utc()}\n"
        f"python {sys.version.split()[0]} ({sys.executable}) on {platform.platform()}\n\n{trace}"
    )
    path = _write(text, environ)
    where = f": the traceback is in {path}" if path else " (no crash log could be written)"
    log.error(f"unexpected {type(error).__name__}, a bug in eks-token-shim{where}")
    if log.is_verbose():
        sys.stderr.write(trace)
    return EXIT_CRASH


def _write(text: str, environ: Mapping[str, str]) -> str | None:
    """Write the crash log; its path, or None when nowhere would take it."""
    from shim.files import make_private_dirs, replace_file
    from shim.store import CRASH_LOG

    data = text.encode("utf-8", "backslashreplace")
    cache_dir = _where.get("cache_dir")
    if cache_dir is None:  # a crash before the options were read: the environment's dir
        from shim.request import cache_dir_setting

        cache_dir = cache_dir_setting({}, environ)
    try:
        make_private_dirs(cache_dir)
        path = os.path.join(cache_dir, CRASH_LOG)  # one of the store's own names
        replace_file(path, data)
        return path
    except OSError:
        pass
    import tempfile

    try:
        fd, path = tempfile.mkstemp(prefix="eks-token-shim-crash-", suffix=".log")
        with os.fdopen(fd, "wb") as file:
            file.write(data)
    except OSError:
        return None
    return path
