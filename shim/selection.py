"""From parsed options and the environment to a Request: which command to run, and how.

Pure: the caller passes the environment in. Both the hot path and the full CLI
resolve requests here, so both derive the same backend argv, and so the same key.
"""

from __future__ import annotations

import os.path

from shim.errors import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

BACKENDS = ("aws", "aws-iam-authenticator")
DEFAULT_CACHE_DIR = "~/.kube/cache/eks-token-shim"


class Request:
    """A resolved credential request: the backend argv, its environment and our settings."""

    __slots__ = (
        "cache_dir",
        "cluster",
        "command",
        "env",
        "profile",
        "refresh_ahead",
        "refresh_before",
        "region",
        "timeout",
    )

    def __init__(
        self,
        command: list[str],
        env: dict[str, str],
        cache_dir: str,
        refresh_before: float,
        refresh_ahead: float,
        timeout: float,
        cluster: str | None = None,
        profile: str | None = None,
        region: str | None = None,
    ) -> None:
        self.command = command
        self.env = env
        self.cache_dir = cache_dir
        self.refresh_before = refresh_before
        self.refresh_ahead = refresh_ahead
        self.timeout = timeout
        self.cluster = cluster
        self.profile = profile
        self.region = region


def eks_command(backend: str, cluster: str, region: str | None, role_arn: str | None) -> list[str]:
    """The argv that makes an EKS token with `backend`."""
    if backend == "aws":
        argv = ["aws"] + (["--region", region] if region else [])
        argv += ["eks", "get-token", "--cluster-name", cluster]
        return argv + (["--role-arn", role_arn] if role_arn else [])
    argv = ["aws-iam-authenticator", "token", "-i", cluster]
    argv += ["-r", role_arn] if role_arn else []
    return argv + (["--region", region] if region else [])


def parse_seconds(text: str, what: str, allow_zero: bool) -> float:
    """A non-negative (or positive) finite number of seconds, or a UsageError naming `what`."""
    try:
        seconds = float(text)
    except ValueError:
        raise UsageError(f"{what} takes a number of seconds, not {text!r}") from None
    if not (seconds >= 0 if allow_zero else seconds > 0) or seconds == float("inf"):
        bound = "zero or more" if allow_zero else "more than zero"
        raise UsageError(f"{what} takes {bound} seconds, not {text!r}")
    return seconds


def cache_dir_setting(values: Mapping[str, str], environ: Mapping[str, str]) -> str:
    """The cache directory: --cache-dir, else EKS_SHIM_CACHE_DIR, else the default; absolute."""
    cache_dir = values.get("cache_dir") or environ.get("EKS_SHIM_CACHE_DIR") or DEFAULT_CACHE_DIR
    home = environ.get("HOME")
    if home and (cache_dir == "~" or cache_dir.startswith("~/")):
        cache_dir = home + cache_dir[1:]  # the given environment's HOME, as the shell would
    return os.path.abspath(os.path.expanduser(cache_dir))


def has_selection(values: Mapping[str, str], command: list[str] | None) -> bool:
    """Whether the options select one credential (EKS mode's cluster, or a command)."""
    return command is not None or "cluster" in values


def _seconds_setting(
    values: Mapping[str, str], environ: Mapping[str, str], dest: str, default: str
) -> float:
    """A number of seconds: the option, else its EKS_SHIM_* variable, else `default`."""
    flag, variable = "--" + dest.replace("_", "-"), "EKS_SHIM_" + dest.upper()
    text = values.get(dest) or environ.get(variable) or default
    return parse_seconds(text, f"{flag} ({variable})", allow_zero=True)


def _backend_command(
    values: Mapping[str, str], command: list[str] | None, environ: Mapping[str, str]
) -> list[str]:
    """The argv to run: COMMAND verbatim in generic mode, else the one the backend takes."""
    backend = values.get("backend") or environ.get("EKS_SHIM_BACKEND") or "aws"
    if backend not in BACKENDS:
        raise UsageError(f"unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    if command is not None:
        names = ("cluster", "profile", "region", "role_arn", "backend")
        given = [name for name in names if name in values]
        if given:
            flags = ", ".join("--" + name.replace("_", "-") for name in given)
            raise UsageError(f"{flags} select the EKS command; with -- the command is run as given")
        if not command:
            raise UsageError("nothing after --: give the command to wrap")
        return command
    cluster = values.get("cluster")
    if not cluster:
        raise UsageError("no cluster selected: give -c/--cluster NAME, or -- COMMAND [ARG...]")
    return eks_command(backend, cluster, values.get("region"), values.get("role_arn"))


def resolve(
    values: Mapping[str, str],
    command: list[str] | None,
    environ: Mapping[str, str],
) -> Request:
    """Turn option values into a Request, or a UsageError that says what is wrong."""
    refresh_before = _seconds_setting(values, environ, "refresh_before", "60")
    refresh_ahead = _seconds_setting(values, environ, "refresh_ahead", "300")
    timeout = parse_seconds(values.get("timeout") or "60", "--timeout", allow_zero=False)
    argv = _backend_command(values, command, environ)
    env = dict(environ)
    profile, region = values.get("profile"), values.get("region")
    if profile:
        env["AWS_PROFILE"] = profile
    return Request(
        command=argv,
        env=env,
        cache_dir=cache_dir_setting(values, environ),
        refresh_before=refresh_before,
        refresh_ahead=refresh_ahead,
        timeout=timeout,
        cluster=values.get("cluster"),
        profile=profile or environ.get("AWS_PROFILE") or environ.get("AWS_DEFAULT_PROFILE"),
        region=region or environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION"),
    )
