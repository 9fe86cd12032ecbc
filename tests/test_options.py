"""The hot path's option scanner never disagrees with the argparse CLI."""

from __future__ import annotations

import os

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from shim.backends import BACKENDS, recognise, selection_of
from shim.cli import build_parser, option_values
from shim.options import VALUE_OPTIONS, scan, split_command
from shim.request import resolve

flags = [flag for option in VALUE_OPTIONS for flag in option.flags]
words = st.sampled_from(
    [
        *flags,
        "-v",
        "--list",
        "--refresh",
        "-cx",
        "--cluster=a",
        "-c=a",  # a short flag with "=": the scanner leaves it to argparse
        "--clus",
        "a",
        "b",
        "-1",
        "",
        "60",
        "--timeout=5",
        "-x",
        "--role-arn=-y",
    ]
)


@given(st.lists(words, max_size=6))
@example(["-c=a"])  # a short flag with "=": the scanner leaves it to argparse
@example(["-c", "a", "-c", "b"])
@example(["--key-env", "a", "--key-env", "b"])  # repeatable: both, in order
def test_whatever_scan_reads_argparse_reads_the_same(argv: list[str]) -> None:
    scanned = scan(argv)
    if scanned is None:
        return
    parsed = build_parser().parse_args(argv)
    assert scanned == option_values(parsed)
    assert not (parsed.list)
    assert not (parsed.refresh)
    assert not (parsed.purge)
    assert not (parsed.verbose)


@pytest.mark.parametrize(
    "argv",
    [
        ["-v", "-c", "a"],
        ["-c"],
        ["-ca"],
        ["--clus", "a"],
        ["-c", "--list"],
        ["--list"],
        ["-c", ""],
        ["--help"],
    ],
)
def test_scan_leaves_anything_unusual_to_the_full_cli(argv: list[str]) -> None:
    assert scan(argv) is None


def test_split_command_at_the_first_double_dash() -> None:
    assert split_command(["-c", "a"]) == (["-c", "a"], None)
    assert split_command(["--timeout", "5", "--", "aws", "--", "x"]) == (
        ["--timeout", "5"],
        ["aws", "--", "x"],
    )


def test_profile_goes_to_the_environment_and_region_to_the_argv() -> None:
    request = resolve({"cluster": "c", "profile": "p", "region": "r"}, None, {"HOME": "/h"}, [])
    assert request.command == [
        "aws",
        "--region",
        "r",
        "eks",
        "get-token",
        "--cluster-name",
        "c",
        "--output",
        "json",
    ]
    assert request.env["AWS_PROFILE"] == "p"
    assert request.cache_dir == "/h/.kube/cache/eks-token-shim"


def test_a_cache_dir_under_home_is_under_the_given_environments_home() -> None:
    assert resolve({"cluster": "c", "cache_dir": "~"}, None, {"HOME": "/h"}, []).cache_dir == "/h"
    assert (
        resolve({"cluster": "c", "cache_dir": "~/c"}, None, {"HOME": "/h/"}, []).cache_dir == "/h/c"
    )
    # Without HOME there, as without it anywhere: Python's (the password database's) home.
    expected = os.path.abspath(os.path.expanduser("~/c"))
    assert resolve({"cluster": "c", "cache_dir": "~/c"}, None, {}, []).cache_dir == expected


def test_without_region_the_backend_resolves_it() -> None:
    assert "--region" not in BACKENDS["aws"].argv("c", None, None)
    assert BACKENDS["aws-iam-authenticator"].argv("c", None, None) == [
        "aws-iam-authenticator",
        "token",
        "-i",
        "c",
    ]


names = st.text(st.characters(codec="utf-8"), min_size=1, max_size=12)


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
