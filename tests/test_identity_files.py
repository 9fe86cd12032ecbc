"""An identity switched in a file is never served the old token: the AWS config and
credentials files, gcloud's active configuration, the Azure CLI's profile, --key-file."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from helpers import HANG_GUARD, Shim, age, queued_on, token_of

CREDENTIALS = "[default]\naws_access_key_id = AKIAEXAMPLEEXAMPLE12\n"
SWITCHED = "[default]\naws_access_key_id = AKIANEWIDENTITY99999\n"  # the same size


def credentials(home: Path) -> Path:
    path = home / ".aws" / "credentials"
    path.parent.mkdir(exist_ok=True)
    return path


def test_unchanged_identity_files_leave_the_entry_served(shim: Shim, private_home: Path) -> None:
    credentials(private_home).write_text(CREDENTIALS)
    first = shim.run("-c", "demo")
    assert shim.run("-c", "demo").stdout == first.stdout
    assert len(shim.calls()) == 1


@pytest.mark.parametrize("how", ["in place", "replaced", "created", "removed"])
def test_a_credentials_file_that_changed_makes_the_next_call_a_miss(
    shim: Shim, private_home: Path, how: str
) -> None:
    path = credentials(private_home)
    if how != "created":
        path.write_text(CREDENTIALS)
    first = shim.run("-c", "demo")
    if how == "in place":  # as `aws configure set` does: the same file, the same size
        with open(path, "r+") as file:
            file.write(SWITCHED)
    elif how == "replaced":  # as tools that write a temp file and rename it do
        (path.parent / "new").write_text(SWITCHED)
        os.replace(path.parent / "new", path)
    elif how == "created":
        path.write_text(SWITCHED)
    else:
        path.unlink()
    second = shim.run("-c", "demo")
    assert token_of(second.stdout) != token_of(first.stdout)
    assert shim.run("-c", "demo").stdout == second.stdout  # then cached again
    assert len(shim.calls()) == 2


def test_a_file_that_changes_while_the_backend_runs_is_a_miss_next_time(
    shim: Shim, private_home: Path
) -> None:
    path = credentials(private_home)
    path.write_text(CREDENTIALS)
    shim.run("-c", "demo", FAKE_TOUCH=str(path))
    shim.run("-c", "demo")
    assert len(shim.calls()) == 2  # the state before the run was recorded, not after


def test_after_an_identity_change_a_failing_refresh_serves_no_stale_token(
    shim: Shim, private_home: Path
) -> None:
    path = credentials(private_home)
    path.write_text(CREDENTIALS)
    shim.run("-c", "demo")
    age(shim, 840 - 30)  # 30 s left: a failed refresh would serve it, for the same identity
    served = shim.run("-c", "demo", FAKE_MODE="fail")
    assert b"serving the cached credential" in served.stderr
    path.write_text(SWITCHED)
    result = shim.run("-c", "demo", FAKE_MODE="fail", expect=3)
    assert result.stdout == b""
    assert b"ExpiredToken" in result.stderr


@pytest.mark.parametrize(
    ("variables", "file"),
    [
        ({"AWS_CONFIG_FILE": "{tmp}/aws-config"}, "{tmp}/aws-config"),
        ({"AWS_SHARED_CREDENTIALS_FILE": "{tmp}/creds"}, "{tmp}/creds"),
        ({}, "{home}/.aws/config"),
        ({}, "{home}/.config/gcloud/active_config"),
        ({}, "{home}/.config/gcloud/configurations/config_default"),
        ({"CLOUDSDK_CONFIG": "{tmp}/g"}, "{tmp}/g/configurations/config_default"),
        (
            {"CLOUDSDK_CONFIG": "{tmp}/g", "CLOUDSDK_ACTIVE_CONFIG_NAME": "work"},
            "{tmp}/g/configurations/config_work",
        ),
        ({}, "{home}/.azure/azureProfile.json"),
        ({"AZURE_CONFIG_DIR": "{tmp}/az"}, "{tmp}/az/clouds.config"),
        ({"EKS_SHIM_KEY_FILE": "{tmp}/a" + os.pathsep + "{tmp}/b"}, "{tmp}/b"),
    ],
)
def test_each_identity_file_is_watched(
    shim: Shim, private_home: Path, tmp_path: Path, variables: dict[str, str], file: str
) -> None:
    def filled(text: str) -> str:
        return text.format(tmp=tmp_path, home=private_home)

    env = {name: filled(value) for name, value in variables.items()}
    path = Path(filled(file))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("before\n")
    shim.run("-c", "demo", env=env)
    shim.run("-c", "demo", env=env)
    assert len(shim.calls()) == 1
    path.write_text("after!\n")
    shim.run("-c", "demo", env=env)
    assert len(shim.calls()) == 2


def test_gcloud_switching_its_active_configuration_is_a_miss(
    shim: Shim, private_home: Path
) -> None:
    gcloud = private_home / ".config" / "gcloud"
    (gcloud / "configurations").mkdir(parents=True)
    (gcloud / "configurations" / "config_work").write_text("[core]\naccount = a@example.com\n")
    (gcloud / "active_config").write_text("work")
    shim.run("-c", "demo")
    (gcloud / "configurations" / "config_work").write_text("[core]\naccount = b@example.com\n")
    shim.run("-c", "demo")  # the properties of the configuration active_config names
    assert len(shim.calls()) == 2


def test_key_file_on_the_command_line_wins_over_its_variable(shim: Shim, tmp_path: Path) -> None:
    flag, variable = tmp_path / "flag", tmp_path / "variable"
    shim.run("-c", "demo", "--key-file", str(flag), EKS_SHIM_KEY_FILE=str(variable))
    variable.write_text("ignored\n")
    shim.run("-c", "demo", "--key-file", str(flag), EKS_SHIM_KEY_FILE=str(variable))
    assert len(shim.calls()) == 1
    flag.write_text("watched\n")
    shim.run("-c", "demo", "--key-file", str(flag), EKS_SHIM_KEY_FILE=str(variable))
    assert len(shim.calls()) == 2


def test_key_files_are_part_of_the_key(shim: Shim, tmp_path: Path) -> None:
    shim.run("-c", "demo")
    shim.run("-c", "demo", "--key-file", str(tmp_path / "x"))
    shim.run("-c", "demo", "--key-file", str(tmp_path / "x"))
    assert len(shim.calls()) == 2
    assert len(shim.entries()) == 2


def test_an_empty_key_file_is_a_usage_error(shim: Shim) -> None:
    result = shim.run("-c", "demo", "--key-file", "", expect=2)
    assert b"--key-file takes a path, not an empty string" in result.stderr
    assert shim.calls() == []


def test_a_relative_key_file_is_taken_from_the_current_directory(
    shim: Shim, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
    for name in ("one", "two"):
        monkeypatch.chdir(tmp_path / name)
        shim.run("-c", "demo", "--key-file", "identity")
    assert len(shim.entries()) == 2  # two files, two keys


def test_a_call_that_waited_gets_no_outcome_fetched_before_an_identity_change(
    shim: Shim, private_home: Path
) -> None:
    """A fetch that began before the credentials file changed may sign with the old key:
    a call that began after the change does not take its outcome, but fetches its own."""
    path = credentials(private_home)
    path.write_text(CREDENTIALS)
    gate = private_home / "gate"
    holder = shim.popen("-c", "demo", FAKE_GATE=str(gate))
    deadline = time.monotonic() + HANG_GUARD
    while not list(shim.cache_dir.glob("*.sock")):
        assert time.monotonic() < deadline, "the holder never listened"
        time.sleep(0.02)
    path.write_text(SWITCHED)
    waiter = shim.popen("-c", "demo")
    (socket,) = shim.cache_dir.glob("*.sock")
    while queued_on(socket) != 1:
        assert time.monotonic() < deadline, "the waiter never queued"
        time.sleep(0.02)
    gate.touch()
    held, _ = holder.communicate(timeout=HANG_GUARD)
    waited, _ = waiter.communicate(timeout=HANG_GUARD)
    assert (holder.returncode, waiter.returncode) == (0, 0)
    assert token_of(waited) != token_of(held)
    assert len(shim.calls()) == 2
