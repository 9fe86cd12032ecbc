"""End to end: `shim kubeconfig wrap|unwrap`, with kubectl's allowlist kept in step."""

from __future__ import annotations

import contextlib
import json
import os
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from apiserver import ApiServer, kubeconfig
from helpers import (
    ALLOWLIST,
    HEADER,
    UPDATE_KUBECONFIG_ARGS,
    Mount,
    Shim,
    accepts_fake_tokens,
    kubectl,
    kubectl_v35,
    kubectl_version,
    require_tool,
    shim_argv,
    shim_path,
    write_kuberc,
)
from ruamel.yaml import YAML

# The way `aws eks update-kubeconfig` writes a kubeconfig (awscli customizations/eks).
UPDATE_KUBECONFIG = """\
apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: {ca}
    server: {server}
  name: arn:aws:eks:us-east-1:123456789012:cluster/demo
contexts:
- context:
    cluster: arn:aws:eks:us-east-1:123456789012:cluster/demo
    user: arn:aws:eks:us-east-1:123456789012:cluster/demo
  name: arn:aws:eks:us-east-1:123456789012:cluster/demo
current-context: arn:aws:eks:us-east-1:123456789012:cluster/demo
kind: Config
preferences: {{}}
users:
- name: arn:aws:eks:us-east-1:123456789012:cluster/demo
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      args:
      - --region
      - us-east-1
      - eks
      - get-token
      - --cluster-name
      - demo
      - --output
      - json
      command: aws
      env:
      - name: AWS_PROFILE
        value: dev
"""

OTHER_USERS = """\
apiVersion: v1
kind: Config
contexts:
- name: gke
  context: {cluster: gke, user: gke-user}
- name: staging
  context: {cluster: staging, user: staging-user}
users:
# a comment the user wrote
- name: gke-user
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: gke-gcloud-auth-plugin
      provideClusterInfo: true
- name: staging-user
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: aws-iam-authenticator
      args: ["token", "-i", "staging"]
      provideClusterInfo: false
      interactiveMode: Never
      env:
      - name: NOTE
        value: a value with spaces that runs past eighty columns, which YAML writers fold by default
"""


def kubeconfig_cmd(shim: Shim, *args: str, expect: int = 0) -> subprocess.CompletedProcess[bytes]:
    return shim.run("kubeconfig", *args, expect=expect)


def exec_sections(kubectl: str, env: dict[str, str]) -> dict[str, Any]:
    """users[].user.exec as kubectl itself reads them (every file in $KUBECONFIG merged)."""
    out = subprocess.run(
        [kubectl, "config", "view", "--raw", "-o", "json"], env=env, capture_output=True, check=True
    ).stdout
    return {user["name"]: user["user"].get("exec") for user in json.loads(out)["users"]}


@pytest.fixture
def files(tmp_path: Path, shim: Shim) -> list[Path]:
    eks, other = tmp_path / "eks.yaml", tmp_path / "other.yaml"
    eks.write_text(UPDATE_KUBECONFIG.format(ca="LS0tLS1CRUdJTg==", server="https://eks.example"))
    other.write_text(OTHER_USERS)
    eks.chmod(0o600)
    other.chmod(0o640)
    shim.env["KUBECONFIG"] = f"{eks}{os.pathsep}{other}"
    return [eks, other]


@pytest.mark.real_kubectl
def test_wrap_puts_the_shim_before_the_original_argv_and_unwrap_restores_it(
    shim: Shim, files: list[Path]
) -> None:
    kubectl = require_tool("kubectl")
    before = exec_sections(kubectl, shim.env)
    result = kubeconfig_cmd(shim, "wrap")
    assert result.returncode == 0, result.stderr
    assert b"changed 2 users in 2 files" in result.stdout
    after = exec_sections(kubectl, shim.env)
    eks = after["arn:aws:eks:us-east-1:123456789012:cluster/demo"]
    assert eks["command"] == shim_argv()[0]
    assert os.path.isabs(eks["command"])
    assert eks["args"] == [
        "--",
        "aws",
        "--region",
        "us-east-1",
        "eks",
        "get-token",
        "--cluster-name",
        "demo",
        "--output",
        "json",
    ]
    assert eks["provideClusterInfo"] is True
    assert eks["env"] == [{"name": "AWS_PROFILE", "value": "dev"}]
    assert after["staging-user"]["args"][:2] == ["--", "aws-iam-authenticator"]
    assert after["staging-user"]["interactiveMode"] == "Never"
    assert after["gke-user"] == before["gke-user"]  # not an EKS plugin: untouched
    assert kubeconfig_cmd(shim, "unwrap").returncode == 0
    assert exec_sections(kubectl, shim.env) == before


def test_wrap_then_unwrap_gives_back_the_same_bytes(shim: Shim, files: list[Path]) -> None:
    originals = [path.read_bytes() for path in files]
    assert kubeconfig_cmd(shim, "wrap").returncode == 0
    assert b"# a comment the user wrote" in files[1].read_bytes()
    assert kubeconfig_cmd(shim, "unwrap").returncode == 0
    assert [path.read_bytes() for path in files] == originals


