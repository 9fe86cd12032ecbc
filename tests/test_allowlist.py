"""shim.allowlist: kubectl's allowlist edited in step with wrap and unwrap."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import ALLOWLIST, HEADER

from shim import allowlist
from shim.errors import ShimError
from shim.kuberc import Kuberc, policy_of
from shim.wrapping import Allowed
from shim.yamltext import Source, meaning, parse


def policy(tmp_path: Path, body: str) -> Kuberc:
    path, document = str(tmp_path / "kuberc"), parse(HEADER + body)
    return Kuberc(path, document, policy_of(document, path))


def test_wrap_adds_the_shim_where_the_allowlist_allows_what_it_wraps(tmp_path: Path) -> None:
    (tmp_path / "aws").touch(mode=0o755)
    kuberc = policy(tmp_path, ALLOWLIST + f"- name: {tmp_path}/aws\n")
    env = {"PATH": str(tmp_path)}
    added = allowlist.entry_to_add(kuberc, ["aws"], "/opt/shim", env)
    assert added == Allowed(kuberc.path, "/opt/shim")
    assert allowlist.entry_to_add(kuberc, ["other"], "/opt/shim", env) is None
    assert allowlist.entry_to_add(None, ["aws"], "/opt/shim", env) is None


def test_deny_all_is_an_error_before_anything_is_edited(tmp_path: Path) -> None:
    kuberc = policy(tmp_path, "credentialPluginPolicy: DenyAll\n")
    with pytest.raises(ShimError, match="DenyAll: kubectl runs no credential plugin"):
        allowlist.entry_to_add(kuberc, ["aws"], "/opt/shim", {})


@pytest.mark.parametrize(
    ("entries", "field"),
    [("- name: a\n", "name"), ("- command: a\n", "command"), ("- name: a\n- command: b\n", "name")],
)
def test_an_entry_is_spelt_as_the_file_spells_its_entries(entries: str, field: str) -> None:
    src = Source((HEADER + ALLOWLIST + entries).encode())
    expected: dict[int, Any] = {}
    meaning(src.root, expected)
    allowlist.add_entry(src, expected, "/opt/shim")
    after = src.result(expected[id(src.root)]).decode()
    assert after == HEADER + ALLOWLIST + entries + f"- {field}: /opt/shim\n"


def test_remove_takes_out_the_last_entry_naming_exactly_the_program() -> None:
    text = ALLOWLIST + "- name: /x\n- name: /opt/shim\n- {name: /opt/shim}  # mine\n"
    src = Source(text.encode())
    expected: dict[int, Any] = {}
    meaning(src.root, expected)
    assert allowlist.remove_entry(src, expected, "/opt/shim")
    assert not allowlist.remove_entry(src, expected, "/opt/shi")
    assert (
        src.result(expected[id(src.root)]).decode() == ALLOWLIST + "- name: /x\n- name: /opt/shim\n"
    )
