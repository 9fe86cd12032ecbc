"""The full command line: argparse, the actions, and the one error boundary.

`shim.main` serves plain cache hits without coming here; everything else
(misses, --refresh, --purge, --list, --help, usage errors, `shim kubeconfig`)
comes through `run`, and every failure leaves through `guarded`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Callable, NoReturn, TextIO

from shim import __version__, crash, log, store
from shim.backends import BACKENDS, output_hint
from shim.background import FLAG
from shim.deadline import Deadline
from shim.entry import end_of_life
from shim.errors import EXIT_INTERRUPTED, NotACredential, ShimError, Terminated, UsageError
from shim.execinfo import requested_api_version
from shim.files import unlink
from shim.flow import get_credential, refresh_in_background
from shim.lock import KeyLock
from shim.lookup import deliver
from shim.meta import decode as decode_meta
from shim.meta import printable
from shim.options import (
    REPEAT_SEPARATOR,
    SELECTION,
    SETTINGS,
    VALUE_OPTIONS,
    debug_requested,
    split_command,
)
from shim.request import cache_dir_setting, resolve, seconds_setting

if TYPE_CHECKING:
    from shim import kubeconfig

USAGE = """\
shim [SELECTION] [OPTIONS]
       shim [OPTIONS] -- COMMAND [ARG...]
       shim kubeconfig {wrap,unwrap} [--kubeconfig PATH] [--context NAME]... [--dry-run]"""
DESCRIPTION = f"""\
Print a kubectl exec credential (ExecCredential JSON) for an EKS cluster, cached
until shortly before it expires. EKS mode builds the backend command from
SELECTION (backends: {", ".join(BACKENDS)}); generic mode runs COMMAND verbatim.
`shim kubeconfig --help` explains how to put the shim into kubeconfig."""
EPILOG = """\
EKS_SHIM_DEBUG=1 works as -v. Options on the command line win over the environment;
an empty variable counts as unset."""
VERBOSE_FLAGS = ("-v", "--verbose")


class Parser(argparse.ArgumentParser):
    """argparse, whose errors go through our error boundary: one `eks-token-shim:` line."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)")


def build_parser() -> Parser:
    """The argparse parser, built from the option table in shim.options."""
    parser = Parser(
        prog="shim", usage=USAGE, description=DESCRIPTION, epilog=EPILOG, allow_abbrev=False
    )
    for title, table in (("selection (EKS mode)", SELECTION), ("caching", SETTINGS)):
        group = parser.add_argument_group(title)
        for option in table:
            notes = [f"env {option.env}"] if option.env else []
            notes += [f"default: {option.default}"] if option.default else []
            help_text = option.help + (f" ({'; '.join(notes)})" if notes else "")
            group.add_argument(
                *option.flags,
                dest=option.dest,
                metavar=option.metavar,
                help=help_text,
                action="append" if option.repeatable else "store",
            )
    parser.add_argument(*VERBOSE_FLAGS, action="store_true", help="explain on stderr what happens")
    parser.add_argument("--version", action="version", version=f"eks-token-shim {__version__}")
    actions = parser.add_argument_group("actions (default: print a valid credential)")
    exclusive = actions.add_mutually_exclusive_group()
    exclusive.add_argument(
        "--refresh", action="store_true", help="fetch now, replace the entry, print"
    )
    exclusive.add_argument(
        "--purge",
        action="store_true",
        help="remove the entries of a cluster (-c, narrowed by -p/-r) however they were made, "
        "or of `-- COMMAND` exactly, or all when nothing is selected",
    )
    exclusive.add_argument(
        "--list", action="store_true", help="show the cached entries (never the tokens)"
    )
    # What a refresh ahead starts, detached (shim.background); not for people.
    exclusive.add_argument(FLAG, action="store_true", help=argparse.SUPPRESS)
    return parser


