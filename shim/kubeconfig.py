"""`shim kubeconfig wrap|unwrap`: put the shim in front of EKS exec plugins, and take it out.

YAML is edited with ruamel.yaml's round-trip mode, so that users' files keep their
comments, key order and quoting; it is imported only here, never on the credential
path. Files are written atomically with their mode kept; before the first wrap a
single backup `<file>.eks-token-shim.bak` is kept. Nothing is written unless every
file parses.
"""

from __future__ import annotations

import os
import sys

from shim import LAUNCHERS, kuberc, log
from shim.errors import ShimError
from shim.files import replace_file
from shim.kuberc import round_trip_yaml
from shim.wrapping import Change, exec_section, unwrap_exec, wrap_exec, wrapped, wraps_eks

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

BACKUP_SUFFIX = ".eks-token-shim.bak"


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
    yaml, documents = round_trip_yaml(), {}
    for path in paths:
        try:
            with open(path, encoding="utf-8") as file:
                document = yaml.load(file)
        except OSError as error:
            raise ShimError(f"{path}: cannot read: {error.strerror}; nothing was changed") from None
        except Exception as error:  # ruamel's errors have no common public base
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise ShimError(f"{path}: not valid YAML ({first_line}); nothing was changed") from None
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


def write_atomically(path: str, document: Any, backup: bool) -> None:
    """Replace the file behind `path` (following a symlink) with `document`, keeping its mode."""
    import io

    target = os.path.realpath(path)
    mode = os.stat(target).st_mode & 0o7777
    if backup and not os.path.exists(target + BACKUP_SUFFIX):
        with open(target, "rb") as original:
            replace_file(target + BACKUP_SUFFIX, original.read(), mode, durable=True)
    text = io.StringIO()
    round_trip_yaml().dump(document, text)
    # kubeconfigs hold secrets: the mode they had, never wider.
    replace_file(target, text.getvalue().encode("utf-8"), mode, durable=True)


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


def run(
    action: str,
    explicit: str | None,
    contexts: list[str],
    dry_run: bool,
    environ: Mapping[str, str],
) -> int:
    """Wrap or unwrap; print one line per changed user and a total."""
    paths = kubeconfig_files(explicit, environ)
    log.debug(f"kubeconfig files: {', '.join(paths) or 'none'}")
    documents = load_all(paths)
    undo = action == "unwrap"
    selected = select_users(documents, contexts, undo)
    command = "" if undo else shim_command()
    policy_file = kuberc.load_kuberc(kuberc.kuberc_path(environ))
    allow = None if undo else _allowlist_change(policy_file, selected, command, environ)
    changes: dict[str, list[Change]] = {}
    verb = ("would " if dry_run else "") + action
    for path, context, user_item in selected:
        change = unwrap_exec(user_item) if undo else wrap_exec(user_item, command, allow)
        if change is not None:
            changes.setdefault(path, []).append(change)
            print(
                f"{verb}: {path}: context {context}, user {user_item['name']}: "
                f"{change.before} -> {change.after}"
            )
    edited = _policy_edits(documents, changes, policy_file, command, allow, undo, dry_run)
    if not dry_run:
        for path in changes:
            write_atomically(path, documents[path], backup=not undo)
        for edited_file in edited:
            write_atomically(edited_file.path, edited_file.document, backup=not undo)
    count = sum(len(items) for items in changes.values())
    done = "would change" if dry_run else "changed"
    print(
        f"{done} {count} user{'' if count == 1 else 's'} in {len(changes)} "
        f"file{'' if len(changes) == 1 else 's'}"
        if count
        else f"nothing to {action}"
    )
    return 0


def _allowlist_change(
    policy_file: kuberc.Kuberc | None,
    selected: list[tuple[str, str, Any]],
    shim: str,
    environ: Mapping[str, str],
) -> dict[str, str] | None:
    """What wrap must add to kubectl's allowlist so that kubectl runs the shim in front of
    commands it allows today: {"kuberc": file, "kubercEntry": shim}, or None."""
    if policy_file is None or policy_file.policy.type == kuberc.ALLOW_ALL:
        return None
    policy = policy_file.policy
    if policy.type == kuberc.DENY_ALL:
        raise ShimError(
            f"{policy_file.path} sets credentialPluginPolicy: DenyAll: kubectl runs no "
            "credential plugin, so it would not run the shim either; nothing was changed"
        )
    allowed = False
    for _, _, user_item in selected:
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
    return {"kuberc": policy_file.path, "kubercEntry": shim}


def _policy_edits(
    documents: dict[str, Any],
    changes: dict[str, list[Change]],
    policy_file: kuberc.Kuberc | None,
    shim: str,
    allow: dict[str, str] | None,
    undo: bool,
    dry_run: bool,
) -> list[kuberc.Kuberc]:
    """The kuberc files to write: the shim's entry added by wrap, or removed by the unwrap of
    the last wrapped user (only the entry that wrap added, per the users' records)."""
    verb = "would " if dry_run else ""
    if not undo:
        if allow is None or policy_file is None or not changes:
            return []
        policy_file.add_entry(shim)
        print(f"{verb}allow: {policy_file.path}: credentialPluginAllowlist + {shim}")
        return [policy_file]
    if select_users(documents, [], undo=True):
        return []  # users still run the shim: kubectl must keep allowing it
    added = {
        (str(change.record["kuberc"]), str(change.record["kubercEntry"]))
        for items in changes.values()
        for change in items
        if change.record is not None and change.record.get("kubercEntry")
    }
    edited = []
    for path, entry in sorted(added):
        loaded = kuberc.load_kuberc(path)
        if loaded is not None and loaded.remove_entry(entry):
            print(f"{verb}disallow: {path}: credentialPluginAllowlist - {entry}")
            edited.append(loaded)
    return edited


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
