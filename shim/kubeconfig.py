"""`shim kubeconfig wrap|unwrap`: put the shim in front of EKS exec plugins, and take it out.

Which files and users (as kubectl merges $KUBECONFIG), and the plan of an edit: every
user's change, every allowlist entry and the list of files that rely on it, decided
before anything is written (shim.wrapping splices each exec section, shim.yamltext
checks what each file then means). Nothing is written unless every file parses and
every edit is sure; shim.yamlfile writes, all or nothing, and the command prints.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shim import LAUNCHERS, allowlist, kuberc, log, yamlfile
from shim.backends import program_name
from shim.errors import ShimError
from shim.wrapping import (
    Allowed,
    Change,
    Wrap,
    exec_section,
    find_record,
    runs_shim,
    wrapped,
    wraps_eks,
)
from shim.yamltext import Node, Refused, Source, YamlError, get, is_mapping, is_sequence, meaning
from shim.yamltext import text_of as text

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
class Document:
    """A file being edited: its text and nodes, and what it must mean once edited (the
    meaning of its nodes by id, changed along with the text)."""

    path: str
    before: bytes
    source: Source
    expected: dict[int, Any]

    @classmethod
    def load(cls, path: str, data: bytes | None = None) -> Document:
        before = yamlfile.read(path) if data is None else data
        try:
            source = Source(before)
        except YamlError as error:
            reason = error.message
            raise ShimError(f"{path}: not valid YAML ({reason}); nothing was changed") from None
        expected: dict[int, Any] = {}
        meaning(source.root, expected)
        if source.root is not None and not is_mapping(source.root):
            raise ShimError(f"{path}: not a kubeconfig (a mapping); nothing was changed")
        return cls(path, before, source, expected)

    def after(self) -> bytes:
        """The edited bytes; a ShimError when the edit would mean more than it should."""
        try:
            return self.source.result(self.expected.get(id(self.source.root)))
        except Refused as refused:
            raise ShimError(f"{self.path}: {refused.message}; nothing was changed") from None


@dataclass
class Plan:
    """What `wrap` or `unwrap` changes: the users, the allowlist entries, and the edited
    documents, by path (kubeconfig files first, then kuberc files)."""

    action: str
    users: list[UserChange] = field(default_factory=list)
    allowlist: list[AllowlistChange] = field(default_factory=list)
    documents: dict[str, Document] = field(default_factory=dict)
    lists: list[yamlfile.Write] = field(default_factory=list)  # shim.allowlist's registries

    def writes(self) -> list[yamlfile.Write]:
        edited = [
            yamlfile.Write(path, document.before, document.after())
            for path, document in self.documents.items()
        ]
        return edited + self.lists


def kubeconfig_files(explicit: str | None, environ: Mapping[str, str]) -> list[str]:
    """--kubeconfig (which must exist), else the existing files of $KUBECONFIG (as kubectl
    merges them), else ~/.kube/config if it exists."""
    if explicit:
        return [explicit]
    listed = [path for path in environ.get("KUBECONFIG", "").split(os.pathsep) if path]
    if not listed:
        listed = [os.path.join(kuberc.kube_home(environ), ".kube", "config")]
    return [path for path in dict.fromkeys(listed) if os.path.exists(path)]


def load_all(paths: list[str]) -> dict[str, Document]:
    """Every file's document, or a ShimError naming the first that cannot be read or parsed."""
    return {path: Document.load(path) for path in paths}


def _named(document: Document, section: str) -> list[Node]:
    items: Node = get(document.source.root, section) if document.source.root is not None else None
    if not is_sequence(items):
        return []
    return [item for item in items.value if text(get(item, "name"))]  # (a non-mapping: None)


def select_users(
    documents: dict[str, Document], contexts: list[str], undo: bool
) -> list[tuple[str, str, Node]]:
    """(file, context, user entry) to change: the named contexts' users, else every match."""
    first_context: dict[str, tuple[str, Node]] = {}
    first_user: dict[str, tuple[str, Node]] = {}
    for path, document in documents.items():  # as kubectl merges: the first file wins
        for item in _named(document, "contexts"):
            first_context.setdefault(text(get(item, "name")), (path, item))
        for item in _named(document, "users"):
            first_user.setdefault(text(get(item, "name")), (path, item))
    if contexts:
        chosen = []
        for name in contexts:
            if name not in first_context:
                raise ShimError(
                    f"context {name!r} is in none of: {', '.join(documents)}; nothing was changed"
                )
            path, item = first_context[name]
            user = _context_user(item)
            if user is None:
                raise ShimError(
                    f"context {name!r} in {path} names no user: its `context` is not a "
                    "mapping with a `user`; nothing was changed"
                )
            if user not in first_user:
                raise ShimError(
                    f"context {name!r} names user {user!r}, which no file defines; "
                    "nothing was changed"
                )
            chosen.append((name, user))
    else:
        context_of: dict[str, str] = {}
        for name, (_, item) in first_context.items():
            user = _context_user(item)
            if user is not None:
                context_of.setdefault(user, name)
        matches = wrapped if undo else wraps_eks
        chosen = [
            (context_of.get(user, "-"), user)
            for user, (_, item) in first_user.items()
            if matches(exec_section(item))
        ]
    return [(first_user[user][0], context, first_user[user][1]) for context, user in chosen]


