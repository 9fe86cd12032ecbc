"""With the real AWS CLI and the real kubectl: the shim does its job for real users."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from apiserver import ApiServer, is_signed_eks_token, kubeconfig, write_aws_throwaway_credentials
from helpers import kubectl_version, require_tool, shim_argv, token_of


def real_aws() -> str:
    beside = Path(sys.executable).with_name("aws")
    return str(beside) if beside.exists() else require_tool("aws")


@pytest.fixture
def aws_env(tmp_path: Path, private_home: Path) -> dict[str, str]:
    """An environment where `aws` is the real AWS CLI behind a wrapper that counts its runs."""
    write_aws_throwaway_credentials(str(private_home))
    counting = tmp_path / "counting-bin"
    counting.mkdir()
    wrapper = counting / "aws"
    wrapper.write_text(f'#!/bin/sh\necho run >> "{tmp_path}/aws-runs"\nexec "{real_aws()}" "$@"\n')
    wrapper.chmod(0o755)
    return dict(
        os.environ,
        PATH=f"{counting}{os.pathsep}/usr/bin{os.pathsep}/bin",
        AWS_EC2_METADATA_DISABLED="true",
    )


def aws_runs(tmp_path: Path) -> int:
    runs = tmp_path / "aws-runs"
    return len(runs.read_text().splitlines()) if runs.exists() else 0


@pytest.mark.real_aws
def test_the_real_aws_cli_token_is_cached(tmp_path: Path, aws_env: dict[str, str]) -> None:
    first = subprocess.run(
        [*shim_argv(), "-c", "demo"], env=aws_env, capture_output=True, check=True, timeout=60
    )
    assert is_signed_eks_token(token_of(first.stdout)), first.stderr
    assert aws_runs(tmp_path) == 1
    no_aws = dict(aws_env, PATH=f"/usr/bin{os.pathsep}/bin")
    assert shutil.which("aws", path=no_aws["PATH"]) is None
    second = subprocess.run(
        [*shim_argv(), "-c", "demo"], env=no_aws, capture_output=True, check=True, timeout=60
    )
    assert second.stdout == first.stdout


@pytest.mark.real_kubectl
def test_kubectl_through_the_shim_calls_the_backend_once(
    tmp_path: Path, aws_env: dict[str, str]
) -> None:
    kubectl = require_tool("kubectl")
    config = tmp_path / "kubeconfig"
    with ApiServer() as api:
        config.write_text(kubeconfig(api, shim_argv()[0], ["-c", "demo"]))
        for _ in range(5):
            result = kubectl_version(kubectl, aws_env, config)
            assert result.returncode == 0, result.stderr.decode()
            assert b"v1.31.0-eks-stub" in result.stdout
    assert aws_runs(tmp_path) == 1
    assert len(set(api.tokens)) == 1
    assert is_signed_eks_token(api.tokens[0])


def access_key_of(token: str) -> str:
    """The access key that signed an EKS token: the first part of its X-Amz-Credential."""
    encoded = token[len("k8s-aws-v1.") :]
    url = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    return parse_qs(urlsplit(url).query)["X-Amz-Credential"][0].split("/")[0]


@pytest.mark.real_kubectl
@pytest.mark.real_aws
def test_kubectl_gets_a_token_of_the_new_key_once_the_credentials_file_changed(
    tmp_path: Path, aws_env: dict[str, str], private_home: Path
) -> None:
    """As `aws configure`, saml2aws or granted switch identities: rewrite [default]."""
    kubectl = require_tool("kubectl")
    config = tmp_path / "kubeconfig"
    credentials = private_home / ".aws" / "credentials"
    with ApiServer() as api:
        config.write_text(kubeconfig(api, shim_argv()[0], ["-c", "demo"]))
        for _ in range(2):
            assert kubectl_version(kubectl, aws_env, config).returncode == 0
        before = len(api.tokens)
        text = credentials.read_text()
        credentials.write_text(text.replace("AKIAIOSFODNN7EXAMPLE", "AKIANEWIDENTITY99999"))
        for _ in range(2):
            assert kubectl_version(kubectl, aws_env, config).returncode == 0
    assert aws_runs(tmp_path) == 2
    keys = [access_key_of(token) for token in api.tokens]
    assert set(keys[:before]) == {"AKIAIOSFODNN7EXAMPLE"}
    assert set(keys[before:]) == {"AKIANEWIDENTITY99999"}
    plain = subprocess.run(
        [real_aws(), "eks", "get-token", "--cluster-name", "demo", "--output", "json"],
        env=aws_env,
        capture_output=True,
        check=True,
        timeout=60,
    )
    assert access_key_of(token_of(plain.stdout)) == "AKIANEWIDENTITY99999"  # as the shim's


@pytest.mark.real_aws
@pytest.mark.parametrize("output", ["text", "table"])
def test_a_config_output_format_does_not_break_eks_mode(
    tmp_path: Path, aws_env: dict[str, str], private_home: Path, output: str
) -> None:
    """`output = text` in ~/.aws/config applies to get-token too (https://github.com/aws/aws-cli/issues/7719)."""
    config = private_home / ".aws" / "config"
    config.write_text(config.read_text() + f"output = {output}\n")
    plain = subprocess.run(
        [real_aws(), "eks", "get-token", "--cluster-name", "demo"],
        env=aws_env,
        capture_output=True,
        check=True,
        timeout=60,
    )
    assert not plain.stdout.startswith(b"{")  # the AWS CLI itself honours the setting
    result = subprocess.run(
        [*shim_argv(), "-c", "demo"], env=aws_env, capture_output=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr.decode()
    assert is_signed_eks_token(token_of(result.stdout))


@pytest.mark.real_aws
def test_an_aws_config_with_output_text_gets_the_hint_that_fixes_it(
    aws_env: dict[str, str], private_home: Path
) -> None:
    (private_home / ".aws" / "config").write_text("[default]\nregion = us-east-1\noutput = text\n")
    argv = [*shim_argv(), "--", "aws", "eks", "get-token", "--cluster-name", "demo"]
    text = subprocess.run(argv, env=aws_env, capture_output=True, timeout=60, check=False)
    assert text.returncode == 0  # passed on, as the AWS CLI printed it: kubectl decides
    assert b"ExecCredential" in text.stdout
    assert not text.stdout.startswith(b"{")
    assert b"add `--output json` to these args in kubeconfig" in text.stderr
    fixed = subprocess.run([*argv, "--output", "json"], env=aws_env, capture_output=True,
                           timeout=60, check=True)  # fmt: skip
    assert is_signed_eks_token(token_of(fixed.stdout))
    assert b"--output json" not in fixed.stderr
