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
from shim.kuberc import ALLOW_ALL, ALLOWLIST, DENY_ALL, Kuberc, entry_name
from shim.wrapping import STR, Allowed
from shim.yamltext import Node, Refused, Source, get, is_mapping, is_sequence, text_of


def entry_to_add(
    policy_file: Kuberc | None, commands: list[str], shim: str, environ: Mapping[str, str]
) -> Allowed | None:
    """What wrap must add to kubectl's allowlist so that kubectl runs the shim in front of
    the `commands` it allows today; None when nothing is needed. A DenyAll policy is a
    ShimError: kubectl would not run the shim at all."""
    if policy_file is None or policy_file.policy.type == ALLOW_ALL:
        return None
    policy = policy_file.policy
    if policy.type == DENY_ALL:
        raise ShimError(
            f"{policy_file.path} sets credentialPluginPolicy: DenyAll: kubectl runs no "
            "credential plugin, so it would not run the shim either; nothing was changed"
        )
    allowed = False
    for original in commands:
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


def _allowlist(source: Source) -> Node:
    entries: Node = (
        get(source.root, "credentialPluginAllowlist") if source.root is not None else None
    )
    if not is_sequence(entries):
        raise Refused("its credentialPluginAllowlist is not a list")
    return entries


def add_entry(source: Source, expected: dict[int, Any], program: str) -> None:
    """Append `program` to a kuberc's allowlist, spelt as the file's entries are."""
    entries = _allowlist(source)
    fields = {text_of(key) for item in entries.value if is_mapping(item) for key, _ in item.value}
    field = "command" if "command" in fields and "name" not in fields else "name"
    source.insert_items(entries, len(entries.value), [{field: program}])
    expected[id(entries)].append({field: (STR, program)})


def remove_entry(source: Source, expected: dict[int, Any], program: str) -> bool:
    """Remove the last allowlist entry that names exactly `program`; whether there was one."""
    entries: Node = (
        get(source.root, "credentialPluginAllowlist") if source.root is not None else None
    )
    if not is_sequence(entries):
        return False
    for at in reversed(range(len(entries.value))):
        item = entries.value[at]
        if (
            entry_name(
                {text_of(k): text_of(v) for k, v in item.value} if is_mapping(item) else None
            )
            == program
        ):
            source.remove_items(entries, at, at + 1)
            del expected[id(entries)][at]
            return True
    return False


# The kubeconfig files that rely on an entry wrap added, kept beside the kuberc: wrap
# runs for one file at a time, so only a list can say that another file still needs it.
REGISTRY_SUFFIX = ".eks-token-shim"


def registry_path(kuberc: str) -> str:
    return kuberc + REGISTRY_SUFFIX


def read_registry(kuberc: str) -> list[str] | None:
    """The kubeconfig files whose users rely on the entry wrap added to `kuberc`; None when
    there is no list (wrap added no entry there, or the last user was unwrapped)."""
    try:
        with open(registry_path(kuberc), encoding="utf-8") as file:
            lines = file.read().splitlines()
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise ShimError(f"cannot read {registry_path(kuberc)}: {error}") from None
    return [line for line in lines if line.strip() and not line.startswith("#")]


def registry_text(kuberc: str, entry: str, paths: list[str]) -> bytes:
    header = (
        f"# kubeconfig files whose users run {entry} through the allowlist entry\n"
        f"# `shim kubeconfig wrap` added to {kuberc}: unwrap takes the entry out\n"
        "# once none of them runs it.\n"
    )
    return (header + "".join(f"{path}\n" for path in paths)).encode()


def relies_on_registry(policy_file: Kuberc) -> bool:
    """Whether wrap added an entry to this allowlist before (its list is there)."""
    return policy_file.policy.type == ALLOWLIST and read_registry(policy_file.path) is not None
