"""The edit itself: one kubeconfig user's exec section wrapped in the shim, or unwrapped.

Works on the text of the file (shim.yamltext): wrap replaces the `command` value, puts
`--` and the original command before the args, sets `provideClusterInfo: true` (the
shim needs the server and CA to check a token kubectl reports as rejected) and keeps a
record in the user's `extensions`, kubeconfig's place for tools' own data, which kubectl
preserves. The record holds what unwrap cannot read back from the args: whether there
was an `args` key, `provideClusterInfo` and the command as they were written, and the
allowlist entry wrap added. unwrap splices exactly that back, so a file that was not
touched in between comes back byte for byte; without a record it still gives the
original command and args back.

A command with a slash is resolved by kubectl against the kubeconfig file's directory,
so wrap puts it after `--` made absolute: the shim would resolve it against kubectl's
working directory and run another program, or none.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, cast

from shim import LAUNCHERS
from shim.backends import program_name, recognise
from shim.process import describe
from shim.yamltext import (
    Node,
    Refused,
    Source,
    compose,
    entries,
    get,
    is_mapping,
    is_null,
    is_scalar,
    is_sequence,
    meaning,
    own_entry,
    text_of,
)

EXTENSION = "eks-token-shim"
STR, BOOL, _NULL = "tag:yaml.org,2002:str", "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null"


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


def _argv(section: Node) -> list[str]:
    args = get(section, "args")
    items = args.value if is_sequence(args) else []
    return [text_of(get(section, "command")), *(text_of(item) for item in items)]


def exec_section(user_item: Node) -> Node:  # (or None)
    """The `user.exec` mapping of a kubeconfig users[] item, or None."""
    user = get(user_item, "user") if is_mapping(user_item) else None
    section = get(user, "exec") if is_mapping(user) else None
    return section if is_mapping(section) else None


def _split_wrapped(section: Node) -> int | None:
    """Where `--` is in the args of a section that runs the shim in generic mode (the
    shim's options before it, such as -v); None when the section does not run the shim."""
    if not is_mapping(section) or program_name(text_of(get(section, "command"))) not in LAUNCHERS:
        return None
    args = get(section, "args")
    words = [text_of(item) for item in args.value] if is_sequence(args) else []
    if "--" not in words:
        return None
    at = words.index("--")
    return at if len(words) > at + 1 else None


def wrapped(section: Node) -> bool:
    """Whether an exec section runs the shim in generic mode, whatever options it has."""
    return _split_wrapped(section) is not None


def runs_shim(section: Node) -> bool:
    """Whether an exec section runs the shim, in any mode, under either of its names."""
    return is_mapping(section) and program_name(text_of(get(section, "command"))) in LAUNCHERS


def wraps_eks(section: Node) -> bool:
    """Whether an exec section runs a backend of the table (`aws ... eks get-token`,
    `aws-iam-authenticator token`), and not through the shim already."""
    if not is_mapping(section) or runs_shim(section):
        return False
    return recognise(_argv(section)) is not None


def resolved_command(command: str, kubeconfig: str) -> str:
    """The program kubectl runs for `command` in the file `kubeconfig`: a relative path with a
    slash is taken from the file's directory (the path as given: a symlink is not followed)."""
    if "/" not in command or os.path.isabs(command):
        return command
    return os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(kubeconfig)), command))


def _own_value(mapping: Node, key: str) -> tuple[Node, Node] | None:
    """The mapping's own entry for `key` (the last when repeated); Refused when the key
    comes only through a `<<` merge (the text to edit is another mapping's)."""
    found = own_entry(mapping, key)
    if found is None and get(mapping, key) is not None:
        raise Refused(f"its `{key}` comes from a YAML merge (<<)")
    return found


def _after_colon(source: Source, key: Node) -> int:
    return source.text.index(":", key.end_mark.index) + 1


def _set_null(source: Source, pair: tuple[Node, Node], value: str) -> None:
    """Give an entry whose value is null (`key: null`, `key: ~`, or `key:` and nothing)
    the flow value `value`."""
    key, node = pair
    if node.start_mark.index == node.end_mark.index:  # nothing written: after the colon
        at = _after_colon(source, key)
        source.splice(at, at, " " + value)
    else:
        source.replace(node, value)


