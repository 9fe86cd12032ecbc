"""shim.allowlist: kubectl's allowlist edited in step with wrap and unwrap."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import ALLOWLIST, HEADER

from shim import allowlist, yamlfile
from shim.errors import ShimError
from shim.kuberc import Kuberc, policy_of
from shim.wrapping import Allowed


def users(*commands: str) -> list[object]:
    """kubeconfig users[] items whose exec runs `commands`, as round-trip nodes."""
    text = "".join(
        f"- name: u{at}\n  user:\n    exec:\n      command: {command}\n"
        for at, command in enumerate(commands)
    )
    return list(yamlfile.parse(text))


def policy(tmp_path: Path, body: str) -> Kuberc:
    path, document = str(tmp_path / "kuberc"), yamlfile.parse(HEADER + body)
    return Kuberc(path, document, policy_of(document, path))


def test_wrap_adds_the_shim_where_the_allowlist_allows_what_it_wraps(tmp_path: Path) -> None:
    (tmp_path / "aws").touch(mode=0o755)
    kuberc = policy(tmp_path, ALLOWLIST + f"- name: {tmp_path}/aws\n")
    env = {"PATH": str(tmp_path)}
    added = allowlist.entry_to_add(kuberc, users("aws"), "/opt/shim", env)
    assert added == Allowed(kuberc.path, "/opt/shim")
    assert allowlist.entry_to_add(kuberc, users("other"), "/opt/shim", env) is None
    assert allowlist.entry_to_add(None, users("aws"), "/opt/shim", env) is None


def test_deny_all_is_an_error_before_anything_is_edited(tmp_path: Path) -> None:
    kuberc = policy(tmp_path, "credentialPluginPolicy: DenyAll\n")
    with pytest.raises(ShimError, match="DenyAll: kubectl runs no credential plugin"):
        allowlist.entry_to_add(kuberc, users("aws"), "/opt/shim", {})


@pytest.mark.parametrize(
    ("entries", "field"),
    [("- name: a\n", "name"), ("- command: a\n", "command"), ("- name: a\n- command: b\n", "name")],
)
def test_an_entry_is_spelt_as_the_file_spells_its_entries(entries: str, field: str) -> None:
    document = yamlfile.parse(HEADER + ALLOWLIST + entries)
    allowlist.add_entry(document, "/opt/shim")
    assert yamlfile.dump(document).decode().endswith(f"- {field}: /opt/shim\n")


def test_remove_takes_out_the_last_entry_naming_exactly_the_program() -> None:
    document = yamlfile.parse(ALLOWLIST + "- name: /x\n- name: /opt/shim\n- name: /opt/shim\n")
    assert allowlist.remove_entry(document, "/opt/shim")
    assert yamlfile.dump(document).decode() == ALLOWLIST + "- name: /x\n- name: /opt/shim\n"
    assert not allowlist.remove_entry(document, "/opt/shi")
