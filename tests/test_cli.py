"""End to end: the command line: usage errors, limits, messages, -v, --help."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from helpers import Shim, shim_argv, token_of

from shim import cli
from shim.options import VALUE_OPTIONS


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        ([], {}, b"no cluster selected"),
        (["-c", "a", "-b", "gcloud"], {}, b"unknown backend 'gcloud'"),
        (["-c", "a"], {"EKS_SHIM_BACKEND": "gcloud"}, b"unknown backend 'gcloud'"),
        (["-c", "a", "--timeout", "soon"], {}, b"--timeout takes a number"),
        (["-c", "a", "--refresh-before", "-5"], {}, b"--refresh-before"),
        (["-c", "a"], {"EKS_SHIM_REFRESH_BEFORE": "x"}, b"EKS_SHIM_REFRESH_BEFORE"),
        (["-c", "a", "--", "aws"], {}, b"--cluster select the EKS command"),
        (["--"], {}, b"nothing after --"),
        (["-c", "a", "--bogus"], {}, b"unrecognized arguments: --bogus"),
        (["-c", "a", "--list", "--purge"], {}, b"not allowed with"),
        (["--cluster=--role"], {}, b"--cluster takes a name, not '--role'"),
    ],
)
def test_usage_errors_exit_2_and_never_run_the_backend(
    shim: Shim, args: list[str], env: dict[str, str], message: bytes
) -> None:
    result = shim.run(*args, env=env, expect=2)
    assert result.stdout == b""
    assert message in result.stderr
    assert shim.calls() == []


def test_no_token_in_verbose_logs(shim: Shim) -> None:
    miss = shim.run("-v", "-c", "demo")
    hit = shim.run("-v", "-c", "demo")
    assert b"cache hit" in hit.stderr
    for result in (miss, hit):
        assert token_of(result.stdout).encode() not in result.stderr


def test_version_and_the_second_script_name(shim: Shim) -> None:
    import sys

    result = shim.run("--version")
    assert result.returncode == 0
    assert result.stdout.startswith(b"eks-token-shim ")
    legacy = Path(sys.executable).with_name("eks-get-token-use-cache")
    if not legacy.exists():
        pytest.skip("not installed as a package")
    out = subprocess.run([str(legacy), "-c", "demo"], env=shim.env, capture_output=True, check=True)
    assert token_of(out.stdout)


@pytest.mark.parametrize("value", ["1e308", "inf", "nan", "0", "-1", "86401"])
def test_absurd_timeouts_are_usage_errors(shim: Shim, value: str) -> None:
    result = shim.run("-c", "demo", "--timeout", value, expect=2)
    assert b"--timeout takes" in result.stderr
    assert shim.calls() == []


@pytest.mark.parametrize(
    ("option", "what", "most"),
    [
        ("--timeout", "--timeout takes more than zero", 86400),  # a day: beyond any backend
        ("--refresh-before", "--refresh-before (EKS_SHIM_REFRESH_BEFORE) takes zero", 366 * 86400),
        ("--refresh-ahead", "--refresh-ahead (EKS_SHIM_REFRESH_AHEAD) takes zero", 366 * 86400),
        ("--max-age", "--max-age (EKS_SHIM_MAX_AGE) takes zero", 366 * 86400),  # a year
    ],
)
def test_seconds_go_up_to_their_bound_and_no_further(
    shim: Shim, option: str, what: str, most: int
) -> None:
    assert token_of(shim.run("-c", "demo", option, str(most)).stdout)
    result = shim.run("-c", "demo", option, str(most + 1), expect=2)
    assert f"{what} to {most} seconds, not '{most + 1}'".encode() in result.stderr
    assert len(shim.calls()) == 1


@pytest.mark.parametrize("name", ["", "A=B"])
def test_key_env_takes_only_a_variable_name(shim: Shim, name: str) -> None:
    result = shim.run("-c", "demo", "--key-env", "OK", "--key-env", name, expect=2)
    assert b"--key-env takes the name of an environment variable" in result.stderr
    assert shim.calls() == []


def test_an_empty_cache_dir_option_is_a_usage_error(shim: Shim) -> None:
    result = shim.run("-c", "demo", "--cache-dir", "", expect=2)
    assert b"--cache-dir takes a directory" in result.stderr
    assert shim.calls() == []
    shim.run("-c", "demo", EKS_SHIM_CACHE_DIR="")  # an empty variable counts as unset
    assert len(shim.entries()) == 1


def test_a_bogus_backend_variable_does_not_break_generic_mode(shim: Shim) -> None:
    result = shim.run(
        "--", "aws", "eks", "get-token", "--cluster-name", "x", EKS_SHIM_BACKEND="bogus"
    )
    assert token_of(result.stdout)
    assert shim.run("-c", "x", EKS_SHIM_BACKEND="bogus", expect=2).returncode == 2


def test_a_repeated_option_means_its_last_value(shim: Shim) -> None:
    a = shim.run("-c", "a").stdout
    b = shim.run("-c", "a", "-c", "b").stdout  # as argparse: the last one wins
    assert token_of(b) != token_of(a)
    assert shim.calls()[-1]["argv"][-3] == "b"
    assert shim.run("-c", "a", "-c", "b").stdout == b  # and the hit path agrees


@pytest.mark.parametrize(
    "args",
    [
        ["--bogus"],
        ["-c"],
        ["--timeout", "x", "-c", "demo"],
        ["-c", "demo", "--refresh", "--purge"],
        ["kubeconfig"],
        ["kubeconfig", "bogus"],
        ["kubeconfig", "wrap", "--kubeconfig", "/nonexistent/config"],
        ["--", "no-such-command-here"],
        ["-c", "demo", "-b", "bogus"],
        ["--refr", "-c", "demo"],  # no abbreviations: the hot path's scanner knows none
        ["--cache", "/tmp", "-c", "demo"],
    ],
)
def test_every_message_starts_with_the_tool_s_name(shim: Shim, args: list[str]) -> None:
    result = shim.run(*args, expect=None)
    assert result.returncode != 0
    lines = result.stderr.decode().splitlines()
    assert lines
    assert all(line.startswith("eks-token-shim: ") for line in lines), lines


@pytest.mark.parametrize(
    "args",
    [
        ["-v", "-c", "demo"],
        ["-c", "demo", "-v"],
        ["-vc", "demo"],
        ["--verbose", "--", "aws", "eks", "get-token", "--cluster-name", "demo"],
        ["-v", "kubeconfig", "wrap", "--dry-run"],
        ["kubeconfig", "-v", "wrap", "--dry-run"],
        ["kubeconfig", "wrap", "--dry-run", "-v"],
    ],
)
def test_verbose_wherever_options_are_taken(shim: Shim, args: list[str]) -> None:
    shim.run("-c", "demo")  # a cached entry: a hit must be verbose too
    result = shim.run(*args)
    assert b"eks-token-shim: debug: " in result.stderr, result.stderr


def test_the_debug_variable_works_for_every_command(shim: Shim) -> None:
    for args in (["-c", "demo"], ["--list"], ["kubeconfig", "wrap", "--dry-run"]):
        result = shim.run(*args, EKS_SHIM_DEBUG="1")
        assert b"eks-token-shim: debug: " in result.stderr, args


def test_the_debug_variable_makes_a_hit_explain_itself(shim: Shim) -> None:
    shim.run("-c", "demo")
    hit = shim.run("-c", "demo", EKS_SHIM_DEBUG="1")
    assert b"eks-token-shim: debug: cache hit" in hit.stderr
    assert len(shim.calls()) == 1


def test_help_gives_each_option_its_help_variable_and_default(shim: Shim) -> None:
    """--help is built from the option table: each option with its words, its variable and
    its default, and nothing the table does not say."""
    text = shim.run("--help", COLUMNS="1000").stdout.decode()  # no help text folded
    lines = [line.strip() for line in text.splitlines()]
    for option in VALUE_OPTIONS:
        first = option.flags[0]
        (at,) = [at for at, line in enumerate(lines) if line.split(" ")[0] in (first, first + ",")]
        line = lines[at]
        if line.endswith(option.metavar):  # a long invocation: the help is on the next line
            line += " " + lines[at + 1]
        assert option.help in line
        assert ("(env " in line) == bool(option.env), line
        assert not option.env or f"(env {option.env}" in line, line
        assert line.endswith(f"default: {option.default})") == bool(option.default), line
    assert "EKS_SHIM_DEBUG=1 works as -v" in text


def test_help_has_one_heading_per_group(shim: Shim) -> None:
    headings = [
        line for line in shim.run("--help").stdout.decode().splitlines() if line.endswith(":")
    ]
    assert len(headings) == len(set(headings)), headings


def test_the_reference_names_every_option_variable_and_default() -> None:
    """docs/reference.md keeps up with the option table (what it says of each is its own
    prose: only that each is there is checked)."""
    readme = (Path(__file__).parent.parent / "docs" / "reference.md").read_text()
    for option in VALUE_OPTIONS:
        assert f"`{', '.join(option.flags)} {option.metavar}`" in readme
        assert not option.env or f"`{option.env}`" in readme
        assert not option.default or option.default in readme
    assert "`EKS_SHIM_DEBUG=1`" in readme


def test_kubeconfig_help_explains_wrap_and_unwrap(shim: Shim) -> None:
    text = shim.run("kubeconfig", "--help").stdout.decode()
    assert text.split("\n\n")[1] == (
        "`shim kubeconfig wrap|unwrap`: put the shim in front of EKS exec plugins, and take it out."
    )
    assert "wrap: put the shim in front of" in text
    assert "wrap adds the shim to that allowlist too" in text  # (it edits kuberc too)
    assert "unwrap: give those users back" in text
    assert token_of(shim.run("-c", "demo").stdout)


def test_kubeconfig_options_are_not_abbreviated_and_a_run_is_exit_0(
    shim: Shim, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """As the credential command line: `--kube` is no `--kubeconfig` (a typo must not edit
    a file it did not name). A run that finds nothing to do is still a success."""
    result = shim.run("kubeconfig", "wrap", "--kube", "x", expect=2)
    assert b"unrecognized arguments: --kube x" in result.stderr
    shim.as_this_process(monkeypatch)
    assert cli.run(["kubeconfig", "unwrap", "--dry-run"]) == 0
    assert capsys.readouterr().out == "nothing to unwrap\n"


@pytest.mark.parametrize("args", [["--list"], ["--purge"], ["--help"], ["--version"]])
@pytest.mark.parametrize("unbuffered", ["", "1"])
def test_a_stdout_that_cannot_be_written_is_one_line_and_exit_1(
    shim: Shim, args: list[str], unbuffered: str
) -> None:
    """A full disk behind stdout: said once, exit 1; not a bug's exit 3 and crash log,
    nor Python's "Exception ignored" and exit 120 when the output was buffered."""
    shim.run("-c", "demo")  # (an entry: --list and --purge have something to print)
    env = {key: value for key, value in shim.env.items() if key != "PYTHONUNBUFFERED"}
    env.update({"PYTHONUNBUFFERED": unbuffered} if unbuffered else {})
    with open("/dev/full", "wb") as full:
        done = subprocess.run(
            [*shim_argv(), *args], env=env, stdout=full, stderr=subprocess.PIPE, check=False
        )
    assert done.stderr.decode().splitlines() == [
        "eks-token-shim: error: cannot write to stdout: No space left on device"
    ]
    assert done.returncode == 1
    assert not (shim.cache_dir / "crash.log").exists()


def test_a_reader_that_went_away_is_told_nothing(shim: Shim) -> None:
    """`shim --list | head -1`: the pipe is closed; as a shell's tools, no message."""
    shim.run("-c", "demo")
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [*shim_argv(), "--list"], env=shim.env, stdout=write_end, stderr=subprocess.PIPE
        )
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (1, b"")