def test_wrap_twice_is_wrap_once(shim: Shim, files: list[Path]) -> None:
    kubeconfig_cmd(shim, "wrap")
    once = [path.read_bytes() for path in files]
    again = kubeconfig_cmd(shim, "wrap")
    assert again.returncode == 0
    assert again.stdout.strip() == b"nothing to wrap"
    assert [path.read_bytes() for path in files] == once


def test_modes_are_kept_and_one_backup_holds_the_state_before_the_first_wrap(
    shim: Shim, files: list[Path]
) -> None:
    originals = [path.read_bytes() for path in files]
    kubeconfig_cmd(shim, "wrap")
    assert [stat.S_IMODE(path.stat().st_mode) for path in files] == [0o600, 0o640]
    backups = [path.with_name(path.name + ".eks-token-shim.bak") for path in files]
    assert [backup.read_bytes() for backup in backups] == originals
    assert [stat.S_IMODE(backup.stat().st_mode) for backup in backups] == [0o600, 0o640]
    kubeconfig_cmd(shim, "unwrap")
    files[0].write_text(files[0].read_text().replace("us-east-1", "eu-west-1"))
    kubeconfig_cmd(shim, "wrap")
    assert backups[0].read_bytes() == originals[0]  # still the state before the first wrap


@pytest.mark.parametrize("content", [b"", b"# nothing yet\n"])
def test_an_empty_kubeconfig_has_nothing_to_wrap(
    shim: Shim, tmp_path: Path, content: bytes
) -> None:
    config = tmp_path / "config"
    config.write_bytes(content)
    for command in ("wrap", "unwrap"):
        result = kubeconfig_cmd(shim, command, "--kubeconfig", str(config))
        assert result.stdout.strip() == f"nothing to {command}".encode()
    assert config.read_bytes() == content


def test_dry_run_prints_and_writes_nothing(shim: Shim, files: list[Path]) -> None:
    originals = [path.read_bytes() for path in files]
    result = kubeconfig_cmd(shim, "wrap", "--dry-run")
    assert result.returncode == 0
    lines = result.stdout.decode().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith(f"would wrap: {files[0]}: context arn:aws:eks:")
    assert "aws --region us-east-1 eks get-token" in lines[0]
    assert " -> " in lines[0]
    assert lines[-1] == "would change 2 users in 2 files"
    assert [path.read_bytes() for path in files] == originals
    assert not list(files[0].parent.glob("*.bak"))


def test_context_selects_one_user_in_the_file_that_defines_it(
    shim: Shim, files: list[Path]
) -> None:
    result = kubeconfig_cmd(shim, "wrap", "--context", "staging")
    assert result.returncode == 0
    assert b"changed 1 user in 1 file" in result.stdout
    assert b"shim" in files[1].read_bytes()
    assert b"command: aws\n" in files[0].read_bytes()
    named = kubeconfig_cmd(shim, "wrap", "--context", "gke")  # any exec plugin, when named
    assert b"gke-gcloud-auth-plugin" in named.stdout
    missing = kubeconfig_cmd(shim, "wrap", "--context", "nope", expect=1)
    assert b"context 'nope'" in missing.stderr


def test_provide_cluster_info_is_restored_as_it_was(shim: Shim, files: list[Path]) -> None:
    kubeconfig_cmd(shim, "wrap")
    text = files[1].read_text()
    assert text.count("provideClusterInfo: true") == 2
    kubeconfig_cmd(shim, "unwrap")
    assert "provideClusterInfo: false" in files[1].read_text()
    assert "provideClusterInfo" not in files[0].read_text()


@pytest.mark.parametrize("broken", ["users: [\n  - name: x\n", "{{{", "- just\n- a list\n"])
def test_a_file_that_does_not_parse_is_left_untouched(
    shim: Shim, files: list[Path], broken: str
) -> None:
    files[1].write_text(broken)
    originals = [path.read_bytes() for path in files]
    result = kubeconfig_cmd(shim, "wrap", expect=1)
    assert str(files[1]).encode() in result.stderr
    assert b"nothing was changed" in result.stderr
    assert b"Traceback" not in result.stderr
    assert [path.read_bytes() for path in files] == originals


def test_explicit_kubeconfig_and_a_symlink(shim: Shim, files: list[Path], tmp_path: Path) -> None:
    link = tmp_path / "config-link"
    link.symlink_to(files[0])
    assert kubeconfig_cmd(shim, "wrap", "--kubeconfig", str(link)).returncode == 0
    assert link.is_symlink()
    assert b"eks-token-shim" in files[0].read_bytes()
    assert b"eks-token-shim" not in files[1].read_bytes()


@pytest.mark.real_kubectl
def test_wrapped_kubectl_calls_the_backend_once(shim: Shim, tmp_path: Path) -> None:
    import base64

    kubectl = require_tool("kubectl")
    with ApiServer(lambda token: token.startswith("k8s-aws-v1.fake-")) as api:
        config = tmp_path / "config"
        config.write_text(
            UPDATE_KUBECONFIG.format(ca=base64.b64encode(api.ca_pem).decode(), server=api.url)
        )
        env = dict(shim.env, KUBECONFIG=str(config))
        assert shim.run("kubeconfig", "wrap", KUBECONFIG=str(config)).returncode == 0
        for _ in range(3):
            result = kubectl_version(kubectl, env)
            assert result.returncode == 0, result.stderr
    assert len(shim.calls()) == 1
    assert shim.calls()[0]["profile"] == "dev"  # the kubeconfig's env reached the backend


