"""shim.errors: the not-found answer, and what names a path rather than a program."""

from __future__ import annotations

import sys

import pytest

from shim.errors import EXIT_NOT_FOUND, has_directory, not_found


@pytest.mark.parametrize(
    ("platform", "command", "path"),
    [
        ("linux", "aws", False),
        ("linux", "./aws", True),
        ("linux", "/usr/bin/aws", True),
        ("linux", "C:aws", False),  # (a name with a colon, on POSIX)
        ("linux", "bin\\aws", False),
        ("win32", "aws", False),
        ("win32", "bin\\aws", True),
        ("win32", "C:aws", True),  # (relative to drive C's current directory)
        ("win32", "bin/aws", True),
    ],
)
def test_a_path_is_what_go_calls_one_on_each_platform(
    monkeypatch: pytest.MonkeyPatch, platform: str, command: str, path: bool
) -> None:
    monkeypatch.setattr(sys, "platform", platform)
    assert has_directory(command) is path
    error = not_found(command)
    assert error.exit_code == EXIT_NOT_FOUND
    expected = "no such file" if path else "command not found (is it on PATH?)"
    assert error.message == f"{command}: {expected}"
