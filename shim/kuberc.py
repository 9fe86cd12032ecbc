"""kubectl's credential-plugin policy (kuberc, kubectl >= 1.35), which the shim never widens.

kubectl reads `credentialPluginPolicy` and `credentialPluginAllowlist` from its
kuberc (`$KUBERC`, else `~/.kube/kuberc`; `KUBECTL_KUBERC=false` turns kuberc off)
and runs an exec plugin only as the policy allows. Once the shim is allowed, it
would run whatever a kubeconfig puts after `--`: so before it runs a backend, the
shim asks the same policy about the backend, the way client-go does
(tools/clientcmd pluginpolicy): an entry matches the command as written, or after
both are looked up on PATH (Go's exec.LookPath: no symlinks resolved, no globbing).
The backend then runs by the path that was checked. kubectl's `--kuberc` flag is
invisible to plugins: only the variable and the default path count.

Read only on a miss, never on a hit; a kuberc that does not mention the policy is
not even parsed as YAML (ruamel.yaml costs ~30 ms to import). Editing the allowlist
for `shim kubeconfig wrap` is shim.allowlist's.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from shim.errors import BackendError, ShimError, has_directory, not_found
from shim.files import open_regular, read_all

ALLOW_ALL, DENY_ALL, ALLOWLIST = "AllowAll", "DenyAll", "Allowlist"
ENTRY_FIELDS = ("name", "command")  # kubectl 1.35 knows `name`; 1.36 renames it `command`


class PolicyError(ShimError):
    """kubectl's credential-plugin policy does not let the shim run this backend."""


class Policy(NamedTuple):  # (not a dataclass: see shim.flow.Answer)
    """A kuberc's credential-plugin policy: its file, its type, its allowlist entries."""

    path: str
    type: str  # ALLOW_ALL, DENY_ALL or ALLOWLIST
    entries: list[str]

    def resolve(self, argv: Sequence[str], environ: Mapping[str, str]) -> list[str]:
        """`argv` with its command as it must run; PolicyError when the policy forbids it.
        Under every policy a command without a slash is looked up as kubectl looks it up
        (look_path): never found through an empty PATH entry, `.` or a relative one."""
        command = argv[0]
        if self.type == ALLOW_ALL:
            if has_directory(command):
                return list(argv)
            return [program(command, environ), *argv[1:]]
        if self.type == DENY_ALL:
            raise PolicyError(
                f"{self.path} sets credentialPluginPolicy: DenyAll, so kubectl runs no "
                f"credential plugin and neither does the shim: {command} was not run"
            )
        resolved = look_path(command, environ)
        if not self._matches(command, resolved, environ):
            raise PolicyError(
                f"{self.path} allows only the credential plugins in credentialPluginAllowlist, "
                f"and {command} is not one of them: it was not run",
                hint=f"to allow it, add `- name: {resolved or command}` "
                "to credentialPluginAllowlist there",
            )
        if resolved is None:  # allowed as written, but not on PATH, or only relative to the
            return [program(command, environ), *argv[1:]]  # current directory: not run
        return [resolved, *argv[1:]]

    def allows(self, command: str, environ: Mapping[str, str]) -> bool:
        """Whether the allowlist allows `command` (client-go's Checker.checkAllowlist)."""
        return self._matches(command, look_path(command, environ), environ)

    def _matches(self, command: str, resolved: str | None, environ: Mapping[str, str]) -> bool:
        # As written, or the same program as an entry once both are found on PATH.
        return _clean(command) in self.entries or (
            resolved is not None
            and any(look_path(entry, environ) == resolved for entry in self.entries)
        )


def kuberc_path(environ: Mapping[str, str]) -> str | None:
    """The kuberc kubectl reads for plugins; None when kuberc is turned off."""
    if environ.get("KUBECTL_KUBERC", "").lower() == "false":
        return None
    explicit = environ.get("KUBERC")
    if explicit:
        return explicit
    return os.path.join(kube_home(environ), ".kube", "kuberc")


def kube_home(environ: Mapping[str, str]) -> str:
    """The directory kubectl finds `.kube` in (client-go's homedir.HomeDir): HOME (or the
    account's home without it); on Windows, windows_home's choice."""
    if sys.platform == "win32":
        return windows_home(environ)
    return environ.get("HOME") or os.path.expanduser("~")