@pytest.mark.real_kubectl
def test_wrap_keeps_kubectl_working_under_an_allowlist_and_unwrap_restores_it(
    shim: Shim, tmp_path: Path, private_home: Path
) -> None:
    kuberc = write_kuberc(
        private_home,
        "# only what I trust\ncredentialPluginPolicy: Allowlist\n"
        "credentialPluginAllowlist:\n- name: aws  # the AWS CLI\n",
    )
    original_kuberc = kuberc.read_bytes()
    with ApiServer(accepts_fake_tokens) as api:
        config = tmp_path / "kubeconfig"
        config.write_text(kubeconfig(api, "aws", UPDATE_KUBECONFIG_ARGS))
        original_config = config.read_bytes()
        assert kubectl(shim, config).returncode == 0  # kubectl allows aws itself
        wrapped = shim.run("kubeconfig", "wrap", "--kubeconfig", str(config))
        assert f"allow: {kuberc}: credentialPluginAllowlist + {shim_path()}" in (
            wrapped.stdout.decode()
        )
        assert b"# only what I trust" in kuberc.read_bytes()  # comments kept
        backup = Path(str(kuberc) + ".eks-token-shim.bak")
        assert backup.read_bytes() == original_kuberc
        runs_before = len(shim.calls())
        for _ in range(2):
            result = kubectl(shim, config)
            assert result.returncode == 0, result.stderr.decode()
        assert len(shim.calls()) == runs_before + 1  # through the shim: one backend run
        # The oracle: without the entry wrap added, kubectl 1.35 refuses the shim.
        wrapped_kuberc = kuberc.read_bytes()
        kuberc.write_bytes(original_kuberc)
        refused = kubectl(shim, config)
        assert refused.returncode != 0
        assert b"is not permitted by the credential plugin allowlist" in refused.stderr
        kuberc.write_bytes(wrapped_kuberc)
        unwrapped = shim.run("kubeconfig", "unwrap", "--kubeconfig", str(config))
        assert f"disallow: {kuberc}" in unwrapped.stdout.decode()
    assert kuberc.read_bytes() == original_kuberc
    # The stub's kubeconfig is JSON, which the YAML editor writes back as YAML: the same
    # document (byte-for-byte round trips of YAML files are test_kubeconfig.py's).
    assert YAML(typ="safe").load(config.read_bytes()) == json.loads(original_config)


@pytest.mark.parametrize(
    ("entries", "spelt"),
    [
        ("- command: aws\n", "command"),
        ("- name: aws\n", "name"),
        ("- name: x\n- command: aws\n", "name"),
    ],
)
def test_wrap_spells_its_entry_as_the_file_spells_its_entries(
    shim: Shim, tmp_path: Path, private_home: Path, entries: str, spelt: str
) -> None:
    """`command:` only where every entry says `command:` (kubectl 1.36's files), else the
    `name:` that kubectl 1.35 reads; unwrap takes away exactly that line again."""
    kuberc = write_kuberc(
        private_home, "credentialPluginPolicy: Allowlist\ncredentialPluginAllowlist:\n" + entries
    )
    original = kuberc.read_bytes()
    with ApiServer(accepts_fake_tokens) as api:
        config = tmp_path / "kubeconfig"
        config.write_text(kubeconfig(api, "aws", UPDATE_KUBECONFIG_ARGS))
    shim.run("kubeconfig", "wrap", "--kubeconfig", str(config))
    assert kuberc.read_text() == original.decode() + f"- {spelt}: {shim_path()}\n"
    shim.run("kubeconfig", "unwrap", "--kubeconfig", str(config))
    assert kuberc.read_bytes() == original


def test_unwrap_after_the_allowlist_was_dropped_leaves_the_kuberc_alone(
    shim: Shim, tmp_path: Path, private_home: Path
) -> None:
    kuberc = write_kuberc(private_home, ALLOWLIST + "- name: aws\n")
    with ApiServer(accepts_fake_tokens) as api:
        config = tmp_path / "kubeconfig"
        config.write_text(kubeconfig(api, "aws", UPDATE_KUBECONFIG_ARGS))
    original_config = config.read_bytes()
    shim.run("kubeconfig", "wrap", "--kubeconfig", str(config))
    kuberc.write_text(HEADER + "credentialPluginPolicy: AllowAll\n")  # the user relaxed it
    relaxed = kuberc.read_bytes()
    result = shim.run("kubeconfig", "unwrap", "--kubeconfig", str(config))
    assert b"disallow" not in result.stdout
    assert kuberc.read_bytes() == relaxed
    assert YAML(typ="safe").load(config.read_bytes()) == json.loads(original_config)


# -- Every layout kubectl reads: wrap edits only the exec sections, unwrap gives the bytes back.

