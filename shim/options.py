"""The command-line options, in one table that both parsers read.

`cli` builds its argparse parser from this table; the hot path (`fast`) reads a
plain credential request with `scan`, which needs no argparse (issue #3). `scan`
answers None whenever it is not sure, and the full CLI then decides, so the two
parsers can never disagree about a request the hot path serves.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence


class Option:
    """One option that takes a value."""

    __slots__ = ("dest", "env", "flags", "help", "metavar")

    def __init__(
        self, flags: tuple[str, ...], dest: str, metavar: str, help: str, env: str = ""
    ) -> None:
        self.flags = flags
        self.dest = dest
        self.metavar = metavar
        self.help = help
        self.env = env


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
        "which command makes the token (default: aws)",
        env="EKS_SHIM_BACKEND",
    ),
)

SETTINGS = (
    Option(
        ("--cache-dir",),
        "cache_dir",
        "DIR",
        "where entries live (default: ~/.kube/cache/eks-token-shim)",
        env="EKS_SHIM_CACHE_DIR",
    ),
    Option(
        ("--refresh-before",),
        "refresh_before",
        "SEC",
        "fetch a new token when fewer than SEC seconds of validity remain (default: 60)",
        env="EKS_SHIM_REFRESH_BEFORE",
    ),
    Option(
        ("--refresh-ahead",),
        "refresh_ahead",
        "SEC",
        "with fewer than SEC seconds left, serve the cached token and refresh it in the "
        "background (default: 300; 0: never)",
        env="EKS_SHIM_REFRESH_AHEAD",
    ),
    Option(("--timeout",), "timeout", "SEC", "kill the backend after SEC seconds (default: 60)"),
)

VALUE_OPTIONS = SELECTION + SETTINGS
_DEST_BY_FLAG = {flag: option.dest for option in VALUE_OPTIONS for flag in option.flags}


def split_command(argv: Sequence[str]) -> tuple[list[str], list[str] | None]:
    """Split `OPTIONS -- COMMAND...` at the first `--`; no `--` gives a None command."""
    if "--" not in argv:
        return list(argv), None
    at = list(argv).index("--")
    return list(argv[:at]), list(argv[at + 1 :])


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
        values[dest] = value  # as argparse: the last one wins
    return values
