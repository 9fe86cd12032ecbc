"""Issue #10: kubectl's credential-plugin allowlist (kuberc, kubectl 1.35), with the real
kubectl 1.35 as the oracle: wrap keeps kubectl working, and the shim never becomes a
way around the policy."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from apiserver import ApiServer, kubeconfig
from conftest import Shim, kubectl_v35, shim_argv
from ruamel.yaml import YAML

HEADER = "apiVersion: kubectl.config.k8s.io/v1beta1\nkind: Preference\n"
UPDATE_KUBECONFIG_ARGS = ["--region", "eu-west-1", "eks", "get-token", "--cluster-name", "demo"]


def accepts_fake_tokens(token: str) -> bool:
    return token.startswith("k8s-aws-v1.fake-")


def shim_path() -> str:
    return os.path.abspath(shim_argv()[0])


def write_kuberc(home: Path, body: str) -> Path:
    path = home / ".kube" / "kuberc"
    path.parent.mkdir(exist_ok=True)
    path.write_text(HEADER + body)
    return path


def kubectl(shim: Shim, config: Path, **env: str) -> subprocess.CompletedProcess[bytes]:
    argv = [kubectl_v35(), "--kubeconfig", str(config), "get", "--raw", "/version"]
    return subprocess.run(
        argv, env={**shim.env, **env}, capture_output=True, timeout=60, check=False
    )


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
    shim.run("-b", "aws-iam-authenticator", "-c", "demo", expect=1)
    assert len(shim.calls()) == 1


@pytest.mark.parametrize(
    "body",
    [
        "credentialPluginPolicy: Allowlist\n",
        "credentialPluginPolicy: Allowlist\ncredentialPluginAllowlist: []\n",
        "credentialPluginPolicy: Allowlist\ncredentialPluginAllowlist:\n- name: ./aws\n",
        "credentialPluginPolicy: Sometimes\n",
        "credentialPluginPolicy: [unclosed\n",
    ],
)
def test_a_policy_that_makes_no_sense_fails_closed(
    shim: Shim, private_home: Path, body: str
) -> None:
    write_kuberc(private_home, body)
    result = shim.run("-c", "demo", expect=1)
    assert b"kuberc" in result.stderr
    assert shim.calls() == []


def test_a_cached_token_is_served_without_reading_kuberc(shim: Shim, private_home: Path) -> None:
    first = shim.run("-c", "demo").stdout
    kuberc = write_kuberc(private_home, "credentialPluginPolicy: DenyAll\n")
    kuberc.chmod(0)  # were it read, it could not be: a hit never opens it
    assert shim.run("-c", "demo").stdout == first


def test_a_fifo_or_symlink_as_kuberc(shim: Shim, private_home: Path) -> None:
    """A FIFO is a refusal, never a wait (issue #8); a symlink is followed, as kubectl does."""
    kuberc = private_home / ".kube" / "kuberc"
    kuberc.parent.mkdir()
    os.mkfifo(kuberc)
    result = shim.run("-c", "demo", expect=1, timeout=30)
    assert f"cannot read kubectl's kuberc {kuberc}".encode() in result.stderr
    assert shim.calls() == []
    kuberc.unlink()
    target = private_home / "dotfiles-kuberc"
    target.write_text(HEADER + "credentialPluginPolicy: DenyAll\n")
    kuberc.symlink_to(target)
    assert b"DenyAll" in shim.run("-c", "demo", expect=1).stderr
    assert shim.calls() == []
