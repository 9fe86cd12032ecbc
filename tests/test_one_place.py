"""Issue #9: purge and list match how users made their entries; one error boundary;
-v wherever options are taken; the lock's inode re-check (filelock #31)."""

from __future__ import annotations

import os
import platform
import stat
import sys
import tempfile
import threading
from pathlib import Path

import pytest
from conftest import Shim, token_of

from shim import __version__, cli, crash, kubeconfig, lock, log
from shim.deadline import Deadline
from shim.lock import KeyLock

KUBECONFIG_ENV = {"AWS_PROFILE": "ops"}  # what `aws eks update-kubeconfig --profile` writes
WRAPPED = ["--", "aws", "--region", "eu-west-1", "eks", "get-token", "--cluster-name", "prod"]
WRAPPED += ["--output", "json"]  # what `shim kubeconfig wrap` makes of update-kubeconfig's
MADE = {
    # how users make entries for cluster "prod", and what --list then says of them
    "eks mode": (["-c", "prod"], {}),
    "eks mode, -r and -p": (["-c", "prod", "-r", "eu-west-1", "-p", "admin"], {}),
    "shim kubeconfig wrap": (WRAPPED, KUBECONFIG_ENV),
    "wrapped authenticator": (["--", "aws-iam-authenticator", "token", "-i", "prod"], {}),
}


def bug_in(
    monkeypatch: pytest.MonkeyPatch,
    module: object,
    name: str,
    error: type[Exception] = ZeroDivisionError,
) -> None:
    """Replace `module.name` with a function that raises `error("injected")`: a bug."""

    def bug(*args: object, **kwargs: object) -> None:
        raise error("injected")

    monkeypatch.setattr(module, name, bug)


def make_all(shim: Shim) -> None:
    for args, env in MADE.values():
        shim.run(*args, env=env)
    shim.run("-c", "other")
    assert len(shim.entries()) == 5


def test_list_shows_cluster_profile_region_and_how_each_entry_was_made(shim: Shim) -> None:
    make_all(shim)
    rows = sorted(line.split()[:5] for line in shim.run("--list").stdout.decode().splitlines()[1:])
    assert rows == [
        ["other", "-", "-", "v1beta1", "eks"],
        ["prod", "-", "-", "v1beta1", "eks"],
        ["prod", "-", "-", "v1beta1", "generic"],
        ["prod", "admin", "eu-west-1", "v1beta1", "eks"],
        ["prod", "ops", "eu-west-1", "v1beta1", "generic"],
    ]


def test_a_wrapped_command_s_flags_are_read_as_its_program_reads_them(shim: Shim) -> None:
    """`--flag=value` as well as `--flag value`, the last one winning, a flag without a value
    at the end read as nothing."""
    shim.run(
        "--",
        "aws",
        "eks",
        "get-token",
        "--cluster-name=old",
        "--cluster-name=prod",
        "--region=eu-west-1",
        "--profile",
    )
    rows = [line.split()[:5] for line in shim.run("--list").stdout.decode().splitlines()[1:]]
    assert rows == [["prod", "-", "eu-west-1", "v1beta1", "generic"]]
    assert b"removed 0" in shim.run("--purge", "-c", "old").stdout
    assert b"removed 1" in shim.run("--purge", "-c", "prod", "-r", "eu-west-1").stdout


def test_list_reads_region_and_profile_from_the_environment_as_the_aws_cli_does(
    shim: Shim,
) -> None:
    """AWS_REGION before AWS_DEFAULT_REGION, AWS_PROFILE before AWS_DEFAULT_PROFILE."""
    legacy = {"AWS_DEFAULT_REGION": "ap-south-1", "AWS_DEFAULT_PROFILE": "legacy"}
    shim.run("-c", "one", env=legacy)
    shim.run("-c", "two", env={**legacy, "AWS_REGION": "eu-west-1", "AWS_PROFILE": "ops"})
    rows = sorted(line.split()[:3] for line in shim.run("--list").stdout.decode().splitlines()[1:])
    assert rows == [["one", "legacy", "ap-south-1"], ["two", "ops", "eu-west-1"]]
    assert b"removed 1" in shim.run("--purge", "-c", "one", "-r", "ap-south-1").stdout


def test_eks_mode_and_the_same_wrapped_command_share_one_entry(shim: Shim) -> None:
    first = shim.run("-c", "prod", "-r", "eu-west-1", "-p", "ops").stdout
    assert shim.run(*WRAPPED, env=KUBECONFIG_ENV).stdout == first
    assert len(shim.calls()) == 1


