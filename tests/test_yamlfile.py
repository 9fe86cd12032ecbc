"""shim.yamlfile: YAML files read, and written back atomically, byte for byte where unedited."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from shim import yamlfile

KUBECONFIG = """\
apiVersion: v1
# a comment the user wrote
users:
- name: 'quoted'   # and one here
  user: {token: "t"}
"""


def test_an_unedited_document_is_written_back_as_it_was_read(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(KUBECONFIG)
    path.chmod(0o640)
    document = yamlfile.load(str(path))
    yamlfile.write(str(path), document, backup=False)
    assert path.read_text() == KUBECONFIG
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert not (tmp_path / ("config" + yamlfile.BACKUP_SUFFIX)).exists()


def test_the_backup_holds_the_file_before_the_first_edit(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(KUBECONFIG)
    document = yamlfile.load(str(path))
    document["users"][0]["name"] = "edited"
    yamlfile.write(str(path), document, backup=True)
    document["users"][0]["name"] = "again"
    yamlfile.write(str(path), document, backup=True)
    backup = tmp_path / ("config" + yamlfile.BACKUP_SUFFIX)
    assert backup.read_text() == KUBECONFIG
    assert "- name: 'again'" in path.read_text()  # (the quoting the file had)


def test_a_symlink_is_followed_and_stays_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "real"
    target.write_text(KUBECONFIG)
    link = tmp_path / "link"
    link.symlink_to(target)
    yamlfile.write(str(link), yamlfile.load(str(link)), backup=False)
    assert link.is_symlink()
    assert target.read_text() == KUBECONFIG


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"a: [", "while parsing a flow node"),
        (b"a: b\na: c\n", "while constructing a mapping"),
        (b"\xff\xfe", "'utf-8' codec can't decode byte 0xff in position 0: invalid start byte"),
        (b"[" * 100000, "nested too deeply"),
    ],
)
def test_what_is_not_yaml_is_one_error_that_says_why(
    tmp_path: Path, data: bytes, reason: str
) -> None:
    path = tmp_path / "config"
    path.write_bytes(data)
    with pytest.raises(yamlfile.YamlError) as error:
        yamlfile.load(str(path))
    assert error.value.reason == reason
