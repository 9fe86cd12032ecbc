"""From parsed options and the environment to a Request: which command to run, and how.

Pure: the caller passes the environment in. Both the hot path and the full CLI
resolve requests here, so both derive the same backend argv, and so the same key.
A cache hit imports this module: shim.main states the import diet it keeps.
"""

from __future__ import annotations

from shim.errors import UsageError
from shim.keys import expand_path, identity_files
from shim.options import BY_DEST, POSITIVE_SECONDS, repeated, setting

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from shim.options import Option


class Request:
    """A resolved credential request: the backend argv, its environment and our settings,
    and the shim's own arguments that asked for it (a refresh ahead asks again with them)."""

    __slots__ = (
        "args",
        "cache_dir",
        "command",
        "env",
        "key_env",
        "max_age",
        "mode",
        "refresh_ahead",
        "refresh_before",
        "refresh_wait",
        "timeout",
        "watched",
    )

    def __init__(
        self,
        command: list[str],
        env: dict[str, str],
        cache_dir: str,
        refresh_before: float,
        refresh_ahead: float,
        timeout: float,
        max_age: float,
        key_env: tuple[str, ...],
        mode: str,
        args: list[str],
        watched: tuple[str, ...],
        refresh_wait: float,
    ) -> None:
        self.command = command
        self.env = env
        self.cache_dir = cache_dir
        self.refresh_before = refresh_before
        self.refresh_ahead = refresh_ahead
        self.timeout = timeout
        self.max_age = max_age
        self.key_env = key_env
        self.mode = mode  # "eks": built from -c/-p/-r; "generic": the command after --
        self.args = args
        self.refresh_wait = refresh_wait  # how long a still-valid token waits for its refresh
        self.watched = watched  # the identity files (shim.keys.identity_files), --key-file's last


def parse_seconds(text: str, what: str, option: Option) -> float:
    """The seconds `text` gives an option of a seconds kind, within its limits; a UsageError
    naming `what` (the option, or its variable) otherwise."""
    try:
        seconds = float(text)
    except ValueError:
        raise UsageError(f"{what} takes a number of seconds, not {text!r}") from None
    positive = option.kind == POSITIVE_SECONDS
    if not (seconds > 0 if positive else seconds >= 0) or not seconds <= option.maximum:
        bound = "more than zero" if positive else "zero"
        raise UsageError(f"{what} takes {bound} to {option.maximum:.0f} seconds, not {text!r}")
    return seconds


def cache_dir_setting(values: Mapping[str, str], environ: Mapping[str, str]) -> str:
    """The cache directory: --cache-dir, else EKS_SHIM_CACHE_DIR, else the default; absolute
    (a relative one is taken from the current directory)."""
    cache_dir = setting(values, environ, "cache_dir")
    if not cache_dir:
        raise UsageError("--cache-dir takes a directory, not an empty string")
    # (A relative dir, and the current directory is gone: it names nothing, so every use
    # fails as a missing dir does: no cache, a warning.)
    return expand_path(cache_dir, environ)


def seconds_setting(values: Mapping[str, str], environ: Mapping[str, str], dest: str) -> float:
    """A number of seconds: the option, else its EKS_SHIM_* variable, else its default."""
    option = BY_DEST[dest]
    what = option.flags[0] + (f" ({option.env})" if option.env else "")
    return parse_seconds(setting(values, environ, dest), what, option)


def _backend_command(
    values: Mapping[str, str], command: list[str] | None, environ: Mapping[str, str]
) -> list[str]:
    """The argv to run: COMMAND verbatim in generic mode, else the one the backend takes."""
    if command is not None:
        names = ("cluster", "profile", "region", "role_arn", "backend")
        given = [name for name in names if name in values]
        if given:
            flags = ", ".join("--" + name.replace("_", "-") for name in given)
            raise UsageError(f"{flags} select the EKS command; with -- the command is run as given")
        if not command:
            raise UsageError("nothing after --: give the command to wrap")
        return command
    # Only EKS mode needs the backend table: a wrapped kubeconfig's hit does not load it.
    from shim.backends import BACKENDS

    backend = BACKENDS.get(setting(values, environ, "backend"))
    if backend is None:
        name, known = setting(values, environ, "backend"), ", ".join(BACKENDS)
        raise UsageError(f"unknown backend {name!r}: choose one of {known}")
    cluster = values.get("cluster")
    if not cluster:
        raise UsageError("no cluster selected: give -c/--cluster NAME, or -- COMMAND [ARG...]")
    for dest in ("cluster", "region", "role_arn"):
        value = values.get(dest, "")
        if value.startswith("-"):  # (`--cluster=--role`: argparse takes it, the backend would not)
            flag = BY_DEST[dest].flags[-1]
            raise UsageError(
                f"{flag} takes a name, not {value!r}: {backend.name} would read an option"
            )
    return backend.argv(cluster, values.get("region"), values.get("role_arn"))


def resolve(
    values: Mapping[str, str],
    command: list[str] | None,
    environ: Mapping[str, str],
    args: Sequence[str],
) -> Request:
    """Turn option values into a Request, or a UsageError that says what is wrong. `args`
    are the shim's own arguments that gave them."""
    refresh_before = seconds_setting(values, environ, "refresh_before")
    refresh_ahead = seconds_setting(values, environ, "refresh_ahead")
    max_age = seconds_setting(values, environ, "max_age")
    timeout = seconds_setting(values, environ, "timeout")
    refresh_wait = seconds_setting(values, environ, "refresh_wait")
    key_env = repeated(values, environ, "key_env")
    if any(not name or "=" in name for name in key_env):
        raise UsageError("--key-env takes the name of an environment variable")
    key_files = repeated(values, environ, "key_file")
    if not all(key_files):
        raise UsageError("--key-file takes a path, not an empty string")
    argv = _backend_command(values, command, environ)
    env = dict(environ)
    if values.get("profile"):
        env["AWS_PROFILE"] = values["profile"]
    return Request(
        command=argv,
        env=env,
        cache_dir=cache_dir_setting(values, environ),
        refresh_before=refresh_before,
        refresh_ahead=refresh_ahead,
        timeout=timeout,
        max_age=max_age,
        key_env=tuple(sorted(set(key_env))),
        mode="generic" if command is not None else "eks",
        args=list(args),
        watched=identity_files(env, key_files),
        refresh_wait=refresh_wait,
    )
