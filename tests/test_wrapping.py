"""shim.wrapping: one user's exec section wrapped in the shim, and given back byte for byte."""

from __future__ import annotations

from typing import Any

import pytest

from shim.wrapping import (
    Allowed,
    Wrap,
    exec_section,
    find_record,
    resolved_command,
    runs_shim,
    wrapped,
    wraps_eks,
)
from shim.yamltext import Node, Refused, Source, compose, get, meaning

USER = """\
name: demo
user:
  exec:
    apiVersion: client.authentication.k8s.io/v1beta1
    command: {command}
{args}{cluster_info}"""
KUBECONFIG = "/home/u/.kube/config"


def edit(text: str) -> tuple[Source, dict[int, Any], Node]:
    src = Source(text.encode())
    expected: dict[int, Any] = {}
    meaning(src.root, expected)
    return src, expected, src.root


def wrap_text(text: str, allowed: Allowed | None = None) -> tuple[str, Any]:
    src, expected, item = edit(text)
    change = Wrap(src, expected).wrap(
        get(item, "user"), exec_section(item), "/opt/shim", KUBECONFIG, allowed
    )
    return src.result(expected[id(src.root)]).decode(), change


def unwrap_text(text: str) -> tuple[str, Any]:
    src, expected, item = edit(text)
    user = get(item, "user")
    found = find_record(user)
    record = (user, *found) if found is not None else None
    change = Wrap(src, expected).unwrap(exec_section(item), record, KUBECONFIG)
    return src.result(expected[id(src.root)]).decode(), change


@pytest.mark.parametrize(
    "args",
    [
        "",
        "    args: [eks, get-token, --cluster-name, c]\n",
        "    args:\n    - eks\n    - get-token\n",
        "    args:\n      - token\n      - -i\n      - c\n",
        "    args: []\n",
        "    args:\n",
        "    args: null\n",
    ],
)
@pytest.mark.parametrize(
    "cluster_info",
    [
        "",
        "    provideClusterInfo: false\n",
        "    provideClusterInfo: true\n",
        "    provideClusterInfo: no\n",
    ],
)
@pytest.mark.parametrize("command", ["aws", '"aws"', "'aws'", "./bin/aws"])
def test_unwrap_gives_back_the_bytes_wrap_found(args: str, cluster_info: str, command: str) -> None:
    text = USER.format(command=command, args=args, cluster_info=cluster_info)
    allowed = Allowed("/home/u/.kube/kuberc", "/opt/shim")
    after, change = wrap_text(text, allowed)
    program = resolved_command(meaning(compose(command))[1], KUBECONFIG)
    item = compose(after)
    section = exec_section(item)
    assert wrapped(section)
    words = [node.value for node in get(section, "args").value]
    assert words[:2] == ["--", program]
    assert get(section, "command").value == "/opt/shim"
    assert meaning(get(section, "provideClusterInfo")) == ("tag:yaml.org,2002:bool", "true")
    assert (
        change.after
        == f"/opt/shim -- {program}" + change.before[len(meaning(compose(command))[1]) :]
    )
    back, undone = unwrap_text(after)
    assert back == text
    assert (undone.before, undone.allowed) == (change.after, allowed)


def test_a_relative_command_runs_from_the_kubeconfig_directory_after_wrap() -> None:
    assert resolved_command("./bin/aws", "/k/config") == "/k/bin/aws"
    assert resolved_command("bin/aws", "/k/sub/../config") == "/k/bin/aws"
    assert resolved_command("aws", "/k/config") == "aws"  # looked up on PATH, as kubectl does
    assert resolved_command("/usr/bin/aws", "/k/config") == "/usr/bin/aws"


def test_a_command_changed_after_wrap_is_the_one_unwrap_gives_back() -> None:
    after, _ = wrap_text(USER.format(command="aws", args="    args: [eks]\n", cluster_info=""))
    edited = after.replace("[--, aws, eks]", "[--, /usr/local/bin/aws, eks]")
    back, _ = unwrap_text(edited)
    assert "command: /usr/local/bin/aws\n" in back
    assert "args: [eks]\n" in back