EKSCTL = """\
apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: LS0tLS1CRUdJTg==
    server: https://ABC.gr7.us-west-2.eks.amazonaws.com
  name: demo.us-west-2.eksctl.io
contexts:
- context:
    cluster: demo.us-west-2.eksctl.io
    user: admin@demo.us-west-2.eksctl.io
  name: admin@demo.us-west-2.eksctl.io
current-context: admin@demo.us-west-2.eksctl.io
kind: Config
preferences: {}
users:
- name: admin@demo.us-west-2.eksctl.io
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      args:
      - eks
      - get-token
      - --output
      - json
      - --cluster-name
      - demo
      - --region
      - us-west-2
      command: aws
      env:
      - name: AWS_STS_REGIONAL_ENDPOINTS
        value: regional
      interactiveMode: IfAvailable
      provideClusterInfo: false
"""

QUOTED_WITH_BLANK_LINES = """\
apiVersion: v1
kind: Config
clusters:
- name: "prod"
  cluster:
    server: "https://prod.example"

users:
- name: "prod"
  user:
    exec:
      apiVersion: "client.authentication.k8s.io/v1beta1"
      command: "aws"
      args:
        - "eks"
        - "get-token"
        - "--cluster-name"
        - "prod"

contexts:
- name: "prod"
  context:
    user: "prod"
    cluster: "prod"

current-context: "prod"
"""

HAND_EDITED = """\
# my clusters
apiVersion: v1
kind: Config
kind: Config   # a repeated key: kubectl takes the last
users:
    -   name: dev   # the dev account
        user:
            exec:
                # the AWS CLI
                apiVersion: client.authentication.k8s.io/v1beta1
                command: aws  # from brew
                args:
                    - eks
                    - get-token
                    - --cluster-name
                    - dev
                env: null
contexts:
    -   name: dev
        context: {cluster: dev, user: dev}
"""

SHARED_BY_ALIAS = """\
apiVersion: v1
kind: Config
users:
- name: a
  user:
    exec: &eks
      apiVersion: client.authentication.k8s.io/v1beta1
      command: aws
      args: [eks, get-token, --cluster-name, demo]
- name: b
  user:
    exec: *eks
- name: c
  user: &c
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: aws-iam-authenticator
      args: ["token", "-i", "demo"]
      provideClusterInfo: false
- name: d
  user: *c
"""

AUTHENTICATOR_FLOW = (
    '{"apiVersion": "v1", "kind": "Config", "users": [{"name": "u", "user": {"exec": '
    '{"apiVersion": "client.authentication.k8s.io/v1", "command": "aws-iam-authenticator", '
    '"args": ["token", "-i", "c"], "interactiveMode": "Never"}}}]}'
)


def as_json(text: str, indent: int | None) -> str:
    return json.dumps(YAML(typ="safe").load(text), indent=indent)


LAYOUTS = {
    "aws update-kubeconfig": UPDATE_KUBECONFIG.format(ca="LS0t", server="https://eks.example"),
    "eksctl": EKSCTL,
    "double quotes and blank lines (Rancher, Lens)": QUOTED_WITH_BLANK_LINES,
    "hand edited: 4 spaces, comments, a repeated key": HAND_EDITED,
    "CRLF": UPDATE_KUBECONFIG.format(ca="LS0t", server="https://x").replace("\n", "\r\n"),
    "BOM, --- and ...": "\ufeff---\n" + EKSCTL + "...\n",
    "no line break at the end": EKSCTL.rstrip("\n"),
    "JSON, indented": as_json(EKSCTL, 4) + "\n",
    "JSON, one line": as_json(QUOTED_WITH_BLANK_LINES, None),
    "aws-iam-authenticator, flow style": AUTHENTICATOR_FLOW,
    "aliases share exec sections": SHARED_BY_ALIAS,
    "several users, mixed styles": OTHER_USERS,
}


def kubectl_view(config: Path) -> dict[str, Any]:
    """The kubeconfig as kubectl 1.35 reads it."""
    done = subprocess.run(
        [kubectl_v35(), "config", "view", "--raw", "-o", "json", "--kubeconfig", str(config)],
        capture_output=True,
        check=True,
        env={"PATH": os.environ["PATH"], "HOME": str(config.parent)},
    )
    view: dict[str, Any] = json.loads(done.stdout)
    return view


@pytest.mark.real_kubectl
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_every_layout_is_wrapped_as_kubectl_reads_it_and_unwrapped_byte_for_byte(
    shim: Shim, tmp_path: Path, layout: str
) -> None:
    config = tmp_path / "config"
    original = LAYOUTS[layout].encode()
    config.write_bytes(original)
    before = kubectl_view(config)
    result = kubeconfig_cmd(shim, "wrap", "--kubeconfig", str(config))
    after = kubectl_view(config)
    wrapped = 0
    for old, new in zip(before["users"], after["users"]):
        old_exec = old["user"].get("exec") or {}
        if old_exec.get("command") in ("aws", "aws-iam-authenticator"):
            wrapped += 1
            assert new["user"]["exec"] == {
                **old_exec,
                "command": shim_path(),
                "args": ["--", old_exec["command"], *(old_exec.get("args") or [])],
                "provideClusterInfo": True,
            }
            # The record, in the user, or in the user that shares the section by an alias.
            records = new["user"].pop("extensions", [])
            assert [record["name"] for record in records] in ([], ["eks-token-shim"])
            old["user"].pop("exec"), new["user"].pop("exec")
    assert after == before  # nothing else changed, as kubectl reads it
    assert wrapped
    assert result.stdout.decode().splitlines()[-1].startswith("changed ")
    kubeconfig_cmd(shim, "unwrap", "--kubeconfig", str(config))
    assert config.read_bytes() == original


