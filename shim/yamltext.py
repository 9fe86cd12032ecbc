"""A YAML file edited as text: the few nodes an edit changes are spliced, every other byte
stays as it was.

Comments, quoting, indentation, line endings, a BOM, `---`/`...` markers and JSON
layout all survive because they are never re-serialised: ruamel.yaml's composer gives
each node's place in the text, the edit replaces, inserts or removes the text of those
nodes only, in the style of the nodes around it, and `Source.result` parses what came
out and refuses it unless it means the original with exactly the intended change
(`meaning` reads a document as kubectl does: aliases shared, `<<` merged, the last of
repeated keys). ruamel.yaml is imported only here and in shim.yamlfile.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from typing import Any

from shim.errors import ShimError

BOM = "\ufeff"
MERGE = "<<"

Node = Any  # a ruamel.yaml node: ScalarNode, SequenceNode or MappingNode

# YAML 1.1 (kubectl's parser) reads these plain words as booleans or null.
_NOT_STRINGS = re.compile(
    r"(?i)^(y|yes|n|no|true|false|on|off|null|~|\.inf|-\.inf|\.nan)$|^[-+.]?[0-9]"
)
_PLAIN = re.compile(r"^[A-Za-z0-9_/.~@%+=-][A-Za-z0-9_/.~@%+=-]*$")


class YamlError(ShimError):
    """A file that is not YAML; its message says where and what, as the parser put it."""


class Refused(ShimError):
    """An edit that the text cannot take without changing more than it should."""


@contextlib.contextmanager
def _reading() -> Iterator[None]:
    """ruamel.yaml's errors (all subclass YAMLError) as one YamlError that says where
    (line and column) and what."""
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        yield
    except MarkedYAMLError as error:
        mark = error.problem_mark  # (set by every error ruamel.yaml raises, as its problem)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = error.problem or "not YAML"
        raise YamlError(f"{where}{problem}") from None
    except YAMLError as error:
        message = str(error).strip()
        raise YamlError(message.splitlines()[0] if message else "not YAML") from None
    except RecursionError:  # the parser recurses into nested collections
        raise YamlError("nested too deeply") from None


def compose(text: str) -> Node:  # (None for an empty document)
    """The node tree of the one document in `text`; YamlError when it is not YAML."""
    from ruamel.yaml import YAML

    with _reading():
        return YAML().compose(text)


def parse(text: str | bytes) -> Any:
    """The document in `text` as ruamel.yaml's round-trip data (None for an empty one),
    a repeated key accepted as kubectl accepts it; YamlError when it is not YAML."""
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.allow_duplicate_keys = True
    with _reading():
        return yaml.load(text)


def is_mapping(node: Node) -> bool:
    return node is not None and node.id == "mapping"


def is_sequence(node: Node) -> bool:
    return node is not None and node.id == "sequence"


def is_scalar(node: Node) -> bool:
    return node is not None and node.id == "scalar"


def is_null(node: Node) -> bool:
    return node is None or (is_scalar(node) and node.tag.endswith(":null"))


def entries(mapping: Node) -> list[tuple[Node, Node]]:
    """The mapping's own (key, value) pairs as written, `<<` included."""
    return list(mapping.value) if is_mapping(mapping) else []


def own_entry(mapping: Node, key: str) -> tuple[Node, Node] | None:
    """The mapping's own (key, value) for `key`, not merged in; None when it has none."""
    found = None
    for pair in entries(mapping):
        if is_scalar(pair[0]) and pair[0].value == key:
            found = pair  # the last of repeated keys wins, as in kubectl
    return found


def get(mapping: Node, key: str) -> Node:  # (None when absent)
    """The value of `key` as kubectl reads it: the mapping's own (the last when repeated),
    else from the mappings merged in with `<<`, the first that has it."""
    own = own_entry(mapping, key)
    if own is not None:
        return own[1]
    for merged in _merged(mapping):
        value = get(merged, key)
        if value is not None:
            return value
    return None


