"""The command-line options, in one table that both parsers read.

Each option's flags, environment variable, default, kind, limits and help live
here, and nowhere else: `cli` builds its argparse parser from this table, `request`
reads defaults, variables and limits from it, and the hot path (`main`) reads a
plain credential request with `scan`, which needs no argparse. `scan` answers None
whenever it is not sure, and the full CLI then decides, so the two parsers can
never disagree about a request the hot path serves. A cache hit imports this module:
shim.main states the import diet it keeps.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

# Values of a repeatable option, joined: no argument or variable can hold a NUL.
REPEAT_SEPARATOR = "\0"
DEBUG_ENV = "EKS_SHIM_DEBUG"  # =1 works as -v, wherever the shim runs (kubeconfig's env)

# The kinds of value an option takes.
TEXT = "text"
SECONDS = "seconds"  # zero to `maximum` seconds
POSITIVE_SECONDS = "positive seconds"  # more than zero, to `maximum` seconds
ENV_NAME = "environment variable name"
# poll(2) takes an int of milliseconds: a day is far beyond any backend, and far below that.
MAX_TIMEOUT = 86400.0
MAX_SECONDS = 366 * 86400.0  # refresh windows and ages: a year covers any token


class Option:
    """One option that takes a value (a class with __slots__: see shim.main)."""

    __slots__ = (
        "default",
        "dest",
        "env",
        "flags",
        "help",
        "kind",
        "maximum",
        "metavar",
        "repeatable",
    )

    def __init__(
        self,
        flags: tuple[str, ...],
        dest: str,
        metavar: str,
        help: str,
        env: str = "",
        default: str = "",
        kind: str = TEXT,
        maximum: float = MAX_SECONDS,
        repeatable: bool = False,
    ) -> None:
        self.flags = flags
        self.dest = dest
        self.metavar = metavar
        self.help = help
        self.env = env
        self.default = default
        self.kind = kind
        self.maximum = maximum  # for the seconds kinds
        self.repeatable = repeatable  # each value counts, not only the last


# Selection: which EKS credential to get. With `-- COMMAND` none of them may be given.
SELECTION = (
    Option(("-c", "--cluster"), "cluster", "NAME", "EKS cluster name (required in EKS mode)"),
    Option(
        ("-p", "--profile"), "profile", "NAME", "AWS profile, given to the backend as AWS_PROFILE"
    ),
    Option(("-r", "--region"), "region", "REGION", "AWS region, passed to the backend as --region"),
    Option(("--role-arn",), "role_arn", "ARN", "IAM role the backend assumes for the token"),
    Option(
        ("-b", "--backend"),
        "backend",
        "{aws,aws-iam-authenticator}",
        "which command makes the token",
        env="EKS_SHIM_BACKEND",
        default="aws",
    ),
)

SETTINGS = (
    Option(
        ("--cache-dir",),
        "cache_dir",
        "DIR",
        "where entries live",
        env="EKS_SHIM_CACHE_DIR",
        default="~/.kube/cache/eks-token-shim",
    ),
    Option(
        ("--refresh-before",),
        "refresh_before",
        "SEC",
        "fetch a new token when fewer than SEC seconds of validity remain",
        env="EKS_SHIM_REFRESH_BEFORE",
        default="60",
        kind=SECONDS,
    ),
    Option(
        ("--refresh-ahead",),
        "refresh_ahead",
        "SEC",
        "with fewer than SEC seconds left, serve the cached token and refresh it in the "
        "background (0: never)",
        env="EKS_SHIM_REFRESH_AHEAD",
        default="300",
        kind=SECONDS,
    ),
    Option(
        ("--max-age",),
        "max_age",
        "SEC",
        "never serve an entry longer than SEC seconds after it was fetched, whatever its expiry",
        env="EKS_SHIM_MAX_AGE",
        default="3600",
        kind=SECONDS,
    ),
    Option(
        ("--refresh-wait",),
        "refresh_wait",
        "SEC",
        "with a cached token still valid for longer than SEC but due for its refresh, wait at "
        "most SEC seconds for the backend (or another shim's fetch), then serve the cached token "
        "and refresh it in the background",
        env="EKS_SHIM_REFRESH_WAIT",
        default="5",
        kind=SECONDS,
        maximum=MAX_TIMEOUT,
    ),
    Option(
        ("--timeout",),
        "timeout",
        "SEC",
        "the whole call's deadline: lock wait, backend, token check",
        default="60",
        kind=POSITIVE_SECONDS,
        maximum=MAX_TIMEOUT,
    ),
    Option(
        ("--key-env",),
        "key_env",
        "NAME",
        "also key the cache on this environment variable (repeatable)",
        kind=ENV_NAME,
        repeatable=True,
    ),
    Option(
        ("--key-file",),
        "key_file",
        "PATH",
        "also key the cache on this file: when it changes in any way, the next call fetches "
        f"(repeatable; the variable holds paths separated by {os.pathsep!r})",
        env="EKS_SHIM_KEY_FILE",
        repeatable=True,
    ),
)

VALUE_OPTIONS = SELECTION + SETTINGS
BY_DEST = {option.dest: option for option in VALUE_OPTIONS}
_DEST_BY_FLAG = {flag: option.dest for option in VALUE_OPTIONS for flag in option.flags}


def split_command(argv: Sequence[str]) -> tuple[list[str], list[str] | None]:
    """Split `OPTIONS -- COMMAND...` at the first `--`; no `--` gives a None command."""
    if "--" not in argv:
        return list(argv), None
    at = list(argv).index("--")
    return list(argv[:at]), list(argv[at + 1 :])


def setting(values: Mapping[str, str], environ: Mapping[str, str], dest: str) -> str:
    """An option's text: the command line, else its variable (when set and not empty), else
    its default."""
    option = BY_DEST[dest]
    if dest in values:
        return values[dest]
    return (environ.get(option.env) if option.env else None) or option.default


def debug_requested(environ: Mapping[str, str]) -> bool:
    """Whether the environment asks for -v (EKS_SHIM_DEBUG=1)."""
    return environ.get(DEBUG_ENV) == "1"


def repeated(values: Mapping[str, str], environ: Mapping[str, str], dest: str) -> list[str]:
    """Every value a repeatable option was given, in order; else those of its variable,
    separated by os.pathsep as in KUBECONFIG (empty ones dropped)."""
    if dest in values:
        return values[dest].split(REPEAT_SEPARATOR)
    env = BY_DEST[dest].env
    text = environ.get(env, "") if env else ""
    return [value for value in text.split(os.pathsep) if value]


def scan(options_argv: Sequence[str]) -> dict[str, str] | None:
    """Read value options only, in their plain forms; None for anything else.

    Flags (`--list`, `-v`, `--help`...), attached short values (`-cNAME`), values
    that look like options and empty values all answer None: the full CLI handles them.
    """
    values: dict[str, str] = {}
    args = iter(options_argv)
    for arg in args:
        name, equals, value = arg.partition("=")
        if not (equals and name.startswith("--")):
            name, value = arg, next(args, "")
        dest = _DEST_BY_FLAG.get(name)
        if dest is None or not value or value.startswith("-"):
            return None
        if dest in values and BY_DEST[dest].repeatable:
            value = values[dest] + REPEAT_SEPARATOR + value
        values[dest] = value  # as argparse: the last one wins, or all with append
    return values
