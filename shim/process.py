"""The one place that runs a backend command: an argv list, never a shell string.

Started and finished in two steps, so that the caller can prepare validation
while the backend (hundreds of milliseconds of AWS CLI) runs:

    with start(argv, env) as backend:
        ...                               # imports, while it runs
        output = backend.finish(deadline)  # a shim.deadline.Deadline

stdin is inherited (MFA prompts); stdout is captured: it is the credential, and
only a valid one reaches kubectl. stderr is passed on to ours as it comes, and its
last few kB kept, so that a failure can be explained (an expired SSO session).

The backend runs in its own process group, so that a timeout, or SIGTERM, SIGHUP,
SIGINT or SIGQUIT to us, ends it and everything it started (a credential helper, a
`sleep` in a wrapper script), TERM first and KILL after a short grace; no orphan is
left under init. And yet the backend is part of our caller's job, as it is when
kubectl runs it directly:
- when stdin is our terminal and our caller's group is its foreground, the backend's
  group becomes the foreground for as long as it runs, as a shell does for a job: a
  prompt it reads must not stop it (SIGTTIN). We join that group meanwhile, so the
  terminal's signals reach us too: on Ctrl-C or Ctrl-\\ we give the terminal back,
  pass the signal on to our caller's group (kubectl ends as it would have) and end
  the backend's group; on Ctrl-Z (which stopped the backend) we give the terminal
  back and stop with our caller's group, as the shell expects of its job, and when
  it is continued we continue the backend, in the foreground again if the job is.
  A caller killed with its whole group (`kill -9 -PGID`) is seen at once, as the
  end of the pipe of our stdout, and the backend's group is ended;
- otherwise we stay in our caller's group and hear what it hears: Ctrl-Z stops the
  backend's group and then us, SIGCONT continues it. A watchdog `sh` in the
  backend's group, reading a pipe from us, kills that group if we die without
  saying goodbye (SIGKILL to our caller's group, as CI cancellation or `timeout -s
  KILL` sends it).

Built on os.posix_spawnp and a pipe rather than subprocess: `import subprocess`
costs about 24 ms on our 2-core machine (it pulls in threading, selectors,
signal, locale...), paid on every refresh before the backend can even start.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from typing import Any

from shim import log
from shim.deadline import Deadline
from shim.errors import (
    EXIT_NOT_EXECUTABLE,
    EXIT_TIMEOUT,
    BackendError,
    Terminated,
    not_found,
)

_READ_SIZE = 65536
# A credential is kilobytes (a client certificate chain, tens of them): a backend that
# prints more is not printing one, and is stopped before it fills our memory.
MAX_OUTPUT = 16 << 20
_TAIL = 8192  # bytes of the backend's stderr kept to explain a failure
GRACE = 1.0  # seconds between TERM and KILL for the backend's group


def _signals(*names: str) -> tuple[signal.Signals, ...]:
    """The signals of these names that the platform has (Windows has none of the job
    control ones: it runs backends through shim.windows, which builds on this module)."""
    return tuple(getattr(signal, name) for name in names if hasattr(signal, name))


# The signals that end us while a backend runs: we end its group first, then exit 128+N.
FORWARDED = _signals("SIGTERM", "SIGHUP", "SIGINT", "SIGQUIT")
# Those the terminal sends its foreground group (ours, while the backend runs): our
# caller did not get them, so we pass them on.
_FROM_THE_TERMINAL = _signals("SIGINT", "SIGQUIT")
_HELD_WHILE_STARTING = (*FORWARDED, *_signals("SIGTSTP"))
_STOPS = _signals("SIGTSTP", "SIGTTIN", "SIGTTOU")


def describe(argv: list[str]) -> str:
    """The command as a user would type it, for messages."""
    import shlex

    return " ".join(shlex.quote(arg) for arg in argv)


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated(signum)


# kubectl (Go) starts a plugin with every signal at its default, but SIGHUP and SIGINT
# stay ignored when kubectl itself was started with them ignored (a background job).
# Python ignores SIGPIPE and SIGXFSZ itself: without this, a backend's `seq | head`
# would say "Broken pipe".
_KEPT_IGNORED = _signals("SIGHUP", "SIGINT")
_NEVER_SET = _signals("SIGKILL", "SIGSTOP")


def _defaults_for_the_backend() -> set[int]:
    """The signals the backend starts with at their default disposition: all of them,
    but SIGHUP and SIGINT when we were started with them ignored."""
    kept = {signum for signum in _KEPT_IGNORED if signal.getsignal(signum) == signal.SIG_IGN}
    return {int(signum) for signum in signal.valid_signals()} - {*_NEVER_SET, *kept}


class OutputTooLarge(Exception):
    """The backend printed more than MAX_OUTPUT bytes."""


class BackendProcess:
    """A backend started in its own process group: its pid (= group id), its stdout pipe."""

    def __init__(self, argv: list[str], env: dict[str, str], shown: list[str]) -> None:
        self.argv = argv
        self.shown = shown  # the command as the user wrote it, for messages
        self.pid = 0
        self.stderr_tail = b""  # the end of what the backend wrote to stderr
        self._stdout = -1
        self._stderr = -1
        self._handlers: dict[int, Any] = {}
        self._terminal = False  # the terminal is the backend's (and ours) while it runs
        self._caller = os.getpgrp()  # our caller's process group, which we may leave
        self._pgid = 0  # the backend's process group, even once its leader is reaped
        self._group = 0  # the backend's group, while we are in it
        self._watchdog = (0, -1)  # its pid, and the pipe we say goodbye on
        # Signals wait until the pid is known: a TERM between spawn and bookkeeping
        # must not leave the backend behind, a Ctrl-Z must not stop us before we can
        # stop it too.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD_WHILE_STARTING)
        try:
            for signum in FORWARDED:
                if signal.getsignal(signum) == signal.SIG_IGN and signum in _KEPT_IGNORED:
                    continue  # ignored where we were started: the backend inherits that
                try:
                    self._handlers[signum] = signal.signal(signum, _raise_terminated)
                except ValueError:  # not the main thread: signals are the main thread's
                    break
            self._spawn(env, blocked)
        except BaseException:
            self._restore_handlers()
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
            raise
        try:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)  # a pending signal raises here
        except BaseException as error:  # ...before `with` took us: clean up as it would
            self.__exit__(type(error), error, error.__traceback__)
            raise

    def _spawn(self, env: dict[str, str], child_mask: Any) -> None:
        # All four ends are close-on-exec: only the dup2'd copies reach the backend.
        read_end, write_end = os.pipe()
        err_read, err_write = os.pipe()
        terminal = _our_terminal()
        # A path runs as it is: Apple's posix_spawnp runs a file that is no executable
        # (ENOEXEC: no `#!`) under /bin/sh, which kubectl (Go's exec) never does.
        spawn = os.posix_spawn if "/" in self.argv[0] else os.posix_spawnp
        try:
            self.pid = spawn(
                self.argv[0],
                self.argv,
                env,
                file_actions=[
                    (os.POSIX_SPAWN_DUP2, write_end, 1),
                    (os.POSIX_SPAWN_DUP2, err_write, 2),
                ],
                setpgroup=0,
                setsigmask=child_mask,
                setsigdef=_defaults_for_the_backend(),
            )
        except OSError as error:
            os.close(read_end)
            os.close(err_read)
            raise start_error(self.shown, self.argv[0], error) from None
        finally:
            os.close(write_end)
            os.close(err_write)
        self._stdout, self._stderr = read_end, err_read
        self._pgid = self.pid
        if terminal:
            self._terminal = _hand_terminal(self.pid)
        if self._terminal:
            self._join(self.pid)
        else:
            self._watchdog = _start_watchdog(self.pid, child_mask)
        with contextlib.suppress(ValueError):  # (not the main thread: no job control)
            self._handlers[signal.SIGTSTP] = signal.signal(signal.SIGTSTP, self._stop)

    def _join(self, group: int) -> None:
        """Move into the backend's group (it may be gone already: then we stay)."""
        with contextlib.suppress(OSError):
            os.setpgid(0, group)
            self._group = group

    def _leave(self) -> None:
        """Back into our caller's group, and the terminal back to it if we had it. A caller
        whose group is gone leaves us a group of our own: never the backend's, which is
        about to be ended."""
        if self._group:
            try:
                os.setpgid(0, self._caller)
            except OSError:
                with contextlib.suppress(OSError):
                    os.setpgid(0, 0)
            self._group = 0
        if self._terminal:
            _hand_terminal(os.getpgrp())

    def _stop(self, signum: int, frame: object) -> None:
        """Ctrl-Z (SIGTSTP): stop the backend's group (the terminal's Ctrl-Z may have stopped
        it already, or have come before it had the terminal), give the terminal back,
        and stop: in the backend's group, with our caller's group, as a shell expects of
        its job; in our caller's group, which heard the Ctrl-Z itself, alone. Once
        continued, continue the backend, with the terminal if our job has it again."""
        joined, had_terminal = self._group, self._terminal
        self._leave()
        self._terminal = False
        with contextlib.suppress(OSError):
            os.killpg(self._pgid, signal.SIGTSTP)
        signal.signal(signal.SIGTSTP, signal.SIG_DFL)
        try:  # we stop here, until SIGCONT
            if joined:
                os.killpg(os.getpgrp(), signal.SIGTSTP)
            else:
                os.kill(os.getpid(), signal.SIGTSTP)
        finally:
            signal.signal(signal.SIGTSTP, self._stop)
        if had_terminal and _our_terminal():
            self._terminal = _hand_terminal(self._pgid)
        if joined:
            self._join(self._pgid)
        with contextlib.suppress(OSError):
            os.killpg(self._pgid, signal.SIGCONT)

    def __enter__(self) -> BackendProcess:
        return self

    def __exit__(self, kind: object, error: object, traceback: object) -> None:
        # A second signal must not cut the clean-up short: it waits until we are done.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD_WHILE_STARTING)
        try:
            terminal = self._terminal
            self._leave()  # (before ending the group: we must not be in it)
            self._terminal = False
            if terminal and isinstance(error, Terminated) and error.signum in _FROM_THE_TERMINAL:
                _pass_on_to_our_group(error.signum)  # kubectl gets its Ctrl-C, as without us
            if error is not None and self.pid:
                end_group(self.pid)  # a timeout, a signal, Ctrl-C: never leave it running
            _end_watchdog(*self._watchdog)
            self._watchdog = (0, -1)
            for fd in (self._stdout, self._stderr):
                if fd >= 0:
                    os.close(fd)
            self._stdout = self._stderr = -1
            self._restore_handlers()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)

    def _restore_handlers(self) -> None:
        for signum, handler in self._handlers.items():
            signal.signal(signum, handler)
        self._handlers.clear()

    def finish(self, deadline: Deadline) -> bytes:
        """Wait until `deadline` (the whole call's) at most; the backend's stdout, or a
        BackendError with the command and exit code."""
        try:
            stdout, status = self._collect(deadline)
        except OutputTooLarge:
            raise BackendError(
                f"{describe(self.shown)} printed more than {MAX_OUTPUT >> 20} MiB, which is no "
                "credential, and was killed"
            ) from None
        except TimeoutError:
            raise BackendError(
                f"{describe(self.shown)} timed out ({deadline.setting} {deadline.seconds:g} s) "
                "and was killed",
                EXIT_TIMEOUT,
            ) from None
        code = os.waitstatus_to_exitcode(status)
        self.pid = 0  # reaped: its group id may be reused by anyone now
        if code != 0:
            # A signal -N becomes 128+N, as the shell reports it.
            exit_code = code if code > 0 else 128 - code
            raise BackendError(f"{describe(self.shown)} failed with exit code {code}", exit_code)
        return stdout

    def _collect(self, deadline: Deadline) -> tuple[bytes, int]:
        """stdout whole, and the exit status; stderr passed on as it comes. A backend that
        exits while something it started still holds stderr is not waited for."""
        import select

        poller = select.poll()
        for fd in (self._stdout, self._stderr):
            poller.register(fd, select.POLLIN)
        if self._group:  # (out of our caller's group, we would outlive it: watch for that)
            poller.register(1, 0)  # POLLERR, POLLHUP only: the reader of our stdout is gone
        open_fds, chunks, status, size = {self._stdout, self._stderr}, [], None, 0
        relaying = False  # descriptor 2 watched: what we passed on waits for room there
        while open_fds:
            if log.stderr_waiting() != relaying:
                relaying = not relaying
                if relaying:
                    poller.register(2, select.POLLOUT)
                else:
                    poller.unregister(2)
            if self._stdout not in open_fds and status is None:
                status = _reaped_status(self.pid)
            left = deadline.left()
            if not left:
                raise TimeoutError
            # Once stdout is closed, look in on the backend now and then: it may be gone.
            wait = left if self._stdout in open_fds else min(left, 0.02)
            events = poller.poll(wait * 1000)
            if not events and status is not None:
                break  # it exited, and stderr has been quiet since: a child of its holds it
            for fd, _ in events:
                if fd == 1:
                    if self._group:  # our caller is gone: kubectl, killed with its group
                        raise Terminated(signal.SIGPIPE)  # (as a write would have found)
                    poller.unregister(1)  # (back in its group: we share its fate again)
                    continue
                if fd == 2:
                    log.flush_stderr(wait=False)
                    continue
                data = os.read(fd, _READ_SIZE)
                if not data:
                    poller.unregister(fd)
                    open_fds.discard(fd)
                elif fd == self._stdout:
                    chunks.append(data)
                    size += len(data)
                    if size > MAX_OUTPUT:
                        raise OutputTooLarge
                else:
                    self._pass_on(data)
        return b"".join(chunks), status if status is not None else _wait(self.pid, deadline)

    def _pass_on(self, data: bytes) -> None:
        self.stderr_tail = (self.stderr_tail + data)[-_TAIL:]
        log.relay(data)