def build_kubeconfig_parser() -> Parser:
    """The parser of `shim kubeconfig {wrap,unwrap} ...`."""
    from shim import kubeconfig  # (ruamel.yaml and the editor: not on the credential path)

    parser = Parser(
        prog="shim kubeconfig",
        allow_abbrev=False,
        description=kubeconfig.DESCRIPTION,
        epilog=kubeconfig.HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("action", choices=("wrap", "unwrap"), help="see below")
    parser.add_argument(
        "--kubeconfig",
        metavar="PATH",
        help="the file to edit (default: $KUBECONFIG's files, else ~/.kube/config)",
    )
    parser.add_argument(
        "--context",
        metavar="NAME",
        action="append",
        default=[],
        help="only this context's user (repeatable; default: every EKS user)",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the changes, write nothing")
    parser.add_argument(*VERBOSE_FLAGS, action="store_true", help="explain on stderr")
    return parser


def run(argv: Sequence[str]) -> int:
    """Run the command line (the arguments after the program's name); the exit code."""
    args = list(argv)
    log.standard_streams_open()
    log.set_verbose(debug_requested(os.environ))
    if sys.stdout is not None:
        sys.stdout = _Stdout(sys.stdout)
    try:
        return guarded(lambda: dispatch(args, os.environ), os.environ)
    finally:
        if log.stderr_waiting():  # stderr is full: kubectl need not wait for it to drain
            let_stdout_go()
        log.flush_stderr()  # what waited for room, until the call's deadline


class StdoutLost(ShimError):
    """What --list, --purge or --help print cannot be written: a full disk, a closed pipe."""


class _Stdout:
    """sys.stdout, whose write and flush fail as StdoutLost, not an OSError (a bug's exit 3)
    or, at exit, Python's "Exception ignored" and exit 120."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError as error:
            raise _lost(error) from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as error:
            raise _lost(error) from None

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)


def _lost(error: OSError) -> StdoutLost:
    """StdoutLost for `error`, with what is left unwritten dropped: /dev/null on descriptor
    1, so that Python's own flush at exit has nowhere to fail. A reader that went away
    (a closed pipe: `shim --list | head -1`) is told nothing, as by a shell's tools."""
    with contextlib.suppress(OSError):
        _null_on_stdout()
    if isinstance(error, BrokenPipeError):
        return StdoutLost("")
    return StdoutLost(f"cannot write to stdout: {error.strerror or error}")


def _exit_code(action: Callable[[], int]) -> int:
    """What `action` returns, or the code it exits with (argparse exits after --help,
    --version or a usage error): what it printed is then flushed inside the boundary."""
    try:
        return action()
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else int(done.code is not None)


def _flushed(code: int) -> int:
    """`code`, once what was printed has reached stdout (inside the error boundary)."""
    if sys.stdout is not None:
        sys.stdout.flush()
    return code


def let_stdout_go() -> None:
    """Put /dev/null on descriptor 1: whoever reads our stdout sees its end now, not when
    we exit (kubectl reads a plugin's stdout to its end)."""
    try:
        sys.stdout.flush()
        _null_on_stdout()
    except (OSError, ValueError, StdoutLost):  # (StdoutLost: _lost has done it)
        pass


def _null_on_stdout() -> None:
    """/dev/null on descriptor 1, in place of whatever it was."""
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.close(null)


def dispatch(args: list[str], environ: Mapping[str, str]) -> int:
    """`shim [-v] kubeconfig ...`, or the credential command line."""
    rest = args
    while rest and rest[0] in VERBOSE_FLAGS:
        rest = rest[1:]
    if rest[:1] == ["kubeconfig"]:
        if rest is not args:  # `shim -v kubeconfig ...`
            log.set_verbose(True)
        return kubeconfig_command(rest[1:], environ)
    return credential_command(args, environ)


def kubeconfig_command(argv: list[str], environ: Mapping[str, str]) -> int:
    """`shim kubeconfig {wrap,unwrap} ...`: plan the edit, write it, say what was done."""
    from shim import kubeconfig

    parsed = build_kubeconfig_parser().parse_args(argv)
    if parsed.verbose:
        log.set_verbose(True)
    plan = kubeconfig.edit(
        parsed.action, parsed.kubeconfig, parsed.context, environ, dry_run=parsed.dry_run
    )
    report_edit(plan, parsed.dry_run)
    return 0


def report_edit(plan: kubeconfig.Plan, dry_run: bool) -> None:
    """One line per changed user and allowlist entry, and a total."""
    would = "would " if dry_run else ""
    for user in plan.users:
        print(
            f"{would}{plan.action}: {user.path}: context {user.context}, user {user.user}: "
            f"{user.change.before} -> {user.change.after}"
        )
    for edit in plan.allowlist:
        verb, sign = ("allow", "+") if edit.added else ("disallow", "-")
        print(f"{would}{verb}: {edit.path}: credentialPluginAllowlist {sign} {edit.entry}")
    count, files = len(plan.users), len({user.path for user in plan.users})
    if not count:
        print(f"nothing to {plan.action}")
        return
    done = "would change" if dry_run else "changed"
    print(
        f"{done} {count} user{'' if count == 1 else 's'} in {files} file{'' if files == 1 else 's'}"
    )


def guarded(action: Callable[[], int], environ: Mapping[str, str]) -> int:
    """The error boundary: expected errors become one line and their exit code; a signal
    128+N; anything unexpected exit 3, one line, and a crash log with the traceback."""
    try:
        return _flushed(_exit_code(action))
    except ShimError as error:
        if error.message:  # (a reader that went away is told nothing)
            log.error(error.message)
        if error.hint:
            log.hint(error.hint)
        return error.exit_code
    except Terminated as signalled:
        return signalled.exit_code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as error:
        return crash.report(error, environ)


def credential_command(argv: list[str], environ: Mapping[str, str]) -> int:
    """Parse the credential command line and do what it asks."""
    options_argv, command = split_command(argv)
    parsed = build_parser().parse_args(options_argv)
    if parsed.verbose:
        log.set_verbose(True)
    values = option_values(parsed)
    cache_dir = cache_dir_setting(values, environ)
    crash.note_cache_dir(cache_dir)
    if parsed.list:
        list_entries(
            cache_dir, selection_filter(values), seconds_setting(values, environ, "max_age")
        )
        return 0
    if parsed.purge and command is None:
        purge_selected(values, cache_dir)
        return 0
    request = resolve(values, command, environ, argv)
    if parsed.purge:
        purge_command(request.command, request.cache_dir)
        return 0
    api_version = requested_api_version(environ)
    if parsed.background_refresh:
        refresh_in_background(request, api_version)
        return 0
    try:
        answer = get_credential(request, api_version, force=parsed.refresh)
    except NotACredential as refused:  # kubectl reads it and decides, as without the shim
        log.warn(f"{refused.message}: passed to kubectl as it came, not cached")
        hint = output_hint(request.command)
        if hint:
            log.hint(hint)
        return deliver(refused.output, request, None, False, time.time())
    return deliver(answer.credential, request, answer.found, answer.ahead, time.time())


def option_values(parsed: argparse.Namespace) -> dict[str, str]:
    """The value options argparse found, in the form `shim.options.scan` gives them."""
    values = {}
    for option in VALUE_OPTIONS:
        value = getattr(parsed, option.dest)
        if value is not None:
            values[option.dest] = REPEAT_SEPARATOR.join(value) if option.repeatable else value
    return values


def purge_selected(values: Mapping[str, str], cache_dir: str) -> None:
    """`--purge -c CLUSTER [-p PROFILE] [-r REGION]`: every entry of that cluster however it was
    made (EKS mode, a wrapped kubeconfig's command); without -c, every file of ours."""
    if "cluster" not in values:
        removed, left, in_use = store.purge_all(cache_dir)
        _report_purge(removed, cache_dir, left, in_use)
        return
    _purge_matching(selection_filter(values), cache_dir)


def selection_filter(values: Mapping[str, str]) -> Callable[[dict[str, object]], bool]:
    """Whether an entry's metadata matches the -c/-p/-r given (each one given must match;
    none given: every entry), however the entry was made."""
    wanted = {name: values[name] for name in ("cluster", "profile", "region") if name in values}
    return lambda meta: all(meta.get(name) == value for name, value in wanted.items())


def purge_command(command: list[str], cache_dir: str) -> None:
    """`--purge -- COMMAND...`: the entries of exactly that command, any apiVersion or env."""
    _purge_matching(lambda meta: meta.get("command") == command, cache_dir)


def _purge_matching(selected: Callable[[dict[str, object]], bool], cache_dir: str) -> None:
    store.note_purge(cache_dir)  # first: a fetch already running does not keep its entry
    removed = 0
    for key, entry in store.list_entries(cache_dir):
        meta = decode_meta(entry.meta) if entry is not None else {}
        files = store.KeyFiles(cache_dir, key)
        if selected(meta) and store.remove_entry(files, True):
            _remove_lock_unless_held(files.lock)
            removed += 1
            print(f"removed: {_described_line(meta)}")
    # An entry's write cut short before its rename: a whole entry, maybe a valid token.
    for path, becomes, _ in store.unfinished_writes(cache_dir):
        entry = store.read_entry(path) if becomes.endswith(store.ENTRY_SUFFIX) else None
        if entry is None:
            continue
        unfinished = decode_meta(entry.meta)
        if selected(unfinished) and unlink(path):
            print(f"removed: {_described_line(unfinished)} (a write that never finished)")
    _report_purge(removed, cache_dir)


def _remove_lock_unless_held(path: str) -> None:
    """A purged entry's lock goes too, unless a running call holds it: that call removes
    it when it lets it go with no entry left (the purge marker sees to that)."""
    if not os.path.lexists(path):
        return
    lock = KeyLock(path)
    with contextlib.suppress(OSError):  # not a file we can lock (a FIFO): not ours to remove
        if lock.acquire(Deadline(0)):
            lock.release(remove=True)


def _report_purge(removed: int, cache_dir: str, left: int = 0, in_use: int = 0) -> None:
    where = printable(cache_dir)
    print(f"removed {_entries(removed)} from {where}")
    if left:
        log.warn(f"left alone {_files(left)} in {where} that the shim did not write")
    if in_use:
        log.warn(f"left {_files(in_use)} in {where} that a running call holds open (its lock)")


def _files(count: int) -> str:
    return f"{count} file{'s' if count > 1 else ''}"


def _entries(count: int) -> str:
    return f"{count} cache {'entry' if count == 1 else 'entries'}"


def _described_line(meta: dict[str, object]) -> str:
    """An entry's metadata in one line: `cluster prod, profile -, ...`."""
    return ", ".join(f"{name} {cell}" for name, cell in _described(meta))


def _described(meta: dict[str, object]) -> list[tuple[str, str]]:
    """An entry's metadata as (column, cell) pairs; never the token, which is not in it."""
    command = meta.get("command")
    what = meta.get("cluster") or (
        " ".join(str(arg) for arg in command) if isinstance(command, list) else "?"
    )
    return [
        ("cluster" if meta.get("cluster") else "command", printable(what)),
        ("profile", printable(meta.get("profile") or "-")),
        ("region", printable(meta.get("region") or "-")),
        ("api", printable(meta.get("apiVersion") or "-").rpartition("/")[2]),
        ("made", printable(meta.get("mode") or "-")),
    ]


def list_entries(
    cache_dir: str, selected: Callable[[dict[str, object]], bool], max_age: float
) -> None:
    """Print one line per entry `selected` by its metadata: what it is for, how it was
    made, until when it is served (its expiry, or `max_age` after its fetch if that comes
    first). Never the token."""
    rows: list[tuple[str, ...]] = [
        ("CLUSTER/COMMAND", "PROFILE", "REGION", "API", "MADE", "EXPIRES", "LEFT")
    ]
    now = time.time()
    entries = store.list_entries(cache_dir)
    log.debug(f"{_entries(len(entries))} in {printable(cache_dir)}")
    for key, entry in entries:
        if entry is None:
            if selected({}):  # (no metadata to match: shown only when nothing is selected)
                rows.append((f"(damaged entry {key[:12]}...)", "-", "-", "-", "-", "-", "-"))
            continue
        meta = decode_meta(entry.meta)
        if not selected(meta):
            continue
        cells = [cell for _, cell in _described(meta)]
        end = end_of_life(entry.expiry, entry.fetched_at, max_age)
        rows.append((*cells, log.utc(end), f"{end - now:.0f}s"))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