def test_purge_a_cluster_removes_it_however_it_was_made(shim: Shim) -> None:
    make_all(shim)
    result = shim.run("--purge", "-c", "prod")
    lines = result.stdout.decode().splitlines()
    assert len([line for line in lines if line.startswith("removed: cluster prod,")]) == 4
    assert lines[-1].startswith("removed 4 cache entries")
    assert "other" in shim.run("--list").stdout.decode()
    assert len(shim.entries()) == 1


@pytest.mark.parametrize(
    ("narrowing", "left"),
    [(["-p", "admin"], 4), (["-r", "eu-west-1"], 3), (["-p", "ops", "-r", "us-east-1"], 5)],
)
def test_purge_is_narrowed_by_profile_and_region(
    shim: Shim, narrowing: list[str], left: int
) -> None:
    make_all(shim)
    shim.run("--purge", "-c", "prod", *narrowing)
    assert len(shim.entries()) == left


def test_purge_a_command_keeps_its_exact_meaning(shim: Shim) -> None:
    make_all(shim)
    args, env = MADE["wrapped authenticator"]
    result = shim.run("--purge", *args, env=env)
    assert b"removed 1 cache entry" in result.stdout
    assert len(shim.entries()) == 4


def test_an_unexpected_error_exits_3_with_one_line_and_a_crash_log(
    shim: Shim, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    bug_in(monkeypatch, cli, "get_credential")
    shim.as_this_process(monkeypatch)
    assert cli.run(["-c", "demo"]) == 3
    captured = capfd.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert line.startswith("eks-token-shim: error: unexpected ZeroDivisionError")
    crash_log = shim.cache_dir / "crash.log"
    assert str(crash_log) in line
    assert stat.S_IMODE(crash_log.stat().st_mode) == 0o600
    text = crash_log.read_text()
    assert "Traceback" in text
    assert "ZeroDivisionError: injected" in text
    assert f"eks-token-shim {__version__}" in text
    assert f"python {platform.python_version()} ({sys.executable})" in text
    assert b"removed 0 cache entries" in shim.run("--purge").stdout  # crash.log is ours
    assert not crash_log.exists()
    try:
        assert cli.run(["-v", "-c", "demo"]) == 3  # -v: the traceback on stderr as well
    finally:
        log.set_verbose(False)  # (-v is the process's state)
    assert "ZeroDivisionError: injected" in capfd.readouterr().err


def test_a_bug_while_caching_costs_a_warning_not_the_credential(
    shim: Shim, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    from shim import meta

    bug_in(monkeypatch, meta, "encode", ValueError)
    shim.as_this_process(monkeypatch)
    assert cli.run(["-c", "demo"]) == 0
    captured = capfd.readouterr()
    assert token_of(captured.out.encode())
    assert captured.err.splitlines() == [
        "eks-token-shim: warning: could not cache the credential (ValueError): printed, not cached"
    ]
    assert shim.entries() == []


def _crash_in(monkeypatch: pytest.MonkeyPatch, module: object, name: str) -> None:
    bug_in(monkeypatch, module, name)
    monkeypatch.setattr(crash, "_where", {})  # a fresh call: no cache directory known yet


@pytest.mark.parametrize("where", ["EKS_SHIM_CACHE_DIR", "empty EKS_SHIM_CACHE_DIR", "default"])
@pytest.mark.parametrize("when", ["before the options", "in shim kubeconfig"])
def test_a_crash_before_the_options_are_read_is_logged_where_the_environment_says(
    shim: Shim,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    tmp_path: Path,
    when: str,
    where: str,
) -> None:
    """No cache directory was noted yet: the log goes where EKS_SHIM_CACHE_DIR (or the
    default under HOME) points, made 0700 if missing."""
    if when == "before the options":
        _crash_in(monkeypatch, cli, "split_command")
    else:
        _crash_in(monkeypatch, kubeconfig, "run")
    shim.as_this_process(monkeypatch)
    cache_dir = shim.cache_dir
    if where == "EKS_SHIM_CACHE_DIR":
        cache_dir = tmp_path / "elsewhere" / "cache"
        monkeypatch.setenv("EKS_SHIM_CACHE_DIR", str(cache_dir))
    elif where == "empty EKS_SHIM_CACHE_DIR":  # counts as unset
        monkeypatch.setenv("EKS_SHIM_CACHE_DIR", "")
    else:
        monkeypatch.delenv("EKS_SHIM_CACHE_DIR", raising=False)
    argv = ["-c", "demo"] if when == "before the options" else ["kubeconfig", "wrap"]
    assert cli.run(argv) == 3
    (line,) = capfd.readouterr().err.splitlines()
    assert line.endswith(f"the traceback is in {cache_dir / 'crash.log'}")
    assert "ZeroDivisionError: injected" in (cache_dir / "crash.log").read_text()
    assert stat.S_IMODE(cache_dir.stat().st_mode) == 0o700


@pytest.mark.parametrize("when", ["before the options", "after"])
def test_a_crash_log_no_cache_dir_takes_goes_to_a_private_temp_file(
    shim: Shim,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    tmp_path: Path,
    when: str,
) -> None:
    shim.as_this_process(monkeypatch)
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))  # TMPDIR, as tempfile read it
    (tmp_path / "file").write_text("")
    unusable = str(tmp_path / "file" / "cache")
    argv = ["-c", "demo"]
    if when == "before the options":  # the environment's dir is all it can know
        monkeypatch.setenv("EKS_SHIM_CACHE_DIR", unusable)
        _crash_in(monkeypatch, cli, "split_command")
    else:  # the command line's dir, not the default the environment would give
        monkeypatch.delenv("EKS_SHIM_CACHE_DIR", raising=False)
        argv += ["--cache-dir", unusable]
        _crash_in(monkeypatch, cli, "get_credential")
    assert cli.run(argv) == 3
    (line,) = capfd.readouterr().err.splitlines()
    (log_file,) = temp.iterdir()
    assert log_file.name.startswith("eks-token-shim-crash-")
    assert log_file.suffix == ".log"
    assert line.endswith(f"the traceback is in {log_file}")
    assert stat.S_IMODE(log_file.stat().st_mode) == 0o600
    assert "ZeroDivisionError: injected" in log_file.read_text()
    assert not shim.cache_dir.exists()  # not the default dir either
    with monkeypatch.context() as nowhere:  # (undone before pytest's own temp files)
        nowhere.setattr(tempfile, "tempdir", str(tmp_path / "gone"))
        assert cli.run(argv) == 3
    (line,) = capfd.readouterr().err.splitlines()
    assert line.endswith("a bug in eks-token-shim (no crash log could be written)")


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