def _context_user(item: Node) -> str | None:
    context = get(item, "context")
    user = get(context, "user") if is_mapping(context) else None
    return text(user) if user is not None and text(user) else None


def shim_command() -> str:
    """The absolute path kubeconfig should run: tools started from a GUI have another PATH.
    The launcher we were started by; else the one installed beside our interpreter; else
    the one on PATH (on Windows, `shim.exe`, found as kubectl finds programs there)."""
    launched = sys.argv[0] if sys.argv else ""
    if os.name == "nt":  # pip's `shim.exe`, beside python.exe in a venv, else in Scripts
        ours = launched.lower().endswith(".exe") and program_name(launched) in LAUNCHERS
        name, places = "shim.exe", ["", "Scripts"]
    else:
        ours = os.path.basename(launched) in LAUNCHERS
        name, places = "shim", [""]
    if ours:
        return os.path.abspath(launched)
    for place in places:
        beside = os.path.join(os.path.dirname(sys.executable), place, name)
        if os.path.isfile(beside):
            return beside
    if sys.platform == "win32":
        from shim.windows import look_path

        try:
            found: str | None = look_path(name, dict(os.environ))
        except FileNotFoundError:
            found = None
    else:
        import shutil

        found = shutil.which(name)
    if found is None:
        raise ShimError(f"cannot find the installed `{name}` to put in kubeconfig")
    return os.path.abspath(found)


def _refused(action: str, path: str, user: str, refused: Refused) -> ShimError:
    return ShimError(
        f"{path}: cannot {action} user {user!r}: {refused.message}; nothing was changed",
        hint="edit that user by hand, or leave it out with --context",
    )


def wrap(paths: list[str], contexts: list[str], environ: Mapping[str, str]) -> Plan:
    """The plan that puts the shim in front of the selected users of the files at `paths`."""
    documents = load_all(paths)
    selected = select_users(documents, contexts, undo=False)
    shim = shim_command()
    policy_file = kuberc.load_kuberc(kuberc.kuberc_path(environ))
    sections = [exec_section(user_item) for _, _, user_item in selected]
    commands = [text(get(s, "command")) for s in sections if s is not None and not runs_shim(s)]
    allowed = allowlist.entry_to_add(policy_file, commands, shim, environ)
    adds = allowed is not None
    if policy_file is not None and not adds and allowlist.relies_on_registry(policy_file):
        allowed = Allowed(policy_file.path, shim)  # the entry an earlier wrap added
    plan = Plan("wrap")
    done: set[int] = set()  # exec sections shared through YAML aliases are edited once
    for path, context, user_item in selected:
        section, name = exec_section(user_item), text(get(user_item, "name"))
        if section is None or runs_shim(section) or id(section) in done:
            continue
        done.add(id(section))
        document = documents[path]
        try:
            change = Wrap(document.source, document.expected).wrap(
                get(user_item, "user"), section, shim, path, allowed
            )
        except Refused as refused:
            raise _refused("wrap", path, name, refused) from None
        plan.users.append(UserChange(path, context, name, change))
        plan.documents[path] = document
    if allowed is not None and policy_file is not None and plan.users:
        if adds:
            document = Document.load(policy_file.path)
            allowlist.add_entry(document.source, document.expected, shim)
            plan.allowlist.append(AllowlistChange(policy_file.path, shim, added=True))
            plan.documents[policy_file.path] = document
        listed = allowlist.read_registry(policy_file.path) or []
        relying = [os.path.abspath(user.path) for user in plan.users]
        _update_registry(plan, policy_file.path, shim, listed, [*listed, *relying])
    return plan


def _update_registry(
    plan: Plan, kuberc_path: str, entry: str, listed: list[str], paths: list[str]
) -> None:
    """Put writing the list of files that rely on the entry into the plan (none: remove it)."""
    registry = allowlist.registry_path(kuberc_path)
    unique = list(dict.fromkeys(paths))
    if unique == listed:
        return
    try:
        with open(registry, "rb") as file:
            before = file.read()
    except FileNotFoundError:
        before = None
    except OSError as error:
        raise ShimError(f"cannot read {registry}: {error.strerror}") from None
    after = allowlist.registry_text(kuberc_path, entry, unique) if unique else None
    plan.lists.append(yamlfile.Write(registry, before, after, like=kuberc_path, backup=False))


