"""Refresh ahead: start a detached process that refreshes an entry while we serve it.

The child gets a new session and /dev/null for stdin and stdout, and the cache
dir's background.log for stderr: kubectl waits until every holder of the plugin's
stdout and stderr pipes has closed them, so a child that kept them would make
kubectl hang. The log is opened here, by the parent, with shim.files' care, and
handed over as a descriptor: posix_spawn's vfork would make an open of a FIFO in the
spawn actions block us where not even SIGKILL could end the wait. A cache hit imports
this module: shim.main states the import diet it keeps.
"""

from __future__ import annotations

import os
import sys

from shim.files import open_append, touch_private

FLAG = "--background-refresh"  # the hidden option the child runs with
RETRY_AFTER = 30.0  # seconds between two starts for one key, so a failing backend is not hammered
LOG_LIMIT = 256 * 1024  # background.log is emptied when it grows past this
# The child runs the full CLI directly. With -c, sys.path[0] is the current directory:
# drop it, so that a `shim` directory wherever kubectl runs cannot be imported instead.
# And -E, as the launchers start the shim: no PYTHONPATH or other PYTHON* variable of
# the user's reaches it (-s too, where the shim's own interpreter runs without the
# user's site-packages).
_CHILD = (
    "import sys; sys.path[:] = [p for p in sys.path if p]; "
    "from shim.cli import run; sys.exit(run(sys.argv[1:]))"
)


def due(marker: str, now: float) -> bool:
    """Whether no refresh was started for this key within RETRY_AFTER seconds. A marker
    from the future (the clock was set back) says nothing: due."""
    try:
        started = os.stat(marker).st_mtime
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return not 0 <= now - started < RETRY_AFTER


def start(args: list[str], marker: str, log_path: str) -> None:
    """Start `shim --background-refresh ARGS...` detached, unless its marker cannot be
    touched: without it the 30 s guard could not hold back the next call."""
    try:
        touch_private(marker)
    except OSError:
        return
    try:
        log_fd = open_append(log_path)
    except OSError:
        log_fd = os.open(os.devnull, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))  # no log
    try:
        isolated = "-Es" if sys.flags.no_user_site else "-E"
        child = [sys.executable, isolated, "-c", _CHILD, FLAG, *args]
        if sys.platform == "win32":
            _start_on_windows(child, log_fd)
        else:
            actions = [
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                (os.POSIX_SPAWN_DUP2, log_fd, 2),
            ]
            os.posix_spawn(sys.executable, child, os.environ, file_actions=actions, setsid=True)
    except (OSError, NotImplementedError):
        pass  # no refresh ahead this time: the entry is fetched in the foreground when due
    finally:
        os.close(log_fd)


def _start_on_windows(child: list[str], log_fd: int) -> None:
    """The same on Windows: no console of kubectl's (DETACHED_PROCESS), a process group of
    its own (kubectl's Ctrl-C is not its), out of kubectl's job where that job lets it go
    (CREATE_BREAKAWAY_FROM_JOB), and no handle of ours but the three given."""
    import subprocess

    flags = subprocess.DETACHED_PROCESS | subprocess.CREATE_NEW_PROCESS_GROUP  # type: ignore[attr-defined]
    for breakaway in (subprocess.CREATE_BREAKAWAY_FROM_JOB, 0):  # type: ignore[attr-defined]
        try:
            subprocess.Popen(
                child,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log_fd,
                creationflags=flags | breakaway,
            )
            return
        except PermissionError:  # a job that does not let its processes break away
            if not breakaway:
                raise


def bound_log() -> None:
    """In the child: empty background.log (our stderr) when it has grown past LOG_LIMIT."""
    try:
        if os.fstat(2).st_size > LOG_LIMIT:
            os.ftruncate(2, 0)
    except OSError:
        pass
