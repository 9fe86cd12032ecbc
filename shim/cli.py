"""The full command line: argparse, the actions, and the error boundary.

`shim.fast` serves plain cache hits without coming here; everything else
(misses, --refresh, --purge, --list, --help, usage errors) comes through `main`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from shim import __version__, log, store
from shim.background import FLAG
from shim.errors import EXIT_FAILURE, EXIT_INTERRUPTED, ShimError, Terminated
from shim.execinfo import requested_api_version
from shim.files import write_credential
from shim.flow import get_credential, refresh_in_background
from shim.meta import decode as decode_meta
from shim.meta import printable
from shim.options import REPEAT_SEPARATOR, SELECTION, SETTINGS, VALUE_OPTIONS, split_command
from shim.selection import BACKENDS, Request, cache_dir_setting, has_selection, resolve

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Callable

USAGE = """\
shim [SELECTION] [OPTIONS]
       shim [OPTIONS] -- COMMAND [ARG...]
       shim kubeconfig {wrap,unwrap} [--kubeconfig PATH] [--context NAME]... [--dry-run]"""
DESCRIPTION = f"""\
Print a kubectl exec credential (ExecCredential JSON) for an EKS cluster, cached
until shortly before it expires. EKS mode builds the backend command from
SELECTION (backends: {", ".join(BACKENDS)}); generic mode runs COMMAND verbatim."""
EPILOG = """\
EKS_SHIM_DEBUG=1 works as -v. Options on the command line win over the environment;
an empty variable counts as unset."""


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser, built from the option table in shim.options."""
    parser = argparse.ArgumentParser(
        prog="shim", usage=USAGE, description=DESCRIPTION, epilog=EPILOG, allow_abbrev=False
    )
    for title, table in (("selection (EKS mode)", SELECTION), ("options", SETTINGS)):
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
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="explain on stderr what happens"
    )
    parser.add_argument("--version", action="version", version=f"eks-token-shim {__version__}")
    actions = parser.add_argument_group("actions (default: print a valid credential)")
    exclusive = actions.add_mutually_exclusive_group()
    exclusive.add_argument(
        "--refresh", action="store_true", help="fetch now, replace the entry, print"
    )
    exclusive.add_argument(
        "--purge",
        action="store_true",
        help="remove the selected entry, or all when none is selected",
    )
    exclusive.add_argument(
        "--list", action="store_true", help="show the cached entries (never the tokens)"
    )
    # What a refresh ahead starts, detached (shim.background); not for people.
    exclusive.add_argument(FLAG, action="store_true", help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; the exit code."""
    args = sys.argv[1:] if argv is None else list(argv)
    if args[:1] == ["kubeconfig"]:
        from shim import kubeconfig

        log.set_verbose(os.environ.get("EKS_SHIM_DEBUG") == "1")
        return guarded(lambda: kubeconfig.main(args[1:]), log.is_verbose())
    options_argv, _ = split_command(args)
    verbose = os.environ.get("EKS_SHIM_DEBUG") == "1" or any(
        arg in ("-v", "--verbose") for arg in options_argv
    )
    log.set_verbose(verbose)
    return guarded(lambda: run(args, os.environ), verbose)


def guarded(action: Callable[[], int], verbose: bool) -> int:
    """The error boundary: expected errors become one line and an exit code, Ctrl-C 130."""
    try:
        return action()
    except ShimError as error:
        log.error(error.message)
        return error.exit_code
    except Terminated as signalled:
        return signalled.exit_code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as error:
        if verbose:
            import traceback

            traceback.print_exc()
        log.error(f"unexpected {type(error).__name__}: {error} (run with -v for details)")
        return EXIT_FAILURE


def run(argv: list[str], environ: Mapping[str, str]) -> int:
    """Parse the options and do what they ask."""
    options_argv, command = split_command(argv)
    parsed = build_parser().parse_args(options_argv)
    values = option_values(parsed)
    if parsed.list:
        return list_entries(cache_dir_setting(values, environ))
    if parsed.purge and not has_selection(values, command):
        return purge(None, cache_dir_setting(values, environ))
    request = resolve(values, command, environ)
    if parsed.purge:
        return purge(request, request.cache_dir)
    api_version = requested_api_version(environ)
    if parsed.background_refresh:
        return refresh_in_background(request, api_version)
    write_credential(get_credential(request, api_version, argv, force=parsed.refresh))
    return 0


def option_values(parsed: argparse.Namespace) -> dict[str, str]:
    """The value options argparse found, in the form `shim.options.scan` gives them."""
    values = {}
    for option in VALUE_OPTIONS:
        value = getattr(parsed, option.dest)
        if value is not None:
            values[option.dest] = REPEAT_SEPARATOR.join(value) if option.repeatable else value
    return values


def purge(request: Request | None, cache_dir: str) -> int:
    """Remove the selected entries (any apiVersion and environment), or all of them."""
    left = 0
    if request is None:
        removed, left = store.purge_all(cache_dir)
    else:
        removed = 0
        for key, meta in _entries_with_meta(cache_dir):
            same_profile = request.profile is None or meta.get("profile") == request.profile
            if meta.get("command") == request.command and same_profile:
                removed += store.remove_entry(store.KeyFiles(cache_dir, key))
    where = printable(cache_dir)
    print(f"removed {removed} cache {'entry' if removed == 1 else 'entries'} from {where}")
    if left:
        log.warn(
            f"left alone {left} file{'s' if left > 1 else ''} in {where} the shim did not write"
        )
    return 0


def list_entries(cache_dir: str) -> int:
    """Print one line per entry: what it is for, and until when. Never the token."""
    rows = [("CLUSTER/COMMAND", "PROFILE", "REGION", "API", "EXPIRES", "LEFT")]
    now = time.time()
    for key, entry in store.list_entries(cache_dir):
        if entry is None:
            rows.append((f"(damaged entry {key[:12]}...)", "-", "-", "-", "-", "-"))
            continue
        meta = decode_meta(entry.meta)
        command = meta.get("command")
        what = meta.get("cluster") or (
            " ".join(str(arg) for arg in command) if isinstance(command, list) else "?"
        )
        rows.append(
            (
                printable(what),
                printable(meta.get("profile") or "-"),
                printable(meta.get("region") or "-"),
                printable(meta.get("apiVersion") or "-").rpartition("/")[2],
                time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(entry.expiry)),
                f"{entry.expiry - now:.0f}s",
            )
        )
    widths = [max(len(str(row[column])) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())
    return 0


def _entries_with_meta(cache_dir: str) -> list[tuple[str, dict[str, object]]]:
    return [(key, decode_meta(entry.meta)) for key, entry in store.list_entries(cache_dir) if entry]