def _give_back(source: Source, key: Node, node: Node, old: str) -> Any:
    """Put back `old`, the text the value `node` of `key` had before wrap ("": nothing
    after the colon); what it means."""
    if old:
        source.replace(node, old)
    else:  # `key:` and nothing: wrap put a space and the value after the colon
        source.splice(_after_colon(source, key), node.end_mark.index, "")
    return meaning(compose(old)) if old.strip() else (_NULL, "")


def _source_text(source: Source, node: Node) -> str:
    return source.text[node.start_mark.index : node.end_mark.index]


class Wrap:
    """wrap for one exec section: the splices into `source`, and what they must mean."""

    def __init__(self, source: Source, expected: dict[int, Any]) -> None:
        self.source = source
        self.expected = expected  # the document's meaning, by node id: edited as the text is

    def wrap(
        self, user: Node, section: Node, shim: str, kubeconfig: str, allowed: Allowed | None
    ) -> Change:
        source = self.source
        command_pair = _own_value(section, "command")
        if command_pair is None or not is_scalar(command_pair[1]) or is_null(command_pair[1]):
            raise Refused("its exec section has no command")
        command_key, command = command_pair
        before = _argv(section)
        program = resolved_command(text_of(command), kubeconfig)
        record: dict[str, object] = {}
        command_text = _source_text(source, command)
        data = self.expected[id(section)]

        args_pair = _own_value(section, "args")
        flow = bool(section.flow_style)
        if args_pair is None:
            record.update(hadArgs=False, commandText=command_text)
            source.add_entry(section, "args", ["--", program], before=command_key)
            data["args"] = [(STR, "--"), (STR, program)]
        elif is_null(args_pair[1]):
            node = args_pair[1]
            record.update(hadArgs=True, commandText=command_text)
            record["argsText"] = _source_text(source, node)
            _set_null(source, args_pair, source.flow_value(["--", program], None))
            data["args"] = [(STR, "--"), (STR, program)]
        elif is_sequence(args_pair[1]):
            record.update(hadArgs=True, commandText=command_text)
            source.insert_items(args_pair[1], 0, ["--", program])
            data["args"][0:0] = [(STR, "--"), (STR, program)]
        else:
            raise Refused("its exec args are not a list")

        cluster_info = _own_value(section, "provideClusterInfo")
        if cluster_info is None:
            source.add_entry(section, "provideClusterInfo", True, before=command_key)
        else:
            record["provideClusterInfo"] = _plain_value(cluster_info[1])
            record["provideClusterInfoText"] = _source_text(source, cluster_info[1])
            if meaning(cluster_info[1]) != (BOOL, "true"):
                source.replace(cluster_info[1], "true")
        data["provideClusterInfo"] = (BOOL, "true")

        source.replace(command, source.scalar(shim, command, flow))
        data["command"] = (STR, shim)

        if allowed is not None:
            record.update(kuberc=allowed.kuberc, kubercEntry=allowed.entry)
        self._add_record(user, record)
        return Change(describe(before), describe([shim, "--", program, *before[1:]]), allowed)

    def _add_record(self, user: Node, record: dict[str, object]) -> None:
        """The record first in the user's extensions. An `extensions` that was null or
        empty has its text recorded, for unwrap to give back."""
        source, data = self.source, self.expected[id(user)]
        pair = _own_value(user, "extensions")
        if pair is not None and (is_null(pair[1]) or (is_sequence(pair[1]) and not pair[1].value)):
            record["extensionsText"] = _source_text(source, pair[1])
        item = {"name": EXTENSION, "extension": record}
        if pair is None:
            first = entries(user)[0][0]
            source.add_entry(user, "extensions", [item], before=first)
            data["extensions"] = [as_meaning(item)]
        elif is_null(pair[1]):
            _set_null(source, pair, source.flow_value([item], None))
            data["extensions"] = [as_meaning(item)]
        elif is_sequence(pair[1]):
            source.insert_items(pair[1], 0, [item])
            data["extensions"].insert(0, as_meaning(item))
        else:
            raise Refused("its `extensions` is not a list")

    def unwrap(
        self, section: Node, record_at: tuple[Node, Node, int] | None, kubeconfig: str
    ) -> Change:
        """Give the section back what wrap found; `record_at` is (the user holding the
        record, its extensions list, the record's place in it), or None."""
        source = self.source
        split = _split_wrapped(section)
        if split is None:
            raise Refused("it does not run the shim")
        before = _argv(section)
        record = _fields(record_at[1].value[record_at[2]]) if record_at is not None else {}
        data = self.expected[id(section)]
        # Both are there (_split_wrapped read them); one from a merge is refused here.
        command = cast("tuple[Node, Node]", _own_value(section, "command"))[1]
        args_key, args = cast("tuple[Node, Node]", _own_value(section, "args"))
        original = text_of(args.value[split + 1])

        # The recorded text, unless the command after `--` was changed since wrap.
        text = record.get("commandText")
        recorded = meaning(compose(text)) if isinstance(text, str) and text.strip() else None
        if recorded is not None and resolved_command(recorded[1], kubeconfig) == original:
            source.replace(command, str(text))
            data["command"] = recorded
        else:
            source.replace(command, source.scalar(original, command, bool(section.flow_style)))
            data["command"] = (STR, original)
        shown = [str(data["command"][1]), *before[split + 3 :]]  # (before: command, args)

        if record.get("hadArgs") is False and len(args.value) == split + 2:
            source.remove_entry(section, args_key)
            del data["args"]
        elif isinstance(record.get("argsText"), str) and len(args.value) == split + 2:
            data["args"] = _give_back(source, args_key, args, str(record["argsText"]))
        else:
            source.remove_items(args, 0, split + 2)
            del data["args"][0 : split + 2]

        cluster_info = _own_value(section, "provideClusterInfo")
        if record_at is not None and cluster_info is not None:
            old = record.get("provideClusterInfoText")
            if not isinstance(old, str) and "provideClusterInfo" in record:
                flow = bool(section.flow_style)
                old = source.scalar(record["provideClusterInfo"], cluster_info[1], flow)
            if isinstance(old, str):
                if old != _source_text(source, cluster_info[1]):
                    source.replace(cluster_info[1], old)
                data["provideClusterInfo"] = meaning(compose(old))
            else:
                source.remove_entry(section, cluster_info[0])
                del data["provideClusterInfo"]

        allowed = None
        if record_at is not None:
            holder, extensions, at = record_at
            self._remove_record(holder, extensions, at, record)
            if record.get("kubercEntry"):
                allowed = Allowed(str(record["kuberc"]), str(record["kubercEntry"]))
        return Change(describe(before), describe(shown), allowed)

    def _remove_record(
        self, user: Node, extensions: Node, at: int, record: dict[str, object]
    ) -> None:
        data = self.expected[id(user)]
        if len(extensions.value) == 1:
            key = next(pair[0] for pair in entries(user) if pair[1] is extensions)
            old = record.get("extensionsText")
            if isinstance(old, str):  # it was there, null or empty, before wrap
                data["extensions"] = _give_back(self.source, key, extensions, old)
            else:
                self.source.remove_entry(user, key)
                del data["extensions"]
        else:
            self.source.remove_items(extensions, at, at + 1)
            del data["extensions"][at]