def start(argv: list[str], env: dict[str, str], shown: list[str] | None = None) -> BackendProcess:
    """Start `argv` (looked up on PATH) with `env`, its stdout piped to us; use it with `with`.
    Messages name it as `shown` (default: `argv`)."""
    return BackendProcess(argv, env, argv if shown is None else shown)


def start_error(argv: list[str], path: str, error: OSError) -> BackendError:
    """Why `path` (shown as `argv`) did not start."""
    if isinstance(error, FileNotFoundError):
        if os.path.isfile(path):  # there: what its #! line names is not
            return BackendError(
                f"{argv[0]}: cannot run: the interpreter its #! line names is not there",
                EXIT_NOT_EXECUTABLE,
            )
        return not_found(argv[0])
    if isinstance(error, PermissionError):
        return BackendError(f"{argv[0]}: permission denied", EXIT_NOT_EXECUTABLE)
    return BackendError(f"{argv[0]}: cannot run: {error.strerror}")


def _our_terminal() -> bool:
    """Whether stdin is our controlling terminal and our process group is its foreground."""
    try:
        return os.isatty(0) and os.tcgetpgrp(0) == os.getpgrp()
    except OSError:
        return False


def _hand_terminal(pgid: int) -> bool:
    """Make `pgid` the terminal's foreground group; whether that worked.

    A background group that does this gets SIGTTOU, as a shell taking its terminal
    back would: ignored for the call. The backend may have read the terminal before it
    was handed over, and been stopped for it: SIGCONT wakes it.
    """
    previous = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    try:
        os.tcsetpgrp(0, pgid)
    except OSError:
        return False
    finally:
        signal.signal(signal.SIGTTOU, previous)
    if pgid != os.getpgrp():
        # A backend that has exited already cannot be woken: macOS answers EPERM (a
        # group of zombies), Linux ESRCH. The terminal is the group's all the same, and
        # must be given back.
        with contextlib.suppress(OSError):
            os.killpg(pgid, signal.SIGCONT)
    return True