@pytest.mark.real_kubectl
def test_a_kubeconfig_kubectl_wrote_itself_round_trips(shim: Shim, tmp_path: Path) -> None:
    config = tmp_path / "config"
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "KUBECONFIG": str(config)}
    for argv in (
        ["config", "set-cluster", "demo", "--server", "https://demo.example"],
        ["config", "set-credentials", "demo", "--exec-api-version",
         "client.authentication.k8s.io/v1beta1", "--exec-command", "aws",
         "--exec-arg", "eks", "--exec-arg", "get-token", "--exec-arg", "--cluster-name",
         "--exec-arg", "demo", "--exec-env", "AWS_PROFILE=dev"],
        ["config", "set-context", "demo", "--cluster", "demo", "--user", "demo"],
    ):  # fmt: skip
        subprocess.run([kubectl_v35(), *argv], env=env, check=True, capture_output=True)
    original = config.read_bytes()
    assert b"command: aws" in original
    kubeconfig_cmd(shim, "wrap", "--kubeconfig", str(config))
    assert kubectl_view(config)["users"][0]["user"]["exec"]["args"][:2] == ["--", "aws"]
    kubeconfig_cmd(shim, "unwrap", "--kubeconfig", str(config))
    assert config.read_bytes() == original


@pytest.mark.real_kubectl
def test_a_relative_command_runs_the_same_program_after_wrap(shim: Shim, tmp_path: Path) -> None:
    """kubectl resolves `./bin/aws` against the kubeconfig's directory; after wrap the shim
    must run that program, not the one under kubectl's working directory."""
    home, elsewhere = tmp_path / "kube", tmp_path / "elsewhere"
    for directory in (home / "bin", elsewhere / "bin"):
        directory.mkdir(parents=True)
    (home / "bin" / "aws").write_bytes((shim.bin / "aws").read_bytes())
    (elsewhere / "bin" / "aws").write_text("#!/bin/sh\necho the wrong aws >&2\nexit 99\n")
    for program in (home / "bin" / "aws", elsewhere / "bin" / "aws"):
        program.chmod(0o755)
    with ApiServer(accepts_fake_tokens) as api:
        config = home / "config"
        config.write_text(kubeconfig(api, "./bin/aws", UPDATE_KUBECONFIG_ARGS))
        original = config.read_bytes()

        def kubectl_from_elsewhere() -> subprocess.CompletedProcess[bytes]:
            return subprocess.run(
                [kubectl_v35(), "--kubeconfig", str(config), "get", "--raw", "/version"],
                env=shim.env, cwd=elsewhere, capture_output=True, timeout=60, check=False,
            )  # fmt: skip

        assert kubectl_from_elsewhere().returncode == 0  # the oracle: kubectl's own choice
        kubeconfig_cmd(shim, "wrap", "--kubeconfig", str(config))
        wrapped = kubectl_from_elsewhere()
        assert wrapped.returncode == 0, wrapped.stderr.decode()
        assert b"the wrong aws" not in wrapped.stderr
    programs = [call["argv"][0] for call in shim.calls()]
    assert programs[-1] == str(home / "bin" / "aws")
    assert len(programs) == 2
    kubeconfig_cmd(shim, "unwrap", "--kubeconfig", str(config))
    assert config.read_bytes() == original


