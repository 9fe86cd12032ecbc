"""kubectl's allowlist kept in step with `shim kubeconfig wrap|unwrap`.

Under an Allowlist policy kubectl runs only the plugins its kuberc names: once a user
runs the shim, the shim must be named too, or kubectl refuses every wrapped context.
wrap adds the shim's entry where kubectl allows the commands it wraps; unwrap removes
the entry wrap added, once no user runs the shim any more. The functions here decide
and edit documents; writing the files and saying what was done is the command's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shim import log
from shim.errors import ShimError
from shim.kuberc import ALLOW_ALL, DENY_ALL, Kuberc, entry_name
from shim.wrapping import Allowed, exec_section, wrapped


def entry_to_add(
    policy_file: Kuberc | None, user_items: list[Any], shim: str, environ: Mapping[str, str]
) -> Allowed | None:
    """What wrap must add to kubectl's allowlist so that kubectl runs the shim in front of
    the commands of `user_items` that it allows today; None when nothing is needed. A
    DenyAll policy is a ShimError: kubectl would not run the shim at all."""
    if policy_file is None or policy_file.policy.type == ALLOW_ALL:
        return None
    policy = policy_file.policy
    if policy.type == DENY_ALL:
        raise ShimError(
            f"{policy_file.path} sets credentialPluginPolicy: DenyAll: kubectl runs no "
            "credential plugin, so it would not run the shim either; nothing was changed"
        )
    allowed = False
    for user_item in user_items:
        section = exec_section(user_item)
        if section is None or wrapped(section) or not section.get("command"):
            continue
        original = str(section["command"])
        if policy.allows(original, environ):
            allowed = True
        else:
            log.warn(
                f"{policy_file.path}'s allowlist does not allow {original}: kubectl refuses "
                "it today, and the shim will refuse to run it too"
            )
    if not allowed or policy.allows(shim, environ):
        return None
    return Allowed(policy_file.path, shim)


def add_entry(document: Any, program: str) -> None:
    """Append `program` to a kuberc's allowlist, spelt as the file's entries are."""
    allowlist = document["credentialPluginAllowlist"]
    fields = {field for item in allowlist if hasattr(item, "get") for field in item}
    field = "command" if "command" in fields and "name" not in fields else "name"
    allowlist.append({field: program})


def remove_entry(document: Any, program: str) -> bool:
    """Remove the last allowlist entry that names exactly `program`; whether there was one."""
    allowlist = document.get("credentialPluginAllowlist") or []
    for at in reversed(range(len(allowlist))):
        if entry_name(allowlist[at]) == program:
            del allowlist[at]
            return True
    return False