def unwrap(paths: list[str], contexts: list[str]) -> Plan:
    """The plan that gives the selected users back the exec sections they had before wrap,
    and takes the shim out of kubectl's allowlist once no user runs it (only the entry
    that wrap added, as the users' records say)."""
    documents = load_all(paths)
    plan = Plan("unwrap")
    done: set[int] = set()
    for path, context, user_item in select_users(documents, contexts, undo=True):
        section, name = exec_section(user_item), text(get(user_item, "name"))
        if section is None or id(section) in done:
            continue
        done.add(id(section))
        document = documents[path]
        try:
            change = Wrap(document.source, document.expected).unwrap(
                section, _record_for(documents[path], section), path
            )
        except Refused as refused:
            raise _refused("unwrap", path, name, refused) from None
        plan.users.append(UserChange(path, context, name, change))
        plan.documents[path] = document
    # Whether each file of this run still has a user that runs the shim, by absolute path.
    running = {os.path.abspath(path): False for path in paths}
    for path, _, item in select_users(documents, [], undo=True):
        if id(exec_section(item)) not in done:
            running[os.path.abspath(path)] = True
    added = {
        (user.change.allowed.kuberc, user.change.allowed.entry)
        for user in plan.users
        if user.change.allowed is not None
    }
    for kuberc_path, entry in sorted(added):
        # Every file that relied on the entry, as it is now: it stays while one runs the shim.
        listed = allowlist.read_registry(kuberc_path) or []
        candidates = [*listed, *(path for path, runs in running.items() if runs)]
        needing = [
            path
            for path in dict.fromkeys(candidates)
            if (running[path] if path in running else _runs_shim(path))
        ]
        _update_registry(plan, kuberc_path, entry, listed, needing)
        if needing or kuberc.load_kuberc(kuberc_path) is None:
            continue  # users still run the shim: kubectl must keep allowing it
        document = Document.load(kuberc_path)
        if allowlist.remove_entry(document.source, document.expected, entry):
            plan.allowlist.append(AllowlistChange(kuberc_path, entry, added=False))
            plan.documents[kuberc_path] = document
    return plan


def _runs_shim(path: str) -> bool:
    """Whether a kubeconfig this run does not edit still has a user that runs the shim
    (a file that is gone or does not parse has none)."""
    try:
        document = Document.load(path)
    except ShimError:
        return False
    return bool(select_users({path: document}, [], undo=True))


def _record_for(document: Document, section: Node) -> tuple[Node, Node, int] | None:
    """The wrap record of an exec section: in the user that holds it, or in another user
    of the file that shares the section through a YAML alias."""
    for item in _named(document, "users"):
        if exec_section(item) is section:
            user = get(item, "user")
            found = find_record(user)
            if found is not None:
                return (user, *found)
    return None


def edit(
    action: str,
    explicit: str | None,
    contexts: list[str],
    environ: Mapping[str, str],
    dry_run: bool = False,
) -> Plan:
    """`shim kubeconfig ACTION` on the files kubectl would read: planned, then written all
    or none (unless `dry_run`), under kubectl's lock on each kubeconfig from the read to
    the write. wrap keeps one backup of each file first."""
    paths = kubeconfig_files(explicit, environ)
    log.debug(f"kubeconfig files: {', '.join(paths) or 'none'}")
    with contextlib.nullcontext() if dry_run else yamlfile.kubectl_locks(paths):
        plan = wrap(paths, contexts, environ) if action == "wrap" else unwrap(paths, contexts)
        if not dry_run:
            yamlfile.commit(plan.writes(), backup=action == "wrap")
    return plan


HELP = """\
wrap: put the shim in front of kubeconfig's EKS users. Each user whose exec runs
`aws ... eks get-token` or `aws-iam-authenticator token` (any exec plugin with
--context) then runs `shim -- <the same command>`: same command, same args, same env,
answered from the cache. provideClusterInfo becomes true, so that the shim can check
a token kubectl reports as rejected. Where kubectl's kuberc allows only listed
credential plugins (credentialPluginPolicy: Allowlist, in $KUBERC or ~/.kube/kuberc),
wrap adds the shim to that allowlist too. Files are written atomically with their mode
and comments kept, after one backup <file>.eks-token-shim.bak.

unwrap: give those users back exactly the exec sections they had before wrap, and
take out of the allowlist the entry wrap added, once no user runs the shim.

Both print one line per changed user; --dry-run prints them and writes nothing.
Run wrap again after `aws eks update-kubeconfig` rewrites an entry."""