def test_options_before_the_double_dash_and_the_shims_other_name_are_the_shims(
    shim: Shim, files: list[Path]
) -> None:
    original = files[0].read_bytes()
    kubeconfig_cmd(shim, "wrap", "--kubeconfig", str(files[0]))
    wrapped = files[0].read_text()
    with_verbose = wrapped.replace("      - --\n", "      - -v\n      - --\n", 1)
    assert with_verbose != wrapped  # (the README's troubleshooting step)
    files[0].write_text(with_verbose)
    again = kubeconfig_cmd(shim, "wrap", "--kubeconfig", str(files[0]))
    assert again.stdout.strip() == b"nothing to wrap"
    undone = kubeconfig_cmd(shim, "unwrap", "--kubeconfig", str(files[0]))
    assert b"changed 1 user" in undone.stdout
    assert files[0].read_bytes() == original
    eks_mode = original.replace(b"command: aws\n", b"command: eks-get-token-use-cache\n")
    files[0].write_bytes(eks_mode)
    result = kubeconfig_cmd(shim, "wrap", "--kubeconfig", str(files[0]))
    assert result.stdout.strip() == b"nothing to wrap"  # the shim is not wrapped in itself
    assert files[0].read_bytes() == eks_mode


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "users:\n- name: u\n  user:\n    exec:\n      command: aws\n     args: [x]\n",
            "not valid YAML (line 6, column 6: ",
        ),
        ("contexts:\n- name: c\n  context: [u]\nusers: []\n", "context 'c' in "),
        ("contexts:\n- name: c\n  context:\nusers: []\n", "context 'c' in "),
        (
            "contexts:\n- name: c\n  context: {user: gone}\nusers: []\n",
            "context 'c' names user 'gone', which no file defines",
        ),
        (
            "x: &eks {command: aws, args: [eks, get-token, --cluster-name, c]}\n"
            "contexts:\n- name: c\n  context: {user: u}\n"
            "users:\n- name: u\n  user:\n    exec:\n      <<: *eks\n",
            "cannot wrap user 'u': its `command` comes from a YAML merge (<<)",
        ),
    ],
)
def test_what_cannot_be_wrapped_is_said_clearly_and_nothing_changes(
    shim: Shim, tmp_path: Path, text: str, message: str
) -> None:
    config = tmp_path / "config"
    config.write_text(text)
    result = kubeconfig_cmd(shim, "wrap", "--kubeconfig", str(config), "--context", "c", expect=1)
    assert message in result.stderr.decode()
    assert b"nothing was changed" in result.stderr
    assert config.read_text() == text
    assert sorted(path.name for path in tmp_path.iterdir() if "config" in path.name) == ["config"]


# -- An edit is all or nothing, keeps the file's owner, and honours kubectl's lock.


def root_only(reason: str) -> None:
    if os.geteuid() != 0:
        pytest.skip(f"needs root: {reason}")


@pytest.fixture
def allowlisted(shim: Shim, tmp_path: Path, private_home: Path) -> tuple[Path, Path]:
    """A kubeconfig whose wrap must add the shim to kubectl's allowlist: (kubeconfig, kuberc)."""
    config = tmp_path / "config"
    config.write_text(UPDATE_KUBECONFIG.format(ca="LS0t", server="https://eks.example"))
    kuberc = write_kuberc(private_home, ALLOWLIST + "- name: aws\n")
    (shim.bin / "aws").chmod(0o755)
    return config, kuberc


def unchanged(*paths: Path) -> Callable[[], bool]:
    before = {path: path.read_bytes() for path in paths}
    listing = {path.parent: sorted(path.parent.iterdir()) for path in paths}
    return lambda: (
        all(path.read_bytes() == data for path, data in before.items())
        and all(sorted(directory.iterdir()) == entries for directory, entries in listing.items())
    )


@pytest.mark.parametrize("fault", ["read-only file system", "disk full"])
def test_a_kuberc_that_cannot_be_written_leaves_the_kubeconfig_as_it_was(
    shim: Shim, allowlisted: tuple[Path, Path], tmpfs: Mount, fault: str
) -> None:
    root_only("mounts a file system")
    config, home_kuberc = allowlisted
    mount = tmpfs("size=64k")
    kuberc = mount / "kuberc"
    kuberc.write_bytes(home_kuberc.read_bytes())
    if fault == "read-only file system":
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
    else:  # filled up: the kubeconfig (elsewhere) is written first, then the kuberc fails
        with open(mount / "filler", "wb", buffering=0) as filler, contextlib.suppress(OSError):
            while True:
                filler.write(b"x" * 4096)
    same = unchanged(config)
    result = shim.run(
        "kubeconfig", "wrap", "--kubeconfig", str(config), KUBERC=str(kuberc), expect=1
    )
    error = result.stderr.decode()
    assert str(kuberc) in error
    assert error.rstrip().endswith("nothing was changed")
    assert same()
    assert not (config.parent / "config.lock").exists()


def test_a_second_kubeconfig_that_cannot_be_written_stops_the_first(
    shim: Shim, files: list[Path]
) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(files[1])], check=True)  # (root writes 0444)
    else:
        files[1].chmod(0o444)
    try:
        same = unchanged(*files)
        result = kubeconfig_cmd(shim, "wrap", expect=1)
        assert f"{files[1]} is read-only (or immutable); nothing was changed" in (
            result.stderr.decode()
        )
        assert b"wrap:" not in result.stdout  # nothing said done
        assert same()
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(files[1])], check=True)


def test_the_owner_group_and_mode_are_kept(shim: Shim, files: list[Path]) -> None:
    root_only("gives the file to another user, as `sudo shim kubeconfig wrap` meets it")
    os.chown(files[0], 65534, 65534)
    files[0].chmod(0o640)
    kubeconfig_cmd(shim, "wrap")
    for path in (files[0], files[0].with_name(files[0].name + ".eks-token-shim.bak")):
        st = path.stat()
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (65534, 65534, 0o640)


