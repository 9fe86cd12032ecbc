"""`shim kubeconfig wrap|unwrap`: put the shim in front of EKS exec plugins, and take it out.

Which files and users (as kubectl merges $KUBECONFIG), and the plan of an edit: every
user's change and every allowlist entry, decided before anything is written. Nothing
is written unless every file parses; shim.yamlfile writes, and the command prints.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shim import LAUNCHERS, allowlist, kuberc, log, yamlfile
from shim.errors import ShimError
from shim.wrapping import Change, exec_section, unwrap_exec, wrap_exec, wrapped, wraps_eks

DESCRIPTION = (
    "`shim kubeconfig wrap|unwrap`: put the shim in front of EKS exec plugins, and take it out."
)


@dataclass(frozen=True)
class UserChange:
    """One kubeconfig user whose exec section the edit changes."""

    path: str  # the file that defines the user
    context: str  # the context that names the user ("-" when none does)
    user: str
    change: Change


@dataclass(frozen=True)
class AllowlistChange:
    """An entry the edit adds to (wrap) or removes from (unwrap) a kuberc's allowlist."""

    path: str
    entry: str
    added: bool


@dataclass
class Plan:
    """What `wrap` or `unwrap` changes: the users, the allowlist entries, and the edited
    documents to write, by path (kubeconfig files first, then kuberc files)."""

    action: str
    users: list[UserChange] = field(default_factory=list)
    allowlist: list[AllowlistChange] = field(default_factory=list)
    documents: dict[str, Any] = field(default_factory=dict)


def kubeconfig_files(explicit: str | None, environ: Mapping[str, str]) -> list[str]:
    """--kubeconfig (which must exist), else the existing files of $KUBECONFIG (as kubectl
    merges them), else ~/.kube/config if it exists."""
    if explicit:
        return [explicit]
    listed = [path for path in environ.get("KUBECONFIG", "").split(os.pathsep) if path]
    if not listed:
        listed = [os.path.join(environ.get("HOME") or os.path.expanduser("~"), ".kube", "config")]
    return [path for path in dict.fromkeys(listed) if os.path.exists(path)]


def load_all(paths: list[str]) -> dict[str, Any]:
    """Every file's document, or a ShimError naming the first that cannot be read or parsed."""
    documents = {}
    for path in paths:
        try:
            document = yamlfile.load(path)
        except OSError as error:
            raise ShimError(f"{path}: cannot read: {error.strerror}; nothing was changed") from None
        except yamlfile.YamlError as error:
            reason = error.reason
            raise ShimError(f"{path}: not valid YAML ({reason}); nothing was changed") from None
        documents[path] = document if document is not None else {}
        if not hasattr(documents[path], "get"):
            raise ShimError(f"{path}: not a kubeconfig (a mapping); nothing was changed")
    return documents


def _named(document: Any, section: str) -> list[Any]:
    items = document.get(section) if hasattr(document, "get") else None
    return [item for item in items or [] if hasattr(item, "get") and item.get("name") is not None]


def select_users(
    documents: dict[str, Any], contexts: list[str], undo: bool
) -> list[tuple[str, str, Any]]:
    """(file, context, user entry) to change: the named contexts' users, else every match."""
    first_context: dict[str, tuple[str, Any]] = {}
    first_user: dict[str, tuple[str, Any]] = {}
    for path, document in documents.items():  # as kubectl merges: the first file wins
        for item in _named(document, "contexts"):
            first_context.setdefault(str(item["name"]), (path, item))
        for item in _named(document, "users"):
            first_user.setdefault(str(item["name"]), (path, item))
    if contexts:
        chosen = []
        for name in contexts:
            if name not in first_context:
                raise ShimError(f"context {name!r} is in none of: {', '.join(documents)}")
            user = str((first_context[name][1].get("context") or {}).get("user"))
            if user not in first_user:
                raise ShimError(f"context {name!r} names user {user!r}, which no file defines")
            chosen.append((name, user))
    else:
        context_of: dict[str, str] = {}
        for name, (_, item) in first_context.items():
            context_of.setdefault(str((item.get("context") or {}).get("user")), name)
        matches = wrapped if undo else wraps_eks
        chosen = [
            (context_of.get(user, "-"), user)
            for user, (_, item) in first_user.items()
            if matches(exec_section(item))
        ]
    return [(first_user[user][0], context, first_user[user][1]) for context, user in chosen]


