"""The backend table: every fact about a backend command, in one place, as data.

Each backend knows how to build its argv from an EKS selection, how to recognise
its argv (in a kubeconfig exec section, for `shim kubeconfig wrap`; in a cache
entry, for --list and --purge), and how to read cluster, region, role and profile
back out of an argv and the environment it runs with. Selection, wrap/unwrap,
--list, --purge and the entry metadata all ask this module. Adding a backend is
one entry in BACKENDS. (A cache hit in EKS mode imports this module: shim.main states
the import diet it keeps.)
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


class Selection:
    """What a backend argv and its environment select: cluster, region, role, profile."""

    __slots__ = ("cluster", "profile", "region", "role_arn")

    def __init__(
        self,
        cluster: str | None,
        region: str | None = None,
        role_arn: str | None = None,
        profile: str | None = None,
    ) -> None:
        self.cluster = cluster
        self.region = region
        self.role_arn = role_arn
        self.profile = profile


class Backend:
    """One backend command: its program, the words that make it print a token, its flags."""

    __slots__ = (
        "cluster_flags",
        "extra_args",
        "name",
        "options_first",
        "profile_flags",
        "program",
        "region_flags",
        "role_flags",
        "words",
    )

    def __init__(
        self,
        name: str,
        words: tuple[str, ...],
        cluster_flags: tuple[str, ...],
        region_flags: tuple[str, ...],
        role_flags: tuple[str, ...],
        profile_flags: tuple[str, ...] = (),
        options_first: bool = False,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.name = name  # also its program, as looked up on PATH, and the -b value
        self.program = name
        self.words = words  # the subcommand, e.g. `eks get-token`
        self.cluster_flags = cluster_flags  # the first one is the one we write
        self.region_flags = region_flags
        self.role_flags = role_flags
        self.profile_flags = profile_flags  # a profile on the command line, besides AWS_PROFILE
        # Global options may come before the words (and the region is written there).
        self.options_first = options_first
        self.extra_args = extra_args  # written at the end of every command we build

    def argv(self, cluster: str, region: str | None, role_arn: str | None) -> list[str]:
        """The command that makes a token for `cluster`, as this backend spells it."""
        region_args = [self.region_flags[0], region] if region else []
        role_args = [self.role_flags[0], role_arn] if role_arn else []
        first, last = (region_args, []) if self.options_first else ([], region_args)
        return [
            self.program,
            *first,
            *self.words,
            self.cluster_flags[0],
            cluster,
            *role_args,
            *last,
            *self.extra_args,
        ]

    def runs(self, argv: Sequence[str]) -> bool:
        """Whether `argv` runs this backend's token command."""
        if not argv or program_name(argv[0]) != self.program:
            return False
        args, size = list(argv[1:]), len(self.words)
        starts = range(len(args)) if self.options_first else range(1)
        return any(args[at : at + size] == list(self.words) for at in starts)

    def selection(self, argv: Sequence[str], env: Mapping[str, str]) -> Selection:
        """What `argv`, run with `env`, selects (None where it does not say)."""
        profile = _flag_value(argv, self.profile_flags)
        return Selection(
            cluster=_flag_value(argv, self.cluster_flags),
            region=_flag_value(argv, self.region_flags)
            or env.get("AWS_REGION")
            or env.get("AWS_DEFAULT_REGION"),
            role_arn=_flag_value(argv, self.role_flags),
            profile=profile or env.get("AWS_PROFILE") or env.get("AWS_DEFAULT_PROFILE"),
        )


BACKENDS = {
    backend.name: backend
    for backend in (
        Backend(
            "aws",
            words=("eks", "get-token"),
            cluster_flags=("--cluster-name", "--cluster-id"),
            region_flags=("--region",),
            role_flags=("--role-arn",),
            profile_flags=("--profile",),
            options_first=True,  # aws --region R --profile P eks get-token ...
            # A config's `output = text` or `table` applies to get-token too (aws-cli #7719,
            # https://github.com/aws/aws-cli/issues/7719): `aws eks update-kubeconfig`
            # writes this flag for the same reason.
            extra_args=("--output", "json"),
        ),
        Backend(
            "aws-iam-authenticator",
            words=("token",),
            cluster_flags=("-i", "--cluster-id"),
            region_flags=("--region",),
            role_flags=("-r", "--role"),
        ),
    )
}
DEFAULT = "aws"


def recognise(argv: Sequence[str]) -> Backend | None:
    """The backend whose token command `argv` is, if any."""
    for backend in BACKENDS.values():
        if backend.runs(argv):
            return backend
    return None


def output_hint(argv: Sequence[str]) -> str:
    """What fixes an AWS CLI command that printed no ExecCredential because the user's
    config sets another `output` (text, table, yaml): "" when that cannot be the cause."""
    backend = recognise(argv)
    if backend is None or backend.name != "aws":
        return ""
    if any(arg == "--output" or arg.startswith("--output=") for arg in argv):
        return ""
    return (
        "an AWS CLI config with `output = text` (or table, yaml) applies to get-token too: "
        "add `--output json` to these args in kubeconfig"
    )


def selection_of(argv: Sequence[str], env: Mapping[str, str]) -> Selection | None:
    """What a backend argv selects, or None when `argv` is no backend we know."""
    backend = recognise(argv)
    return backend.selection(argv, env) if backend is not None else None


def program_name(command: str) -> str:
    """A command's program name: its base name, without a Windows `.exe`."""
    base = command.replace("\\", "/").rpartition("/")[2]
    return base[:-4] if base.lower().endswith(".exe") else base


def _flag_value(argv: Sequence[str], flags: tuple[str, ...]) -> str | None:
    """The value of the last of `flags` in `argv` (`--flag VALUE` or `--flag=VALUE`)."""
    found = None
    for at, arg in enumerate(argv):
        name, equals, value = arg.partition("=")
        if equals and name in flags:
            found = value
        elif arg in flags and at + 1 < len(argv):
            found = argv[at + 1]
    return found


# What the AWS CLI (v1, v2) and the Go SDK (aws-iam-authenticator) print when the SSO
# session behind a profile has expired or was never started, lower case.
_SSO_SIGNS = (
    "error loading sso token",
    "sso session associated with this profile has expired",
    "token has expired and refresh failed",
    "the sso session has expired",
    "ssoproviderinvalidtoken",
)


def failure_hint(argv: Sequence[str], env: Mapping[str, str], stderr: bytes) -> str:
    """The command that fixes a backend failure, judged from what it printed; "" if unknown.

    GUI front ends show users only the plugin's stderr: this line is all they get.
    """
    backend = recognise(argv)
    if backend is None and program_name(argv[0] if argv else "") != "aws":
        return ""
    text = stderr.decode("utf-8", "replace").lower()
    if not any(sign in text for sign in _SSO_SIGNS):
        return ""
    selected = (backend or BACKENDS[DEFAULT]).selection(argv, env)
    login = "aws sso login" + (f" --profile {_quote(selected.profile)}" if selected.profile else "")
    return f"the AWS SSO session has expired or was never started: run `{login}`"


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)
