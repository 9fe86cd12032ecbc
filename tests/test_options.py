"""shim.options: the hot path's scanner never disagrees with argparse."""

from __future__ import annotations

import pytest
from helpers import words
from hypothesis import example, given
from hypothesis import strategies as st

from shim.cli import build_parser, option_values
from shim.options import scan, split_command


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