def shim_command() -> str:
    """The absolute path kubeconfig should run: tools started from a GUI have another PATH."""
    launched = sys.argv[0] if sys.argv else ""
    if os.path.basename(launched) in LAUNCHERS:
        return os.path.abspath(launched)
    beside = os.path.join(os.path.dirname(sys.executable), "shim")
    if os.path.exists(beside):
        return beside
    import shutil

    found = shutil.which("shim")
    if found is None:
        raise ShimError("cannot find the installed `shim` script to put in kubeconfig")
    return os.path.abspath(found)


def wrap(paths: list[str], contexts: list[str], environ: Mapping[str, str]) -> Plan:
    """The plan that puts the shim in front of the selected users of the files at `paths`."""
    documents = load_all(paths)
    selected = select_users(documents, contexts, undo=False)
    shim = shim_command()
    policy_file = kuberc.load_kuberc(kuberc.kuberc_path(environ))
    items = [user_item for _, _, user_item in selected]
    allowed = allowlist.entry_to_add(policy_file, items, shim, environ)
    plan = Plan("wrap")
    for path, context, user_item in selected:
        change = wrap_exec(user_item, shim, allowed)
        if change is not None:
            plan.users.append(UserChange(path, context, str(user_item["name"]), change))
            plan.documents[path] = documents[path]
    if allowed is not None and policy_file is not None and plan.users:
        allowlist.add_entry(policy_file.document, shim)
        plan.allowlist.append(AllowlistChange(policy_file.path, shim, added=True))
        plan.documents[policy_file.path] = policy_file.document
    return plan


def unwrap(paths: list[str], contexts: list[str]) -> Plan:
    """The plan that gives the selected users back the exec sections they had before wrap,
    and takes the shim out of kubectl's allowlist once no user runs it (only the entry
    that wrap added, as the users' records say)."""
    documents = load_all(paths)
    plan = Plan("unwrap")
    for path, context, user_item in select_users(documents, contexts, undo=True):
        change = unwrap_exec(user_item)
        if change is not None:
            plan.users.append(UserChange(path, context, str(user_item["name"]), change))
            plan.documents[path] = documents[path]
    if select_users(documents, [], undo=True):
        return plan  # users still run the shim: kubectl must keep allowing it
    added = {
        (user.change.allowed.kuberc, user.change.allowed.entry)
        for user in plan.users
        if user.change.allowed is not None
    }
    for path, entry in sorted(added):
        loaded = kuberc.load_kuberc(path)
        if loaded is not None and allowlist.remove_entry(loaded.document, entry):
            plan.allowlist.append(AllowlistChange(path, entry, added=False))
            plan.documents[path] = loaded.document
    return plan


def plan_edit(
    action: str, explicit: str | None, contexts: list[str], environ: Mapping[str, str]
) -> Plan:
    """The plan of `shim kubeconfig ACTION` for the files kubectl would read."""
    paths = kubeconfig_files(explicit, environ)
    log.debug(f"kubeconfig files: {', '.join(paths) or 'none'}")
    return wrap(paths, contexts, environ) if action == "wrap" else unwrap(paths, contexts)


def apply(plan: Plan) -> None:
    """Write every document the plan edited; wrap keeps one backup of each file first."""
    for path, document in plan.documents.items():
        yamlfile.write(path, document, backup=plan.action == "wrap")


HELP = """\
wrap: put the shim in front of kubeconfig's EKS users. Each user whose exec runs
`aws ... eks get-token` or `aws-iam-authenticator token` (any exec plugin with
--context) then runs `shim -- <the same command>`: same command, same args, same env,
answered from the cache. provideClusterInfo becomes true, so that the shim can check
a token kubectl reports as rejected. Files are written atomically with their mode and
comments kept, after one backup <file>.eks-token-shim.bak.

unwrap: give those users back exactly the exec sections they had before wrap.

Both print one line per changed user; --dry-run prints them and writes nothing.
Run wrap again after `aws eks update-kubeconfig` rewrites an entry."""