def _merged(mapping: Node) -> list[Node]:
    pair = own_entry(mapping, MERGE)
    if pair is None:
        return []
    value = pair[1]
    return [item for item in value.value if is_mapping(item)] if is_sequence(value) else [value]


def text_of(node: Node) -> str:
    """A scalar's value as a string ("" for null)."""
    return "" if is_null(node) else str(node.value)


def meaning(node: Node, seen: dict[int, Any] | None = None) -> Any:
    """What a document means to kubectl, as plain data: mappings as dicts (repeated keys:
    the last; `<<` merged under the mapping's own keys), sequences as lists, scalars as
    (tag, text). A node reached twice (an alias) is the same object both times."""
    seen = {} if seen is None else seen
    if node is None:
        return None
    if id(node) in seen:
        return seen[id(node)]
    if is_scalar(node):
        return (node.tag, node.value)
    if is_sequence(node):
        items: list[Any] = []
        seen[id(node)] = items
        items.extend(meaning(item, seen) for item in node.value)
        return items
    result: dict[str, Any] = {}
    seen[id(node)] = result
    for merged in reversed(_merged(node)):
        result.update(meaning(merged, seen))
    for key, value in entries(node):
        if is_scalar(key) and key.value == MERGE:
            continue
        result[str(key.value) if is_scalar(key) else repr(meaning(key, seen))] = meaning(
            value, seen
        )
    return result