def test_unwrap_without_a_record_gives_back_the_command_and_args() -> None:
    text = "name: u\nuser:\n  exec:\n    command: /opt/shim\n    args: [-v, --, aws, eks]\n"
    back, change = unwrap_text(text)
    assert back == "name: u\nuser:\n  exec:\n    command: aws\n    args: [eks]\n"
    assert (change.after, change.allowed) == ("aws eks", None)


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ("command: aws\nargs: [eks, get-token, --cluster-name, c]\n", (True, False, False)),
        ("command: kubelogin\nargs: [get-token]\n", (False, False, False)),
        ("command: /x/shim\nargs: ['--', aws]\n", (False, True, True)),
        ("command: /x/shim\nargs: [-v, --max-age, '60', --, aws]\n", (False, True, True)),
        ("command: /x/eks-get-token-use-cache\nargs: [--, aws]\n", (False, True, True)),
        ("command: eks-get-token-use-cache\nargs: [-c, demo]\n", (False, False, True)),
        ("command: /x/shim\nargs: [--]\n", (False, False, True)),
    ],
)
def test_the_shim_is_recognised_under_both_names_with_its_options(
    section: str, expected: tuple[bool, bool, bool]
) -> None:
    node = compose(section)
    assert (wraps_eks(node), wrapped(node), runs_shim(node)) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("name: u\nuser:\n  exec:\n    command: aws\n    args: eks\n", "args are not a list"),
        (
            "base: &b {command: aws}\nname: u\nuser:\n  exec:\n    <<: *b\n    args: [eks]\n",
            "comes from a YAML merge",
        ),
        ("name: u\nuser:\n  exec:\n    command: &c aws\n    args: [eks]\n", "anchor or tag"),
        ("name: u\nuser:\n  exec:\n    command: |\n      aws\n    args: [eks]\n", "block scalar"),
        ("name: u\nuser:\n  extensions: {}\n  exec:\n    command: aws\n", "not a list"),
    ],
)
def test_what_cannot_be_edited_safely_is_refused_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(Refused, match=reason):
        wrap_text(text)


@pytest.mark.parametrize(
    "extensions",
    [
        "  extensions:\n  - name: other\n    extension: {a: 1}\n",
        "  extensions: [{name: other, extension: {}}]\n",
    ],
)
def test_the_record_goes_first_among_the_users_own_extensions_and_leaves_them(
    extensions: str,
) -> None:
    text = "name: demo\nuser:\n" + extensions + "  exec:\n    command: aws\n    args: [eks]\n"
    after, _ = wrap_text(text)
    user = get(compose(after), "user")
    names = [get(item, "name").value for item in get(user, "extensions").value]
    assert names == ["eks-token-shim", "other"]
    back, _ = unwrap_text(after)
    assert back == text


@pytest.mark.parametrize("extensions", ["", " null", " ~", " []", " [ ]"])
def test_a_null_or_empty_extensions_entry_takes_the_record_and_comes_back(
    extensions: str,
) -> None:
    text = f"name: demo\nuser:\n  extensions:{extensions}\n  exec:\n    command: aws\n"
    after, _ = wrap_text(text)
    user = get(compose(after), "user")
    names = [get(item, "name").value for item in get(user, "extensions").value]
    assert names == ["eks-token-shim"]
    back, _ = unwrap_text(after)
    assert back == text


@pytest.mark.parametrize(
    "section",
    ["    args: [eks]\n", "    command:\n    args: [eks]\n", "    command: [aws]\n"],
)
def test_an_exec_section_without_a_command_is_refused(section: str) -> None:
    with pytest.raises(Refused, match="no command"):
        wrap_text("name: u\nuser:\n  exec:\n" + section)


def test_unwrap_refuses_a_section_that_does_not_run_the_shim() -> None:
    with pytest.raises(Refused, match="it does not run the shim"):
        unwrap_text("name: u\nuser:\n  exec:\n    command: aws\n    args: [eks]\n")


def test_unwrap_refuses_a_command_that_comes_from_a_merge() -> None:
    text = (
        "base: &b {command: /opt/shim}\n"
        "name: u\nuser:\n  exec:\n    <<: *b\n    args: [--, aws, eks]\n"
    )
    with pytest.raises(Refused, match="its `command` comes from a YAML merge"):
        unwrap_text(text)


def test_a_record_without_the_text_of_provide_cluster_info_gives_back_its_value() -> None:
    """A record written by hand (or cut short) with the value alone: that value, written
    in the file's style."""
    text = (
        "name: u\nuser:\n"
        '  extensions: [{"name": "eks-token-shim", "extension": {"hadArgs": true,'
        ' "commandText": "aws", "provideClusterInfo": false}}]\n'
        "  exec:\n    provideClusterInfo: true\n    command: /opt/shim\n    args: [--, aws, eks]\n"
    )
    back, _ = unwrap_text(text)
    assert back == (
        "name: u\nuser:\n  exec:\n    provideClusterInfo: false\n    command: aws\n"
        "    args: [eks]\n"
    )