# The watchdog: reads a line from us; if it gets the end of the pipe instead, we died
# without saying goodbye, and it kills its process group: the backend's.
_WATCHDOG = ["/bin/sh", "-c", "read -r goodbye || kill -KILL 0"]


def _start_watchdog(pgid: int, mask: Any) -> tuple[int, int]:
    """Start the watchdog in the backend's group `pgid`, with the signal mask `mask`; its
    pid and our end of its pipe ((0, -1) when it could not start: the backend runs
    without one)."""
    read_end, write_end = os.pipe()
    try:
        pid = os.posix_spawn(
            _WATCHDOG[0],
            _WATCHDOG,
            {},
            file_actions=[(os.POSIX_SPAWN_DUP2, read_end, 0)],
            setpgroup=pgid,
            # It never stops: a Ctrl-Z our caller's group got while the watchdog was
            # still in it (between its vfork and its exec) would stop it before its
            # exec, out of reach of `fg`, and hold us in posix_spawn for good. Held,
            # the stop waits in it forever instead; we got the Ctrl-Z too.
            setsigmask={*mask, *_STOPS},
            setsigdef=_defaults_for_the_backend(),
        )
    except OSError:
        os.close(write_end)
        return 0, -1
    finally:
        os.close(read_end)
    return pid, write_end


