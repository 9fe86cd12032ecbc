"""shim.backends: the backend table built and read back, and the hint for an expired SSO session."""

from __future__ import annotations

import pytest
from helpers import Shim
from hypothesis import given
from hypothesis import strategies as st

from shim.backends import BACKENDS, recognise, selection_of

# What the command line lets through: a name, not an option (shim.request refuses "-...").
names = st.text(st.characters(codec="utf-8"), min_size=1, max_size=12).filter(
    lambda name: not name.startswith("-")
)


@given(
    st.sampled_from(sorted(BACKENDS)),
    names,
    st.one_of(st.none(), names),
    st.one_of(st.none(), names),
    st.one_of(st.none(), names),
)
def test_every_backend_reads_back_what_it_built(
    name: str, cluster: str, region: str | None, role: str | None, profile: str | None
) -> None:
    """The backend table's two directions agree: the argv built for a selection is
    recognised, and reads back as that selection (one place per backend fact)."""
    argv = BACKENDS[name].argv(cluster, region, role)
    env = {"AWS_PROFILE": profile} if profile else {}
    assert recognise(argv) is BACKENDS[name]
    selected = selection_of(argv, env)
    assert selected is not None
    assert (selected.cluster, selected.region, selected.role_arn, selected.profile) == (
        cluster,
        region,
        role,
        profile,
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["aws", "sts", "get-caller-identity"],
        ["aws-iam-authenticator", "verify", "-t", "token"],
        ["aws-iam-authenticator", "help", "token"],  # its words come first
        ["kubelogin", "get-token"],
        ["/usr/local/bin/aws-vault", "exec", "p", "--", "aws", "eks", "get-token"],
        [],
    ],
)
def test_commands_that_make_no_eks_token_are_no_backend(argv: list[str]) -> None:
    assert recognise(argv) is None


@pytest.mark.parametrize(
    ("program", "name"),
    [
        ("C:\\Program Files\\Amazon\\AWSCLIV2\\aws.exe", "aws"),  # a kubeconfig from Windows
        ("/usr/local/bin/aws-iam-authenticator.exe", "aws-iam-authenticator"),
        ("aws-iam-authenticator.EXE", "aws-iam-authenticator"),
    ],
)
def test_a_program_is_known_by_its_base_name_without_exe(program: str, name: str) -> None:
    words = ["eks", "get-token"] if name == "aws" else ["token"]
    assert recognise([program, *words, "--cluster-name", "c", "-i", "c"]) is BACKENDS[name]


def test_without_region_the_backend_resolves_it() -> None:
    assert "--region" not in BACKENDS["aws"].argv("c", None, None)
    assert BACKENDS["aws-iam-authenticator"].argv("c", None, None) == [
        "aws-iam-authenticator",
        "token",
        "-i",
        "c",
    ]


def test_an_expired_sso_session_gets_the_command_that_fixes_it(shim: Shim) -> None:
    result = shim.run("-c", "demo", "-p", "dev", FAKE_MODE="sso-expired", expect=255)
    lines = result.stderr.decode().splitlines()
    assert lines[0] == "Error when retrieving token from sso: Token has expired and refresh failed"
    assert lines[1].startswith("eks-token-shim: error: aws eks get-token")
    assert lines[2] == (
        "eks-token-shim: hint: the AWS SSO session has expired or was never started: "
        "run `aws sso login --profile dev`"
    )
    failed = shim.run("-c", "demo", FAKE_MODE="fail", expect=3)
    assert b"hint" not in failed.stderr  # another failure: no guess


@pytest.mark.parametrize(
    ("command", "login"),
    [
        (["aws-iam-authenticator", "token", "-i", "demo"], "aws sso login --profile dev"),
        (["aws", "--profile", "ops", "sts", "get-caller-identity"], "aws sso login --profile ops"),
        (
            ["BIN/aws", "eks", "get-token", "--cluster-name", "x"],
            "aws sso login --profile dev",
        ),
        (["my-plugin", "token", "-i", "demo"], None),  # not AWS's words: no guess
    ],
)
def test_the_sso_hint_is_for_aws_commands_only(
    shim: Shim, command: list[str], login: str | None
) -> None:
    if command[0] == "my-plugin":
        (shim.bin / "my-plugin").write_bytes((shim.bin / "aws").read_bytes())
        (shim.bin / "my-plugin").chmod(0o755)
    if command[0] == "BIN/aws":
        command = [str(shim.bin / "aws"), *command[1:]]  # a path, not a name
    result = shim.run("--", *command, FAKE_MODE="sso-expired", AWS_PROFILE="dev", expect=255)
    hints = [line for line in result.stderr.decode().splitlines() if ": hint: " in line]
    expired = "eks-token-shim: hint: the AWS SSO session has expired or was never started"
    assert hints == ([] if login is None else [f"{expired}: run `{login}`"])
