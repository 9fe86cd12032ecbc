"""The edit itself: one kubeconfig user's exec section wrapped in the shim, or unwrapped.

Works on ruamel.yaml's round-trip nodes in place (lists are edited, not replaced),
so comments and layout around the section survive. What unwrap needs and cannot
read back from the wrapped args (was there an `args` key, what was
`provideClusterInfo`, what wrap added to kubectl's allowlist) is kept in the user's
`extensions`, kubeconfig's place for tools' own data, which kubectl preserves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shim import LAUNCHERS
from shim.backends import program_name, recognise
from shim.process import describe

EXTENSION = "eks-token-shim"


@dataclass(frozen=True)
class Allowed:
    """An entry wrap added to kubectl's allowlist: the kuberc file, and the program named."""

    kuberc: str
    entry: str


@dataclass(frozen=True)
class Change:
    """One user's exec command line before and after, and the allowlist entry wrap added
    for it (unwrap's Change: the one its record names)."""

    before: str
    after: str
    allowed: Allowed | None = None


def _argv(section: Any) -> list[str]:
    return [str(section.get("command") or ""), *(str(arg) for arg in section.get("args") or [])]


def exec_section(user_item: Any) -> Any:
    """The `user.exec` mapping of a kubeconfig users[] item, or None."""
    user: Any = user_item.get("user") if hasattr(user_item, "get") else None
    section: Any = user.get("exec") if hasattr(user, "get") else None
    return section if hasattr(section, "get") else None


def wrapped(section: Any) -> bool:
    """Whether an exec section already runs the shim in generic mode."""
    if not hasattr(section, "get"):
        return False
    runs_shim = program_name(str(section.get("command") or "")) in LAUNCHERS
    return runs_shim and list(section.get("args") or [])[:1] == ["--"]


def wraps_eks(section: Any) -> bool:
    """Whether an exec section runs a backend of the table (`aws ... eks get-token`,
    `aws-iam-authenticator token`)."""
    if not hasattr(section, "get") or wrapped(section):
        return False
    return recognise(_argv(section)) is not None


def wrap_exec(user_item: Any, shim: str, allowed: Allowed | None = None) -> Change | None:
    """Make the user's exec section run `shim -- <original argv>`; None when nothing to do.
    `allowed` is what wrap added to kubectl's allowlist, kept for unwrap."""
    user, section = user_item["user"], exec_section(user_item)
    if section is None or not section.get("command") or wrapped(section):
        return None
    before = _argv(section)
    record: dict[str, object] = {"hadArgs": "args" in section}
    if allowed is not None:
        record.update(kuberc=allowed.kuberc, kubercEntry=allowed.entry)
    if "provideClusterInfo" in section:
        record["provideClusterInfo"] = section["provideClusterInfo"]
    if section.get("args") is None:
        section["args"] = []
    section["args"].insert(0, section["command"])
    section["args"].insert(0, "--")
    section["command"] = shim
    # The shim needs the server and CA to check a token kubectl reports as rejected.
    section["provideClusterInfo"] = True
    extensions = user.setdefault("extensions", [])
    extensions.append({"name": EXTENSION, "extension": record})
    return Change(describe(before), describe(_argv(section)), allowed)


def unwrap_exec(user_item: Any) -> Change | None:
    """Give the user's exec section back its original command, args and provideClusterInfo."""
    user, section = user_item.get("user"), exec_section(user_item)
    if section is None or not wrapped(section) or len(section.get("args") or []) < 2:
        return None
    before = _argv(section)
    record = _pop_extension(user)
    args = section["args"]
    del args[0]  # "--"
    section["command"] = args.pop(0)
    if not args and record is not None and not record.get("hadArgs", True):
        del section["args"]
    if record is not None:
        if "provideClusterInfo" in record:
            section["provideClusterInfo"] = record["provideClusterInfo"]
        else:
            section.pop("provideClusterInfo", None)
    return Change(describe(before), describe(_argv(section)), _allowed_in(record))


def _allowed_in(record: Any) -> Allowed | None:
    """The allowlist entry a wrap record names, if it names one."""
    if record is None or not record.get("kubercEntry"):
        return None
    return Allowed(str(record["kuberc"]), str(record["kubercEntry"]))


def _pop_extension(user: Any) -> Any:
    extensions = user.get("extensions")
    if not extensions:
        return None
    for at, item in enumerate(extensions):
        if hasattr(item, "get") and item.get("name") == EXTENSION:
            del extensions[at]
            if not extensions:
                del user["extensions"]
            record = item.get("extension")
            return record if hasattr(record, "get") else None
    return None