@pytest.mark.real_kubectl
def test_no_edit_of_a_racing_kubectl_is_lost(shim: Shim, files: list[Path]) -> None:
    """kubectl takes `<file>.lock` to edit a kubeconfig and fails while another holds it:
    with the shim holding the same lock from its read to its write, every kubectl edit
    either fails, saying so, or is in the file at the end."""
    env = dict(shim.env, KUBECONFIG=str(files[0]))
    kubectl = kubectl_v35()
    editors = []
    for round_ in range(15):
        edit = subprocess.Popen(
            [kubectl, "config", "set-context", f"race-{round_}", "--cluster", "c"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        kubeconfig_cmd(shim, "wrap" if round_ % 2 == 0 else "unwrap", "--kubeconfig", str(files[0]))
        editors.append((round_, edit, edit.communicate(timeout=60)[1]))
    text = files[0].read_text()
    for round_, edit, stderr in editors:
        if edit.returncode == 0:
            assert f"name: race-{round_}" in text, f"kubectl's edit {round_} was lost"
        else:
            assert b".lock" in stderr, stderr.decode()
    assert any(edit.returncode == 0 for _, edit, _ in editors)


@pytest.mark.real_kubectl
def test_an_allowlist_entry_stays_while_any_kubeconfig_needs_it(
    shim: Shim, tmp_path: Path, private_home: Path
) -> None:
    kuberc = write_kuberc(private_home, ALLOWLIST + "- name: aws\n")
    original_kuberc = kuberc.read_bytes()
    registry = Path(f"{kuberc}.eks-token-shim")
    with ApiServer(accepts_fake_tokens) as api:
        first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
        for config in (first, second):
            config.write_text(kubeconfig(api, "aws", UPDATE_KUBECONFIG_ARGS))
        shim.run("kubeconfig", "wrap", "--kubeconfig", str(first))
        second_wrap = shim.run("kubeconfig", "wrap", "--kubeconfig", str(second))
        assert b"allow:" not in second_wrap.stdout  # the entry is there already
        assert registry.read_text().splitlines()[-2:] == [str(first), str(second)]
        assert registry.read_text().count("# kubeconfig files whose users run") == 1
        assert not Path(f"{registry}.eks-token-shim.bak").exists()  # (the shim's own file)
        unwrapped = shim.run("kubeconfig", "unwrap", "--kubeconfig", str(first))
        assert b"disallow" not in unwrapped.stdout
        result = kubectl(shim, second)  # the oracle: kubectl still runs b's shim
        assert result.returncode == 0, result.stderr.decode()
        assert registry.read_text().splitlines()[-1] == str(second)
        last = shim.run("kubeconfig", "unwrap", "--kubeconfig", str(second))
        assert f"disallow: {kuberc}".encode() in last.stdout
    assert kuberc.read_bytes() == original_kuberc
    assert not registry.exists()


def test_without_kubeconfig_or_its_variable_wrap_edits_the_home_one(
    shim: Shim, private_home: Path
) -> None:
    config = private_home / ".kube" / "config"
    config.parent.mkdir()
    config.write_text(UPDATE_KUBECONFIG.format(ca="LS0tLS1CRUdJTg==", server="https://eks.example"))
    assert b"changed 1 user in 1 file" in kubeconfig_cmd(shim, "wrap").stdout
    assert b"eks-token-shim" in config.read_bytes()


def test_the_command_wrap_names_is_the_installed_launcher(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The launcher that runs us; else the one beside our interpreter; else the one on
    PATH; else an error that says so."""
    import sys

    from shim.errors import ShimError
    from shim.kubeconfig import shim_command

    bin_dir, elsewhere = tmp_path / "bin", tmp_path / "elsewhere"
    for directory in (bin_dir, elsewhere):
        directory.mkdir()
        (directory / "python").touch()
    monkeypatch.setattr(sys, "argv", [str(bin_dir / "eks-get-token-use-cache"), "kubeconfig"])
    assert shim_command() == str(bin_dir / "eks-get-token-use-cache")
    monkeypatch.setattr(sys, "argv", ["-m"])  # python -m shim
    monkeypatch.setattr(sys, "executable", str(bin_dir / "python"))
    (bin_dir / "shim").touch()
    assert shim_command() == str(bin_dir / "shim")
    monkeypatch.setattr(sys, "executable", str(elsewhere / "python"))
    monkeypatch.setenv("PATH", str(bin_dir))
    (bin_dir / "shim").chmod(0o755)
    assert shim_command() == str(bin_dir / "shim")
    monkeypatch.setenv("PATH", str(elsewhere))
    with pytest.raises(ShimError, match="cannot find the installed `shim`"):
        shim_command()


TWO_USERS = """\
apiVersion: v1
kind: Config
contexts:
- name: a
  context: {cluster: a, user: a}
- name: b
  context: {cluster: b, user: b}
users:
- name: a
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: aws
      args: [eks, get-token, --cluster-name, a]
- name: b
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: aws
      args: [eks, get-token, --cluster-name, b]
"""


@pytest.fixture
def two_users(tmp_path: Path) -> Path:
    """A kubeconfig of two users that run aws, contexts `a` and `b`."""
    config = tmp_path / "config"
    config.write_text(TWO_USERS)
    return config


@pytest.fixture
def aws_allowed(private_home: Path) -> tuple[Path, bytes]:
    """A kuberc whose allowlist holds aws; its bytes."""
    kuberc = write_kuberc(private_home, ALLOWLIST + "- name: aws\n")
    return kuberc, kuberc.read_bytes()


def test_the_allowlist_entry_stays_while_another_user_of_the_file_runs_the_shim(
    shim: Shim, two_users: Path, aws_allowed: tuple[Path, bytes]
) -> None:
    (kuberc, original_kuberc), config = aws_allowed, two_users
    assert b"allow: " in kubeconfig_cmd(shim, "wrap", "--kubeconfig", str(config)).stdout
    first = kubeconfig_cmd(shim, "unwrap", "--kubeconfig", str(config), "--context", "a")
    assert b"disallow" not in first.stdout  # user b still runs the shim
    assert kuberc.read_bytes() != original_kuberc
    last = kubeconfig_cmd(shim, "unwrap", "--kubeconfig", str(config), "--context", "b")
    assert f"disallow: {kuberc}".encode() in last.stdout
    assert kuberc.read_bytes() == original_kuberc
    assert config.read_text() == TWO_USERS


def test_what_cannot_be_unwrapped_is_said_clearly_and_nothing_changes(
    shim: Shim, two_users: Path
) -> None:
    config = two_users
    kubeconfig_cmd(shim, "wrap", "--kubeconfig", str(config))
    anchored = config.read_text().replace("command: /", "command: &shim /", 1)
    config.write_text(anchored)
    result = kubeconfig_cmd(shim, "unwrap", "--kubeconfig", str(config), expect=1)
    assert "cannot unwrap user 'a': a YAML anchor or tag sits on a value" in result.stderr.decode()
    assert b"nothing was changed" in result.stderr
    assert config.read_text() == anchored


def test_wrap_warns_of_a_command_the_allowlist_refuses_and_adds_nothing_for_it(
    shim: Shim, two_users: Path, private_home: Path
) -> None:
    kuberc = write_kuberc(private_home, ALLOWLIST + "- name: kubelogin\n")
    original_kuberc, config = kuberc.read_bytes(), two_users
    result = kubeconfig_cmd(shim, "wrap", "--kubeconfig", str(config), "--context", "a")
    warning = f"warning: {kuberc}'s allowlist does not allow aws: kubectl refuses it today"
    assert warning in result.stderr.decode()
    assert kuberc.read_bytes() == original_kuberc  # the shim in front of it would be refused too


def test_a_file_listed_as_relying_on_the_entry_that_is_gone_no_longer_holds_it(
    shim: Shim, tmp_path: Path, aws_allowed: tuple[Path, bytes]
) -> None:
    kuberc, original_kuberc = aws_allowed
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    for config in (first, second):
        config.write_text(TWO_USERS)
        kubeconfig_cmd(shim, "wrap", "--kubeconfig", str(config))
    second.unlink()  # (or no longer parses: it runs the shim for nobody)
    last = kubeconfig_cmd(shim, "unwrap", "--kubeconfig", str(first))
    assert f"disallow: {kuberc}".encode() in last.stdout
    assert kuberc.read_bytes() == original_kuberc


@pytest.mark.parametrize("policy", ["Allowlist", "AllowAll"])
def test_an_entry_for_the_shim_the_user_wrote_is_never_taken_out(
    shim: Shim, tmp_path: Path, private_home: Path, two_users: Path, policy: str
) -> None:
    """Allowed already, by the user's own entry: wrap adds none and unwrap takes none out,
    even with the list of an earlier wrap's entry lying there (the policy changed since)."""
    if policy == "Allowlist":
        kuberc = write_kuberc(private_home, ALLOWLIST + f"- name: aws\n- name: {shim_path()}\n")
    else:
        kuberc = write_kuberc(private_home, "credentialPluginPolicy: AllowAll\n")
    registry = Path(f"{kuberc}.eks-token-shim")
    if policy == "AllowAll":
        registry.write_text(f"{tmp_path / 'gone.yaml'}\n")
    registry_before = registry.read_bytes() if registry.exists() else None
    original_kuberc = kuberc.read_bytes()
    config = two_users
    wrapped = kubeconfig_cmd(shim, "wrap", "--kubeconfig", str(config))
    assert b"allow: " not in wrapped.stdout  # allowed already
    unwrapped = kubeconfig_cmd(shim, "unwrap", "--kubeconfig", str(config))
    assert b"disallow" not in unwrapped.stdout
    assert kuberc.read_bytes() == original_kuberc
    assert (registry.read_bytes() if registry.exists() else None) == registry_before


def test_unwrap_without_the_list_of_files_still_takes_its_entry_out(
    shim: Shim, two_users: Path, aws_allowed: tuple[Path, bytes]
) -> None:
    """The list removed by hand (or never written): the users this run unwraps decide."""
    (kuberc, original_kuberc), config = aws_allowed, two_users
    kubeconfig_cmd(shim, "wrap", "--kubeconfig", str(config))
    Path(f"{kuberc}.eks-token-shim").unlink()
    unwrapped = kubeconfig_cmd(shim, "unwrap", "--kubeconfig", str(config))
    assert f"disallow: {kuberc}".encode() in unwrapped.stdout
    assert kuberc.read_bytes() == original_kuberc