class Source:
    """The text of a YAML file, its nodes, and the splices of an edit (none overlap)."""

    def __init__(self, data: bytes) -> None:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise YamlError(f"not UTF-8: byte {error.start}") from None
        self.bom = text.startswith(BOM)
        self.text = text[1:] if self.bom else text
        self.newline = "\r\n" if "\r\n" in self.text else "\n"
        self.root = compose(self.text)
        self.splices: list[tuple[int, int, str]] = []

    # -- the text around nodes

    def line_start(self, at: int) -> int:
        return self.text.rfind("\n", 0, at) + 1

    def column(self, at: int) -> int:
        return at - self.line_start(at)

    def first_on_line(self, at: int) -> bool:
        """Whether only indentation (and sequence dashes) stand before `at` on its line."""
        return not self.text[self.line_start(at) : at].replace("-", " ").strip()

    def after_line(self, at: int) -> int:
        """The start of the line after the one `at` is on (the end of the text at the end)."""
        if self.text[at - 1 : at] == "\n":  # (a block node's end: the next line's start)
            return at
        end = self.text.find("\n", at)
        return len(self.text) if end == -1 else end + 1

    def dash(self, item: Node) -> int:
        """Where the `-` of a block sequence item is."""
        at: int = item.start_mark.index - 1
        while at >= 0 and self.text[at] in " \t\r\n":
            at -= 1
        if at < 0 or self.text[at] != "-":
            raise Refused("a block sequence item without its dash")
        return at

    # -- splices

    def splice(self, start: int, end: int, text: str) -> None:
        for other_start, other_end, _ in self.splices:
            if start < other_end and other_start < end:
                raise Refused("two changes to the same text")
        self.splices.append((start, end, text))

    def replace(self, node: Node, text: str) -> None:
        """Put `text` where the node's text is (a node with an anchor or a tag: refused)."""
        self._plain_node(node)
        self.splice(node.start_mark.index, node.end_mark.index, text)

    def _plain_node(self, node: Node) -> None:
        start = node.start_mark.index
        if getattr(node, "anchor", None) is not None or self.text[start : start + 1] == "!":
            raise Refused("a YAML anchor or tag sits on a value the edit changes")
        if is_scalar(node) and node.style in ("|", ">"):
            raise Refused("a block scalar (| or >) is a value the edit changes")

    def edited(self) -> str:
        text = self.text
        for start, end, new in sorted(self.splices, key=lambda s: (s[0], s[1]), reverse=True):
            text = text[:start] + new + text[end:]
        return text

    def result(self, expected: Any) -> bytes:
        """The file's new bytes; Refused unless they parse to `expected` (a `meaning`)."""
        text = self.edited()
        try:
            after = meaning(compose(text))
        except YamlError as error:
            raise Refused(f"the edit would not parse ({error.message})") from None
        try:
            same = after == expected
        except RecursionError:  # an alias inside its own anchor, which kubectl refuses too
            raise Refused("the document contains itself (a YAML alias inside its anchor)") from None
        if not same:
            raise Refused("the edit would change more than the exec section")
        return ((BOM if self.bom else "") + text).encode("utf-8")

    # -- scalars in the file's style

    def scalar(self, value: str | bool, like: Node, flow: bool) -> str:
        """`value` written as a scalar in the style of the node `like` (its quotes), plain
        where plain is safe and the neighbour is plain; JSON's quotes otherwise."""
        if isinstance(value, bool):
            return "true" if value else "false"
        style = like.style if is_scalar(like) else None
        plain_ok = bool(_PLAIN.match(value)) and not _NOT_STRINGS.match(value)
        if style is None and plain_ok and not (flow and value.startswith("-") and value != "--"):
            return value
        if style == "'" and "'" not in value and value.isprintable():
            return f"'{value}'"
        return json.dumps(value, ensure_ascii=False)

    # -- mappings

    def add_entry(self, mapping: Node, key: str, value: Any, before: Node) -> None:
        """Insert `key: value` before the entry whose key node is `before`, in the
        mapping's style. `value` is a string, a bool, a list of strings, or a dict."""
        at = before.start_mark.index
        flow = bool(mapping.flow_style)
        key_text = self.scalar(key, before, flow)
        col = self.column(at)
        if not flow:
            rendered = self._block_value(value, mapping, col)
            self.splice(at, at, f"{key_text}:{rendered}{self.newline}{' ' * col}")
            return
        sep = self._flow_separator(mapping, at)
        self.splice(at, at, f"{key_text}: {self.flow_value(value, before)}{sep}")

    def _flow_separator(self, collection: Node, before: int) -> str:
        """What stands between two entries or items here: `,` and a new line when `before`
        starts its line, else what the collection uses between its first two."""
        if self.first_on_line(before):
            return "," + self.newline + " " * self.column(before)
        pairs = collection.value
        if len(pairs) >= 2:
            first, second = pairs[0], pairs[1]
            end = (first[1] if isinstance(first, tuple) else first).end_mark.index
            start = (second[0] if isinstance(second, tuple) else second).start_mark.index
            between = self.text[end:start]
            if "\n" not in between and between.strip() == ",":
                return between
        return ", "

    def flow_value(self, value: Any, like: Node) -> str:
        if isinstance(value, list):
            return "[" + ", ".join(self.flow_value(item, like) for item in value) + "]"
        if isinstance(value, dict):
            return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
        return self.scalar(value, like, True)

    def _block_value(self, value: Any, mapping: Node, col: int) -> str:
        """A new entry's value after its `key:` in a block mapping at column `col`."""
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            return " " + self.flow_value(value, None)
        indent = " " * (col + self.sequence_offset())
        lines = [f"{indent}- {self.scalar(item, None, False)}" for item in value]
        return self.newline + self.newline.join(lines)

    def sequence_offset(self) -> int:
        """How far the file indents a block sequence under its key (0: `key:` then `- a`
        at the key's column, as kubectl writes), from the first one it has; 2 without one."""
        for pair in _all_pairs(self.root):
            key, value = pair
            if is_sequence(value) and not value.flow_style and value.value:
                return self.column(self.dash(value.value[0])) - int(key.start_mark.column)
        return 2

    def remove_entry(self, mapping: Node, key_node: Node) -> None:
        """Remove an entry, with the line break or separator that goes with it."""
        pairs = entries(mapping)
        at = next(i for i, pair in enumerate(pairs) if pair[0] is key_node)
        key, value = pairs[at]
        self._plain_node(value) if is_scalar(value) else None
        if at + 1 < len(pairs):
            self.splice(key.start_mark.index, pairs[at + 1][0].start_mark.index, "")
        elif mapping.flow_style and at > 0:
            self.splice(pairs[at - 1][1].end_mark.index, value.end_mark.index, "")
        elif not mapping.flow_style and at > 0 and self.first_on_line(key.start_mark.index):
            start = self.line_start(key.start_mark.index)
            self.splice(start, self.after_line(value.end_mark.index), "")
        else:
            raise Refused("the only entry of a mapping")

    # -- sequences

    def insert_items(self, sequence: Node, at: int, items: list[Any]) -> None:
        """Insert `items` (strings, or dicts written as flow mappings) before item `at`
        (at the end when `at` is the length), in the sequence's style."""
        current = sequence.value
        flow = bool(sequence.flow_style)
        like = current[0] if current else None
        texts = [self._item_text(item, like, flow) for item in items]
        if flow:
            if not current:
                start = sequence.start_mark.index + 1  # after `[`
                self.splice(start, start, ", ".join(texts))
            elif at < len(current):
                start = current[at].start_mark.index
                sep = self._flow_separator(sequence, start)
                self.splice(start, start, "".join(text + sep for text in texts))
            else:
                end = current[-1].end_mark.index
                sep = self._flow_separator(sequence, current[-1].start_mark.index)
                self.splice(end, end, "".join(sep + text for text in texts))
            return
        if at < len(current):
            dash = self.dash(current[at])
            pad = self.newline + " " * self.column(dash)
            self.splice(dash, dash, "".join(f"- {text}{pad}" for text in texts))
            return
        last_dash = self.dash(current[-1])
        end = self.after_line(current[-1].end_mark.index)
        pad = " " * self.column(last_dash)
        if self.text[end - 1 : end] == "\n":
            self.splice(end, end, "".join(f"{pad}- {text}{self.newline}" for text in texts))
        else:  # the last line has no line break, and keeps none
            self.splice(end, end, "".join(f"{self.newline}{pad}- {text}" for text in texts))

    def _item_text(self, item: Any, like: Node, flow: bool) -> str:
        """An item for a sequence: a one-key mapping in a block sequence as `key: value`
        (as kuberc allowlists are written), other mappings as JSON."""
        if not isinstance(item, dict):
            return self.scalar(item, like, flow)
        if not flow and len(item) == 1:
            ((key, value),) = item.items()
            if isinstance(value, (str, bool)):
                key_like = like.value[0][0] if is_mapping(like) and like.value else None
                value_like = like.value[0][1] if is_mapping(like) and like.value else None
                return (
                    f"{self.scalar(key, key_like, False)}: {self.scalar(value, value_like, False)}"
                )
        return self.flow_value(item, None)

    def remove_items(self, sequence: Node, start: int, stop: int) -> None:
        """Remove items [start, stop) with their dashes, separators and line breaks."""
        items = sequence.value
        if start >= stop:
            return
        if sequence.flow_style:
            if stop < len(items):
                self.splice(items[start].start_mark.index, items[stop].start_mark.index, "")
            elif start > 0:
                self.splice(items[start - 1].end_mark.index, items[stop - 1].end_mark.index, "")
            else:
                self.splice(items[0].start_mark.index, items[-1].end_mark.index, "")
            return
        if stop < len(items):
            self.splice(self.dash(items[start]), self.dash(items[stop]), "")
        elif start > 0:
            begin = self.line_start(self.dash(items[start]))
            end = self.after_line(items[-1].end_mark.index)
            if end == len(self.text) and not self.text.endswith("\n"):  # the last line
                begin -= 2 if self.text[begin - 2 : begin] == "\r\n" else 1  # has no break
            self.splice(begin, end, "")
        else:
            raise Refused("every item of a block sequence")


def _all_pairs(node: Node, seen: set[int] | None = None) -> list[tuple[Node, Node]]:
    """Every (key, value) of every mapping under `node`, in the order of the text."""
    seen = set() if seen is None else seen
    if id(node) in seen:  # (None, the root of an empty document, is neither kind below)
        return []
    seen.add(id(node))
    found: list[tuple[Node, Node]] = []
    if is_mapping(node):
        for key, value in node.value:
            found.append((key, value))
            found.extend(_all_pairs(value, seen))
    elif is_sequence(node):
        for item in node.value:
            found.extend(_all_pairs(item, seen))
    return found