def windows_home(environ: Mapping[str, str]) -> str:
    """client-go's home directory on Windows: the first of HOME, HOMEDRIVE+HOMEPATH and
    USERPROFILE that holds `.kube\\config`; else the first of HOME, USERPROFILE and
    HOMEDRIVE+HOMEPATH that is a writable directory; else the first that exists; else
    the first set (Git Bash sets HOME, Windows the other two)."""
    home, profile = environ.get("HOME", ""), environ.get("USERPROFILE", "")
    drive, path = environ.get("HOMEDRIVE", ""), environ.get("HOMEPATH", "")
    drive_path = drive + path if drive and path else ""
    for place in (home, drive_path, profile):
        if place and os.path.exists(os.path.join(place, ".kube", "config")):
            return place
    candidates = [place for place in (home, profile, drive_path) if place]
    for place in candidates:
        if os.path.isdir(place) and os.access(place, os.W_OK):
            return place
    existing = [place for place in candidates if os.path.exists(place)]
    return (existing or candidates or [os.path.expanduser("~")])[0]


def read_policy(environ: Mapping[str, str]) -> Policy:
    """The policy in force; AllowAll without a kuberc. A kuberc that cannot be read or
    makes no sense is a PolicyError: the shim fails closed, never wider than kubectl."""
    path = kuberc_path(environ)
    found = load_kuberc(path)
    return found.policy if found is not None else Policy(path or "", ALLOW_ALL, [])


def _read(path: str) -> bytes | None:
    """The kuberc's bytes; None when there is none. A FIFO or a directory there is a
    refusal, never a wait; a symlink is followed, as kubectl follows it."""
    try:
        fd, _ = open_regular(path, os.O_RDONLY, follow=True)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise PolicyError(
            f"cannot read kubectl's kuberc {path}: {error.strerror or error}"
        ) from None
    try:
        return read_all(fd)
    finally:
        os.close(fd)


def load(text: bytes, path: str) -> Any:
    """The kuberc document (round-trip nodes, so that wrap can edit it in place)."""
    from shim.yamltext import YamlError, parse

    try:
        document = parse(text)
    except YamlError as error:
        raise PolicyError(f"kubectl's kuberc {path} is not valid YAML ({error.message})") from None
    return document if document is not None else {}


def policy_of(document: Any, path: str) -> Policy:
    """The policy a parsed kuberc sets, validated as client-go validates it."""
    if not hasattr(document, "get"):
        raise PolicyError(f"kubectl's kuberc {path} is not a mapping")
    policy_type = str(document.get("credentialPluginPolicy") or "")
    raw = document.get("credentialPluginAllowlist")
    entries = [entry_name(item) for item in raw or []]
    problem = _problem(policy_type, entries, listed=raw is not None)
    if problem is not None:
        raise PolicyError(f"kubectl's kuberc {path}: {problem}")
    return Policy(path, policy_type or ALLOW_ALL, entries)


def entry_name(item: Any) -> str:
    """An allowlist entry's program: `command` (kubectl >= 1.36), else `name` (1.35)."""
    if not hasattr(item, "get"):
        return ""
    for field in reversed(ENTRY_FIELDS):
        if item.get(field):
            return str(item[field])
    return ""


def _problem(policy_type: str, entries: list[str], listed: bool) -> str | None:
    # client-go's pluginpolicy.Validate: a policy that makes no sense is an error, so
    # that a misspelt field never leaves a policy that names nothing.
    if policy_type in ("", ALLOW_ALL, DENY_ALL):
        return f"policy {policy_type!r} with an allowlist" if listed else None
    if policy_type != ALLOWLIST:
        return f"unknown credentialPluginPolicy {policy_type!r}"
    if not entries:
        return "credentialPluginPolicy: Allowlist with no credentialPluginAllowlist entries"
    for entry in entries:
        if _clean(entry) != entry:  # ("" cleans to ".")
            return f"allowlist entry {entry!r} is empty or not a normalized path"
    return None


