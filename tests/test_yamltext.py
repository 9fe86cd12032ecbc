"""shim.yamltext: YAML edited as text, every byte outside the edit kept, the result checked."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shim.yamltext import (
    Refused,
    Source,
    YamlError,
    compose,
    get,
    is_mapping,
    is_sequence,
    meaning,
    parse,
)


def source(text: str) -> Source:
    return Source(text.encode())


def expected_of(src: Source) -> tuple[dict[int, Any], Any]:
    seen: dict[int, Any] = {}
    return seen, meaning(src.root, seen)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("a: 1\na: 2\n", ("tag:yaml.org,2002:int", "2")),  # the last of repeated keys
        ("base: &b {a: 1}\nm: {<<: *b}\n", None),
        ("base: &b {a: 1}\nm: {<<: *b, a: 3}\n", ("tag:yaml.org,2002:int", "3")),
    ],
)
def test_meaning_reads_repeated_keys_and_merges_as_kubectl_does(text: str, value: object) -> None:
    root = compose(text)
    if value is None:
        assert meaning(root)["m"] == {"a": ("tag:yaml.org,2002:int", "1")}
    else:
        found = meaning(root)
        assert (found.get("m") or found)["a"] == value


def test_an_alias_means_the_same_object_twice() -> None:
    data = meaning(compose("a: &x {k: v}\nb: *x\n"))
    assert data["a"] is data["b"]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"a: [", "line 1, column 5: expected the node content, but found '<stream end>'"),
        (b"a: b\n  c: d\n", "line 2, column 4: mapping values are not allowed here"),
        (b"\xff\xfe", "not UTF-8: byte 0"),
        (b"[" * 100000, "nested too deeply"),
        (b"a: 1\n---\nb: 2\n", "line 2, column 1: but found another document"),
        # (the reader's error, which has no mark: its first line, which says where)
        (b"a: \x07\n", "unacceptable character #x0007: special characters are not allowed"),
    ],
)
def test_what_is_not_yaml_says_where_and_what(data: bytes, reason: str) -> None:
    with pytest.raises(YamlError) as error:
        Source(data)
    assert error.value.message == reason


@pytest.mark.parametrize("text", ["", "# a comment, no document\n"])
def test_an_empty_document_means_nothing_and_edits_to_itself(text: str) -> None:
    src = source(text)
    assert src.root is None
    assert meaning(src.root) is None
    assert src.result(None) == text.encode()


def test_a_repeated_key_is_no_error() -> None:
    src = source("a: 1\na: 2\n")
    assert get(src.root, "a").value == "2"
    assert parse("credentialPluginPolicy: DenyAll\ncredentialPluginPolicy: AllowAll\n")


@pytest.mark.parametrize(
    ("text", "after"),
    [
        ("l:\n- a\n- b\n", "l:\n- x\n- a\n- b\n"),
        ("l:\n    - a\n", "l:\n    - x\n    - a\n"),
        ("l: [a, b]\n", "l: [x, a, b]\n"),
        ("l: [a,b]\n", "l: [x,a,b]\n"),
        ('l: ["a"]\n', 'l: ["x", "a"]\n'),
        ("l: ['a']\n", "l: ['x', 'a']\n"),
        ("l: []\n", "l: [x]\n"),
        ('{"l": [\n  "a"\n]}', '{"l": [\n  "x",\n  "a"\n]}'),
    ],
)
def test_an_item_is_inserted_in_the_style_of_its_sequence(text: str, after: str) -> None:
    src = source(text)
    seen, _ = expected_of(src)
    sequence = get(src.root, "l")
    src.insert_items(sequence, 0, ["x"])
    seen[id(sequence)].insert(0, ("tag:yaml.org,2002:str", "x"))
    assert src.result(seen[id(src.root)]).decode() == after


@pytest.mark.parametrize(
    "text",
    [
        "l:\n- a\n- b\n",
        "l:\n- a\n- b",  # no line break at the end
        "l:\n  - a  # a comment\n  - b\nm: 1\n",
        "l: [a, b]\n",
        "l: [a]\n",
    ],
)
def test_an_item_appended_and_removed_gives_back_the_same_text(text: str) -> None:
    src = source(text)
    seen, _ = expected_of(src)
    sequence = get(src.root, "l")
    src.insert_items(sequence, len(sequence.value), [{"name": "/opt/shim"}])
    seen[id(sequence)].append({"name": ("tag:yaml.org,2002:str", "/opt/shim")})
    appended = src.result(seen[id(src.root)])
    again = Source(appended)
    seen, _ = expected_of(again)
    sequence = get(again.root, "l")
    again.remove_items(sequence, len(sequence.value) - 1, len(sequence.value))
    del seen[id(sequence)][-1]
    assert again.result(seen[id(again.root)]).decode() == text


@pytest.mark.parametrize(
    ("value", "like", "scalar"),
    [
        ("/opt/venv/bin/shim", "plain", "/opt/venv/bin/shim"),
        ("--", "plain", "--"),
        ("yes", "plain", '"yes"'),  # a boolean to YAML 1.1, which kubectl reads
        ("1.5", "plain", '"1.5"'),
        ("/path with space/shim", "plain", '"/path with space/shim"'),
        ("a: b", "plain", '"a: b"'),
        ("/opt/shim", '"q"', '"/opt/shim"'),
        ("/opt/shim", "'q'", "'/opt/shim'"),
        ("it's", "'q'", '"it\'s"'),
        ("\u00e9t\u00e9", "plain", '"\u00e9t\u00e9"'),
        ("\t", "plain", '"\\t"'),
    ],
)
def test_a_scalar_is_written_in_its_neighbours_style_where_that_is_safe(
    value: str, like: str, scalar: str
) -> None:
    src = source(f"k: {like}\n")
    assert src.scalar(value, get(src.root, "k"), flow=False) == scalar
    assert meaning(compose(f"k: {scalar}\n"))["k"] == ("tag:yaml.org,2002:str", value)


def test_a_result_that_means_more_than_intended_is_refused() -> None:
    src = source("a: 1\nb: 2\n")
    seen, _ = expected_of(src)
    src.replace(get(src.root, "a"), "3")  # the expected meaning still says 1
    with pytest.raises(Refused):
        src.result(seen[id(src.root)])


def test_a_result_that_does_not_parse_is_refused() -> None:
    src = source("a: 1\n")
    seen, _ = expected_of(src)
    src.replace(get(src.root, "a"), "[")
    with pytest.raises(Refused, match="would not parse"):
        src.result(seen[id(src.root)])


@pytest.mark.parametrize("text", ["a: &x 1\nb: *x\n", "a: !!str 1\n", "a: |\n  1\n"])
def test_an_anchored_tagged_or_block_scalar_is_not_replaced(text: str) -> None:
    src = source(text)
    with pytest.raises(Refused):
        src.replace(get(src.root, "a"), "2")


def test_overlapping_splices_are_refused() -> None:
    src = source("a: 1\n")
    src.splice(0, 2, "")
    with pytest.raises(Refused):
        src.splice(1, 3, "")


def test_a_document_that_contains_itself_is_refused_not_a_crash() -> None:
    src = source("x: &a [*a]\ny: 1\n")
    seen, _ = expected_of(src)
    src.replace(get(src.root, "y"), "2")
    seen[id(src.root)]["y"] = ("tag:yaml.org,2002:int", "2")
    with pytest.raises(Refused, match="contains itself"):
        src.result(seen[id(src.root)])


def test_touching_splices_are_not_overlapping() -> None:
    src = source("a: 1\nb: 2\n")
    src.splice(0, 5, "")
    src.splice(5, 10, "c: 3\n")  # starts where the first ends
    assert src.edited() == "c: 3\n"


def edited_entry(text: str, value: list[str]) -> str:
    """`text` with `args: value` added before the first key of its `exec` mapping."""
    src = source(text)
    seen, _ = expected_of(src)
    exec_section = find(src.root, "exec")
    src.add_entry(exec_section, "args", value, exec_section.value[0][0])
    expected = seen[id(exec_section)]
    expected.update({"args": [("tag:yaml.org,2002:str", item) for item in value]})
    # (a dict's order is not its meaning: compare as the result does)
    return src.result(seen[id(src.root)]).decode()


def find(node: Any, key: str) -> Any:
    """The value of the first `key` under `node` (mappings and sequences searched in order)."""
    pairs = node.value if is_mapping(node) else []
    for item in node.value if is_sequence(node) else []:
        found = find(item, key)
        if found is not None:
            return found
    for pair_key, value in pairs:
        if pair_key.value == key:
            return value
        found = find(value, key)
        if found is not None:
            return found
    return None


@pytest.mark.parametrize(
    ("text", "after"),
    [
        # kubectl's style: a block sequence at its key's column; dashes written plain
        (
            "users:\n- name: u\n  user:\n    exec:\n      command: aws\n",
            "users:\n- name: u\n  user:\n    exec:\n      args:\n      - --\n"
            "      - --cluster-name\n      command: aws\n",
        ),
        # indented by two under their key, as the file does it
        (
            "users:\n  - name: u\n    user:\n      exec:\n        command: aws\n",
            "users:\n  - name: u\n    user:\n      exec:\n        args:\n          - --\n"
            "          - --cluster-name\n        command: aws\n",
        ),
        # the file's first block sequence is deeper, and indented by four
        (
            "top:\n  inner:\n      - x\nexec:\n  command: aws\n",
            "top:\n  inner:\n      - x\nexec:\n  args:\n      - --\n      - --cluster-name\n"
            "  command: aws\n",
        ),
        # no block sequence in the file: two
        (
            "exec:\n  command: aws\n",
            "exec:\n  args:\n    - --\n    - --cluster-name\n  command: aws\n",
        ),
    ],
)
def test_a_new_block_list_is_indented_as_the_file_indents_its_lists(text: str, after: str) -> None:
    assert edited_entry(text, ["--", "--cluster-name"]) == after


def test_the_indentation_of_lists_is_read_through_lists_and_aliases() -> None:
    assert source("- key:\n      - x\n").sequence_offset() == 4  # (a list of mappings)
    assert source("a: &x [*x]\nb:\n   - y\n").sequence_offset() == 3  # (a list inside itself)
    assert source("").sequence_offset() == 2


@pytest.mark.parametrize(
    ("text", "key", "after"),
    [
        ("m: {a: 1, b: 2, c: 3}\n", "b", "m: {a: 1, c: 3}\n"),
        ("m: {a: 1, c: 3}\n", "c", "m: {a: 1}\n"),
        ("m:\n  a: 1\n  b: 2\nz: 0\n", "b", "m:\n  a: 1\nz: 0\n"),
        ("m:\n  a: 1\n  b: 2", "b", "m:\n  a: 1\n"),
    ],
)
def test_an_entry_is_removed_with_its_separator_or_line(text: str, key: str, after: str) -> None:
    src = source(text)
    seen, _ = expected_of(src)
    mapping = get(src.root, "m")
    key_node = next(pair[0] for pair in mapping.value if pair[0].value == key)
    src.remove_entry(mapping, key_node)
    del seen[id(mapping)][key]
    assert src.result(seen[id(src.root)]).decode() == after


@pytest.mark.parametrize("text", ["m: {a: 1}\n", "m:\n  a: 1\n", "m: {b: 0, a: 1}\n"])
def test_the_only_entry_or_one_on_a_shared_line_is_not_removed(text: str) -> None:
    src = source(text)
    mapping = get(src.root, "m")
    key_node = next(pair[0] for pair in mapping.value if pair[0].value == "a")
    if text.startswith("m: {b"):  # (not the only one: removed after its separator)
        src.remove_entry(mapping, key_node)
        assert src.edited() == "m: {b: 0}\n"
        return
    with pytest.raises(Refused, match="the only entry of a mapping"):
        src.remove_entry(mapping, key_node)


def test_no_items_removed_is_no_change_and_all_of_a_block_list_is_refused() -> None:
    src = source("l:\n- a\n- b\n")
    sequence = get(src.root, "l")
    src.remove_items(sequence, 1, 1)
    assert src.splices == []
    with pytest.raises(Refused, match="every item of a block sequence"):
        src.remove_items(sequence, 0, 2)


@pytest.mark.parametrize(
    ("text", "after"),
    [
        ("l:\n- a\n- b\n- c", "l:\n- a"),
        ("l:\r\n- a\r\n- b\r\n- c", "l:\r\n- a"),
    ],
)
def test_the_last_items_go_with_the_break_before_them_when_the_file_ends_without_one(
    text: str, after: str
) -> None:
    src = source(text)
    seen, _ = expected_of(src)
    sequence = get(src.root, "l")
    src.remove_items(sequence, 1, 3)
    del seen[id(sequence)][1:]
    assert src.result(seen[id(src.root)]).decode() == after


@pytest.mark.parametrize(
    ("text", "item", "after"),
    [
        ("l:\n- name: a\n", {"name": "-x"}, "l:\n- name: a\n- name: -x\n"),
        ("l:\n- 'name': 'a'\n", {"name": "b"}, "l:\n- 'name': 'a'\n- 'name': 'b'\n"),
        ("l:\n- {}\n", {"name": "b"}, "l:\n- {}\n- name: b\n"),
        ("l: [{name: a}]\n", {"name": "b"}, 'l: [{name: a}, {"name": "b"}]\n'),
        ("l:\n- x", "z", "l:\n- x\n- z"),
    ],
)
def test_an_item_is_written_as_its_sequence_writes_them(text: str, item: Any, after: str) -> None:
    src = source(text)
    seen, _ = expected_of(src)
    sequence = get(src.root, "l")
    src.insert_items(sequence, len(sequence.value), [item])
    new = meaning(compose(f"- {json.dumps(item)}"))[0]
    seen[id(sequence)].append(new)
    assert src.result(seen[id(src.root)]).decode() == after


def test_an_item_whose_dash_a_comment_hides_is_refused() -> None:
    src = source("l:\n- # the first\n  name: a\n")
    with pytest.raises(Refused, match="without its dash"):
        src.insert_items(get(src.root, "l"), 0, ["x"])