def _end_watchdog(pid: int, goodbye: int) -> None:
    """Say goodbye (it exits), and reap it: at once, or it is init's to reap."""
    if goodbye < 0:
        return
    with contextlib.suppress(OSError):
        os.write(goodbye, b"\n")
    os.close(goodbye)
    waited = Deadline(0.5)
    with contextlib.suppress(ChildProcessError):
        while not os.waitpid(pid, os.WNOHANG)[0] and not waited.passed():
            time.sleep(0.001)


def _pass_on_to_our_group(signum: int) -> None:
    """Send `signum` to our (the caller's) process group, ourselves left out."""
    previous = signal.signal(signum, signal.SIG_IGN)
    try:
        with contextlib.suppress(OSError):
            os.killpg(os.getpgrp(), signum)
    finally:
        signal.signal(signum, previous)


# What killpg answers for a group with nothing left that we can signal: ESRCH for none
# at all; EPERM for members of another uid (a setuid helper) and, on macOS, for a group
# whose members are all zombies (a backend that exited just as we end it, not reaped yet).
_NOTHING_TO_SIGNAL = (ProcessLookupError, PermissionError)


def end_group(pgid: int, grace: float = GRACE) -> None:
    """End the process group led by our child `pgid`: TERM, then KILL after `grace`, reaped."""
    with contextlib.suppress(*_NOTHING_TO_SIGNAL):
        os.killpg(pgid, signal.SIGTERM)
    grace_over = Deadline(grace)
    reaped = False
    while not grace_over.passed():
        if not reaped:
            reaped = _reaped(pgid)
        if reaped and not _group_alive(pgid):
            return
        time.sleep(0.01)
    with contextlib.suppress(*_NOTHING_TO_SIGNAL):
        os.killpg(pgid, signal.SIGKILL)  # whatever ignored TERM, the leader or its children
    if not reaped:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pgid, 0)


def _reaped(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return done != 0


def _group_alive(pgid: int) -> bool:
    """Whether the group has a member we can still end (none: waiting is no use)."""
    try:
        os.killpg(pgid, 0)
    except _NOTHING_TO_SIGNAL:
        return False
    return True


def _reaped_status(pid: int) -> int | None:
    done, status = os.waitpid(pid, os.WNOHANG)
    return status if done else None


def _wait(pid: int, deadline: Deadline) -> int:
    # stdout is closed: the backend is exiting. Poll rather than block, in case it
    # closed stdout and went on running.
    pause = 0.0005
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        if deadline.passed():
            raise TimeoutError
        time.sleep(pause)
        pause = min(pause * 2, 0.02)