def look_path(name: str, environ: Mapping[str, str]) -> str | None:
    """Go's exec.LookPath, made absolute as client-go compares paths (filepath.Abs): a name
    with a slash from the current directory, else the first executable on PATH. On
    Windows, Go's Windows LookPath (shim.windows.look_path)."""
    if sys.platform == "win32":
        return _look_path_on_windows(name, environ)
    if "/" in name:
        try:
            path = _clean(os.path.join(os.getcwd(), name))  # (a name that is absolute stays)
        except OSError:  # the current directory is gone
            return None
        return path if _executable(path) else None
    candidate = _first_on_path(name, environ)
    if candidate is None or os.path.isabs(candidate):
        return candidate
    # Go >= 1.19 refuses a match relative to the current directory (exec.ErrDot), unless
    # GODEBUG says execerrdot=0; client-go then runs it made absolute.
    from shim.windows import dot_allowed_by  # (Go parses GODEBUG alike everywhere)

    if not dot_allowed_by(environ.get("GODEBUG", "")):
        return None
    try:
        return _clean(os.path.join(os.getcwd(), candidate))
    except OSError:  # the current directory is gone: nothing relative to it runs
        return None


def _look_path_on_windows(name: str, environ: Mapping[str, str]) -> str | None:
    from shim import windows

    try:
        found = windows.look_path(name, environ)
    except FileNotFoundError:  # (a DotError too: kubectl runs no such match)
        return None
    return found if windows.is_abs(found) else windows.absolute(found)


def _first_on_path(name: str, environ: Mapping[str, str]) -> str | None:
    """The first executable `name` in PATH's directories, as filepath.Join spells it
    (cleaned: an empty entry gives `name` itself, relative); None when there is none."""
    for directory in environ.get("PATH", "").split(os.pathsep):
        candidate = _clean(os.path.join(directory, name))  # filepath.Join cleans
        if _executable(candidate):
            return candidate
    return None


def program(name: str, environ: Mapping[str, str]) -> str:
    """The program kubectl runs for the command `name`: look_path's, made absolute; a
    BackendError (127) when there is none. A name with a slash is run as it is written."""
    if sys.platform == "win32":
        return _program_on_windows(name, environ)
    resolved = name if has_directory(name) else look_path(name, environ)
    if resolved is not None:
        return resolved
    relative = _first_on_path(name, environ)
    if relative is not None:  # (look_path refused it: it is relative to the current directory)
        shown = relative if "/" in relative else "./" + relative
        raise _refused_as_relative(name, f"{shown}, through a PATH entry")
    raise not_found(name)


def _refused_as_relative(name: str, match: str) -> BackendError:
    """Not found, as kubectl says it when the only match is relative to the current
    directory (`match` says where)."""
    error = not_found(name)
    error.message = (
        f"{name}: command not found: the only match is {match} relative to the current "
        "directory, which kubectl does not run either (Go's exec.ErrDot)"
    )
    return error


def _program_on_windows(name: str, environ: Mapping[str, str]) -> str:
    from shim import windows

    try:
        found = windows.look_path(name, environ)
    except windows.DotError as error:
        shown = error.found if has_directory(error.found) else ".\\" + error.found
        raise _refused_as_relative(name, shown) from None
    except FileNotFoundError:
        raise not_found(name) from None
    return found if windows.is_abs(found) else windows.absolute(found)


def _executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def _clean(path: str) -> str:
    # Go's filepath.Clean, where it differs from os.path.normpath: a leading "//" is one
    # slash (POSIX lets "//" mean something else; Go does not).
    cleaned = os.path.normpath(path)
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned


class Kuberc(NamedTuple):
    """A kuberc that sets a credential-plugin policy: its path, its document (round-trip
    nodes, for shim.allowlist to edit in place) and its policy."""

    path: str
    document: Any
    policy: Policy


def load_kuberc(path: str | None) -> Kuberc | None:
    """The kuberc at `path` when it mentions a credential-plugin policy, else None: a file
    that does not is not even parsed (no YAML parser on such a miss)."""
    text = _read(path) if path is not None else None
    if path is None or text is None or b"credentialPlugin" not in text:
        return None
    document = load(text, path)
    return Kuberc(path, document, policy_of(document, path))