def find_record(user: Node) -> tuple[Node, int] | None:
    """The user's extensions list and the place of the shim's record in it, or None."""
    extensions: Node = get(user, "extensions") if is_mapping(user) else None
    if not is_sequence(extensions):
        return None
    for at, item in enumerate(extensions.value):
        if is_mapping(item) and text_of(get(item, "name")) == EXTENSION:
            return extensions, at
    return None


def _fields(item: Node) -> dict[str, Any]:
    """A record's fields as Python values (strings, and booleans for true/false)."""
    record = get(item, "extension")
    fields: dict[str, Any] = {}
    for key, value in entries(record) if is_mapping(record) else []:
        if is_scalar(value):
            fields[str(key.value)] = _plain_value(value)
    return fields


def _plain_value(node: Node) -> Any:
    if node.tag == BOOL:  # (a scalar: only scalars have that tag)
        return node.value.lower() == "true"
    return text_of(node)


def as_meaning(value: Any) -> Any:
    """What a value wrap writes (as JSON) means, as shim.yamltext.meaning gives it."""
    if isinstance(value, bool):
        return (BOOL, "true" if value else "false")
    if isinstance(value, dict):
        return {key: as_meaning(item) for key, item in value.items()}
    return (STR, str(value))  # (a record holds no lists)