def test_a_purged_lock_file_never_gives_two_holders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """filelock #31: B opened the lock file, a purge removed it, C locked a new file at the
    path, A released the old one. B must not take the lock it now holds alone."""
    path = str(tmp_path / "k.lock")
    descriptors = sorted(os.listdir("/proc/self/fd"))
    holder_a = KeyLock(path)
    assert holder_a.acquire(Deadline(0))
    opened, go = threading.Event(), threading.Event()
    original_open = lock._open

    def slow_open(name: str) -> object:
        file = original_open(name)
        if not opened.is_set():
            opened.set()
            go.wait(10)  # the fault: B is descheduled between its open and its flock
        return file

    monkeypatch.setattr(lock, "_open", slow_open)
    result: list[bool] = []
    waiter_b = KeyLock(path)
    thread = threading.Thread(target=lambda: result.append(waiter_b.acquire(Deadline(1.0))))
    thread.start()
    assert opened.wait(10)
    os.unlink(path)  # --purge
    holder_c = KeyLock(path)
    assert holder_c.acquire(Deadline(0))
    holder_a.release()
    go.set()
    thread.join(10)
    assert result == [False], "B took a lock that C holds"
    holder_c.release()
    assert sorted(os.listdir("/proc/self/fd")) == descriptors  # B closed the file it let go


def test_help_gives_each_option_the_variable_and_default_the_readme_gives(shim: Shim) -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    table = readme.split("| option | env | default |\n| --- | --- | --- |\n")[1]
    rows = table.split("\n\n")[0].splitlines()
    text = shim.run("--help", COLUMNS="1000").stdout.decode()  # one line per option
    lines = [line.strip() for line in text.splitlines()]
    checked = 0
    for row in rows:
        option, env, default = (cell.strip() for cell in row.strip("|").split("|"))
        flag = option.split("`")[1].split()[0].rstrip(",")  # `--cache-dir DIR`: -> --cache-dir
        (line,) = [line for line in lines if line.split(" ")[0].rstrip(",") == flag]
        if env.startswith("`EKS_SHIM_") and "=" not in env:
            assert f"env {env.strip('`')}" in line
            checked += 1
        if default.strip("`") and default != "off":
            assert line.endswith(f"default: {default.strip('`')})")
            checked += 1
    assert checked == 9  # 4 variables, 5 defaults
    assert "EKS_SHIM_DEBUG=1 works as -v" in text


def test_kubeconfig_help_explains_wrap_and_unwrap(shim: Shim) -> None:
    text = shim.run("kubeconfig", "--help").stdout.decode()
    assert "wrap: put the shim in front of" in text
    assert "unwrap: give those users back" in text
    assert token_of(shim.run("-c", "demo").stdout)
