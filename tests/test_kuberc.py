"""shim.kuberc: kubectl's credential-plugin policy, which the shim never widens, with kubectl
1.35 as the oracle of what runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from apiserver import ApiServer, kubeconfig
from helpers import (
    ALLOWLIST,
    HEADER,
    UPDATE_KUBECONFIG_ARGS,
    Shim,
    accepts_fake_tokens,
    in_deleted_dir,
    kubectl,
    kubectl_v35,
    shim_argv,
    shim_path,
    write_kuberc,
)

PLUGIN = """#!/bin/sh
echo "$0" >> {ran}
printf '{{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential",\
"status":{{"token":"k8s-aws-v1.fake-x","expirationTimestamp":"2099-01-01T00:00:00Z"}}}}'
"""

# (kuberc body, the command a kubeconfig names, PATH): {B} and {C} are two directories
# with a `plug` each ({B}/link is a symlink to {B}/plug), the current directory holds B;
# {D}/plug is a directory and {E}/plug a file that is not executable. (Not asked: an
# entry spelt `command:`, kubectl 1.36's name for it, which 1.35 does not know.)
ORACLE_CASES = [
    (ALLOWLIST + "- name: plug\n", "plug", "{B}:{C}"),
    (ALLOWLIST + "- name: {B}/plug\n", "plug", "{B}:{C}"),
    (ALLOWLIST + "- name: plug\n", "{B}/plug", "{B}:{C}"),
    (ALLOWLIST + "- name: plug\n", "{C}/plug", "{B}:{C}"),
    (ALLOWLIST + "- name: {C}/plug\n", "plug", "{B}:{C}"),
    (ALLOWLIST + "- name: plug\n", "plug", "{C}:{B}"),
    (ALLOWLIST + "- name: {B}/plug\n", "plug", "{C}:{B}"),
    (ALLOWLIST + "- name: link\n", "plug", "{B}:{C}"),
    (ALLOWLIST + "- name: {B}/link\n", "link", "{B}:{C}"),
    (ALLOWLIST + "- name: plug\n", "{B}/../B/plug", "{B}:{C}"),
    (ALLOWLIST + "- name: plug\n", "B/plug", "{B}:{C}"),
    (ALLOWLIST + "- name: plug\n", "plug", "B:{C}"),  # relative PATH: Go's exec.ErrDot
    (ALLOWLIST + "- name: {B}/plug\n", "plug", "B"),
    (ALLOWLIST + "- name: plug\n", "plug", ":{C}"),  # an empty PATH entry is "."
    (ALLOWLIST + "- name: missing\n", "missing", "{B}:{C}"),
    (ALLOWLIST + "- name: other\n- name: plug\n", "plug", "{B}:{C}"),
    (ALLOWLIST + "- name: ./plug\n", "plug", "{B}:{C}"),
    (ALLOWLIST + "- name: /{B}/plug\n", "plug", "{B}:{C}"),
    (ALLOWLIST + "- name: {B}/plug/\n", "plug", "{B}:{C}"),
    (ALLOWLIST + '- name: ""\n', "plug", "{B}:{C}"),
    (ALLOWLIST + "- plug\n", "plug", "{B}:{C}"),
    (ALLOWLIST + "- name: plug\n  extra: 1\n", "plug", "{B}:{C}"),
    ("credentialPluginPolicy: Allowlist\ncredentialPluginAllowlist: []\n", "plug", "{B}"),
    ("credentialPluginPolicy: Allowlist\n", "plug", "{B}"),
    (
        "credentialPluginPolicy: allowlist\ncredentialPluginAllowlist:\n- name: plug\n",
        "plug",
        "{B}",
    ),
    ("credentialPluginAllowlist:\n- name: plug\n", "plug", "{B}"),
    ("credentialPluginPolicy: AllowAll\ncredentialPluginAllowlist:\n- name: plug\n", "plug", "{B}"),
    ("credentialPluginPolicy: DenyAll\ncredentialPluginAllowlist:\n- name: plug\n", "plug", "{B}"),
    ("credentialPluginPolicy: DenyAll\n", "plug", "{B}"),
    ("credentialPluginPolicy: AllowAll\n", "plug", "{B}"),
    ("credentialPluginPolicy: ''\n", "plug", "{B}"),
    ("credentialPluginPolicy: Allowlist\ncredentialPluginAllowlist: plug\n", "plug", "{B}"),
    ("credentialPluginPolicy: Allowlist\ncredentialPluginAllowlist: 0\n", "plug", "{B}"),
    ("credentialPluginPolicy:\n", "plug", "{B}"),  # null
    (ALLOWLIST + "- other: plug\n", "plug", "{B}"),
    (ALLOWLIST + "- name: {B}/plug\n", "plug", "{D}:{B}"),  # D/plug: a directory
    (ALLOWLIST + "- name: {B}/plug\n", "plug", "{E}:{B}"),  # E/plug: not executable
]


def outcome(ran: Path, returncode: int, stderr: bytes, refused: tuple[bytes, ...]) -> str:
    """What became of the plugin: it ran (and which file), the policy refused it, or it
    could not be found; anything else is shown whole."""
    if ran.exists():
        which = ran.read_text().split()
        ran.unlink()
        return f"ran {os.path.realpath(which[0])}"
    if any(sign in stderr for sign in refused):
        return "refused"
    if returncode != 0 and b"not found" in stderr:
        return "not found"
    return f"exit {returncode}: {stderr.decode(errors='replace')[-300:]}"


@pytest.mark.real_kubectl
def test_a_kubeconfig_cannot_run_what_the_allowlist_does_not_name_through_the_shim(
    shim: Shim, tmp_path: Path, private_home: Path
) -> None:
    marker = tmp_path / "it-ran"
    anything = tmp_path / "anything"
    anything.write_text(f"#!/bin/sh\ntouch {marker}\n")
    anything.chmod(0o755)
    kuberc = write_kuberc(
        private_home,
        "credentialPluginPolicy: Allowlist\ncredentialPluginAllowlist:\n"
        f"- name: {shim_path()}\n- name: aws\n",
    )
    with ApiServer(accepts_fake_tokens) as api:
        config = tmp_path / "kubeconfig"
        config.write_text(kubeconfig(api, shim_path(), ["--", str(anything)]))
        result = kubectl(shim, config)
        assert result.returncode != 0
        assert not marker.exists()
        stderr = result.stderr.decode()  # kubectl shows the plugin's stderr
        assert f"{kuberc} allows only the credential plugins" in stderr
        assert f"{anything} is not one of them" in stderr
        assert f"add `- name: {anything}`" in stderr
        assert shim.entries() == []
        # What the allowlist names still works through the shim.
        config.write_text(kubeconfig(api, shim_path(), ["--", "aws", *UPDATE_KUBECONFIG_ARGS]))
        allowed = kubectl(shim, config)
        assert allowed.returncode == 0, allowed.stderr.decode()


@pytest.mark.real_kubectl
def test_deny_all_runs_nothing(shim: Shim, tmp_path: Path, private_home: Path) -> None:
    kuberc = write_kuberc(private_home, "credentialPluginPolicy: DenyAll\n")
    with ApiServer(accepts_fake_tokens) as api:
        config = tmp_path / "kubeconfig"
        config.write_text(kubeconfig(api, "aws", UPDATE_KUBECONFIG_ARGS))
        before = config.read_bytes()
        refused = shim.run("kubeconfig", "wrap", "--kubeconfig", str(config), expect=1)
        assert b"DenyAll" in refused.stderr
        assert config.read_bytes() == before
        config.write_text(kubeconfig(api, shim_path(), ["--", "aws", *UPDATE_KUBECONFIG_ARGS]))
        result = kubectl(shim, config)
        assert result.returncode != 0
        assert b'policy set to \\"DenyAll\\"' in result.stderr or b"DenyAll" in result.stderr
    direct = shim.run("-c", "demo", expect=1)  # as a client that knows no policy would run it
    assert f"{kuberc} sets credentialPluginPolicy: DenyAll".encode() in direct.stderr
    assert shim.calls() == []
    assert shim.entries() == []


def test_kuberc_off_or_elsewhere_as_kubectl_reads_it(shim: Shim, private_home: Path) -> None:
    write_kuberc(private_home, "credentialPluginPolicy: DenyAll\n")
    shim.run("-c", "demo", KUBECTL_KUBERC="false")
    assert len(shim.calls()) == 1
    elsewhere = private_home / "other-kuberc"
    elsewhere.write_text(HEADER + "credentialPluginPolicy: AllowAll\n")
    shim.run("--refresh", "-c", "demo", KUBERC=str(elsewhere))
    assert len(shim.calls()) == 2
    shim.run("--refresh", "-c", "demo", expect=1)
    assert len(shim.calls()) == 2


@pytest.mark.parametrize("field", ["name", "command"])
def test_both_entry_spellings_are_read(shim: Shim, private_home: Path, field: str) -> None:
    write_kuberc(
        private_home,
        f"credentialPluginPolicy: Allowlist\ncredentialPluginAllowlist:\n- {field}: aws\n",
    )
    shim.run("-c", "demo")
    assert len(shim.calls()) == 1
    # The backend runs by the path that was checked, with all of its arguments.
    args = ["eks", "get-token", "--cluster-name", "demo", "--output", "json"]
    assert shim.calls()[0]["argv"] == [str(shim.bin / "aws"), *args]
    shim.run("-b", "aws-iam-authenticator", "-c", "demo", expect=1)
    assert len(shim.calls()) == 1


def test_a_path_from_a_deleted_current_directory_is_not_allowed(
    shim: Shim, private_home: Path, tmp_path: Path
) -> None:
    """`bin/aws` names nothing once the directory it is relative to is gone."""
    write_kuberc(private_home, ALLOWLIST + "- name: aws\n")
    here = tmp_path / "here"
    (here / "bin").mkdir(parents=True)
    (here / "bin" / "aws").write_bytes((shim.bin / "aws").read_bytes())
    (here / "bin" / "aws").chmod(0o755)
    result = subprocess.run(
        [*in_deleted_dir(here), *shim_argv(), "--", "bin/aws"],
        env=shim.env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert b"bin/aws is not one of them: it was not run" in result.stderr
    assert shim.calls() == []


def test_the_refusal_names_the_entry_that_would_allow_the_command(
    shim: Shim, private_home: Path
) -> None:
    """The path PATH finds, which is what kubectl compares; the command as written when
    PATH finds nothing."""
    write_kuberc(private_home, ALLOWLIST + "- name: other\n")
    for command, entry in (("aws", str(shim.bin / "aws")), ("not-installed", "not-installed")):
        result = shim.run("--", command, expect=1)
        assert result.stderr.decode().splitlines()[-1] == (
            f"eks-token-shim: hint: to allow it, add `- name: {entry}` to "
            f"credentialPluginAllowlist there"
        )
    assert shim.calls() == []


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (
            "credentialPluginPolicy: Allowlist\n",
            ": credentialPluginPolicy: Allowlist with no credentialPluginAllowlist entries",
        ),
        (
            "credentialPluginPolicy: Allowlist\ncredentialPluginAllowlist: []\n",
            ": credentialPluginPolicy: Allowlist with no credentialPluginAllowlist entries",
        ),
        (
            "credentialPluginPolicy: Allowlist\ncredentialPluginAllowlist:\n- name: ./aws\n",
            ": allowlist entry './aws' is empty or not a normalized path",
        ),
        ("credentialPluginPolicy: Sometimes\n", ": unknown credentialPluginPolicy 'Sometimes'"),
        (ALLOWLIST + "- other: aws\n", ": allowlist entry '' is empty or not a normalized path"),
        (
            "credentialPluginPolicy: [unclosed\n",
            " is not valid YAML (line 4, column 1: expected ',' or ']', but got '<stream end>')",
        ),
        ("- credentialPluginPolicy: DenyAll\n", " is not a mapping"),  # (no header: a list)
    ],
)
def test_a_policy_that_makes_no_sense_fails_closed(
    shim: Shim, private_home: Path, body: str, says: str
) -> None:
    kuberc = write_kuberc(private_home, body)
    if body.startswith("-"):
        kuberc.write_text(body)
    result = shim.run("-c", "demo", expect=1)
    assert result.stderr.decode().splitlines() == [
        f"eks-token-shim: error: kubectl's kuberc {kuberc}{says}"
    ]
    assert shim.calls() == []


def test_a_cached_token_is_served_without_reading_kuberc(shim: Shim, private_home: Path) -> None:
    first = shim.run("-c", "demo").stdout
    kuberc = write_kuberc(private_home, "credentialPluginPolicy: DenyAll\n")
    kuberc.chmod(0)  # were it read, it could not be: a hit never opens it
    assert shim.run("-c", "demo").stdout == first


def test_a_fifo_or_symlink_as_kuberc(shim: Shim, private_home: Path) -> None:
    """A FIFO is a refusal, never a wait; a symlink is followed, as kubectl does."""
    kuberc = private_home / ".kube" / "kuberc"
    kuberc.parent.mkdir()
    os.mkfifo(kuberc)
    result = shim.run("-c", "demo", expect=1, timeout=30)
    assert result.stderr.decode().splitlines() == [
        f"eks-token-shim: error: cannot read kubectl's kuberc {kuberc}: not a regular file"
    ]
    assert shim.calls() == []
    kuberc.unlink()
    kuberc.symlink_to(kuberc)  # a loop: the reason is the system's words
    result = shim.run("-c", "demo", expect=1)
    assert result.stderr.decode().splitlines() == [
        f"eks-token-shim: error: cannot read kubectl's kuberc {kuberc}: "
        "Too many levels of symbolic links"
    ]
    kuberc.unlink()
    target = private_home / "dotfiles-kuberc"
    target.write_text(HEADER + "credentialPluginPolicy: DenyAll\n")
    kuberc.symlink_to(target)
    assert b"DenyAll" in shim.run("-c", "demo", expect=1).stderr
    assert shim.calls() == []


@pytest.mark.real_kubectl
@pytest.mark.parametrize(("body", "command", "path"), ORACLE_CASES)
def test_the_shim_runs_exactly_what_kubectl_1_35_runs(
    shim: Shim, tmp_path: Path, body: str, command: str, path: str
) -> None:
    """kubectl 1.35 is the oracle: with the same kuberc, PATH and current directory, the
    shim runs a backend exactly when kubectl runs that command as a plugin, the same file,
    and refuses where kubectl refuses (an allowlist entry is matched as written, or as the
    same program found on PATH; no symlink is resolved; a policy that makes no sense runs
    nothing; a program found only relative to the current directory is not run)."""
    ran = tmp_path / "ran"
    places = {"B": str(tmp_path / "B"), "C": str(tmp_path / "C")}
    for name in places:
        (tmp_path / name).mkdir()
        (tmp_path / name / "plug").write_text(PLUGIN.format(ran=ran))
        (tmp_path / name / "plug").chmod(0o755)
    (tmp_path / "B" / "link").symlink_to(tmp_path / "B" / "plug")
    places["D"], places["E"] = str(tmp_path / "D"), str(tmp_path / "E")
    (tmp_path / "D" / "plug").mkdir(parents=True)
    (tmp_path / "E").mkdir()
    (tmp_path / "E" / "plug").write_text(PLUGIN.format(ran=ran))
    kuberc = tmp_path / "kuberc"
    kuberc.write_text(HEADER + body.format(**places))
    command = command.format(**places)
    env = {
        **shim.env,
        "KUBERC": str(kuberc),
        "PATH": path.format(**places) + ":/usr/bin:/bin",
    }
    config = tmp_path / "kubeconfig"
    config.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "c",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "users": [
                    {
                        "name": "u",
                        "user": {
                            "exec": {
                                "apiVersion": "client.authentication.k8s.io/v1beta1",
                                "command": command,
                                "interactiveMode": "Never",
                            }
                        },
                    }
                ],
            }
        )
    )
    by_kubectl = subprocess.run(
        [kubectl_v35(), "--kubeconfig", str(config), "get", "--raw", "/version"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
        check=False,
    )
    kubectl_says = outcome(
        ran,
        by_kubectl.returncode,
        by_kubectl.stderr,
        (
            b"not permitted by the credential plugin allowlist",
            b"not allowed: policy set to",
            b"error occurred while applying preferences",
            b"cannot be resolved for credential plugin allowlist check",
        ),
    )
    by_shim = subprocess.run(
        [*shim_argv(), "--", command],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
        check=False,
    )
    shim_says = outcome(ran, by_shim.returncode, by_shim.stderr, (b"kuberc",))
    assert shim_says == kubectl_says, (by_kubectl.stderr.decode(), by_shim.stderr.decode())


@pytest.mark.parametrize("path", [":/usr/bin:/bin", ".:/bin", "rel:/bin"])
def test_a_program_found_only_relative_to_the_current_directory_is_not_run(
    shim: Shim, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    """With no kuberc at all (everyone's default), as kubectl: Go's exec.ErrDot."""
    ran = tmp_path / "ran"
    for directory in (tmp_path, tmp_path / "rel"):
        directory.mkdir(exist_ok=True)
        (directory / "plug").write_text(PLUGIN.format(ran=ran))
        (directory / "plug").chmod(0o755)
    monkeypatch.chdir(tmp_path)
    result = shim.run("--", "plug", env={"PATH": path}, expect=127)
    assert not ran.exists()
    where = "rel/plug" if path.startswith("rel") else "./plug"
    assert f"plug: command not found: the only match is {where}, through a PATH entry".encode() in (
        result.stderr
    )


def test_the_home_kubectl_reads_on_windows_is_client_go_s(tmp_path: Path) -> None:
    """client-go's homedir.HomeDir on Windows (Git Bash sets HOME; Windows sets HOMEDRIVE,
    HOMEPATH and USERPROFILE): first the one that holds .kube/config, in the order HOME,
    HOMEDRIVE+HOMEPATH, USERPROFILE; then the first writable directory, in the order
    HOME, USERPROFILE, HOMEDRIVE+HOMEPATH; then the first that exists; then the first set."""
    from shim.kuberc import windows_home

    home, drive_path, profile = (tmp_path / name for name in ("git-home", "drive-path", "profile"))
    env = {
        "HOME": str(home),
        "HOMEDRIVE": str(tmp_path),
        "HOMEPATH": "/drive-path",
        "USERPROFILE": str(profile),
    }
    assert windows_home(env) == str(home)  # none exists: the first set
    profile.mkdir()
    drive_path.mkdir()
    assert windows_home(env) == str(profile)  # the first writable directory, HOME missing
    for place in (profile, drive_path):
        (place / ".kube").mkdir()
        (place / ".kube" / "config").write_text("")
    assert windows_home(env) == str(drive_path)  # holds a config, before USERPROFILE
    home.mkdir()
    assert windows_home(env) == str(drive_path)  # HOME holds none
    (home / ".kube").mkdir()
    (home / ".kube" / "config").write_text("")
    assert windows_home(env) == str(home)
    assert windows_home({**env, "HOMEPATH": ""}) == str(home)  # (a drive alone is no path)


def test_kubectl_s_home_is_the_given_environment_s_else_the_account_s(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from shim.kuberc import kube_home

    if sys.platform == "win32":
        pytest.skip("Windows chooses among HOME, HOMEDRIVE+HOMEPATH and USERPROFILE")
    monkeypatch.setenv("HOME", "/our/own")
    assert kube_home({"HOME": "/the/backend/s"}) == "/the/backend/s"
    assert kube_home({"HOME": ""}) == "/our/own"  # (empty: as unset)
    assert kube_home({}) == "/our/own"
