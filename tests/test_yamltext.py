"""shim.yamltext: YAML edited as text, every byte outside the edit kept, the result checked."""

from __future__ import annotations

from typing import Any

import pytest

from shim.yamltext import Refused, Source, YamlError, compose, get, meaning, parse


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
