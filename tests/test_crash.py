"""shim.crash: an unexpected error is exit 3, one line, and a crash log where it can be written."""

from __future__ import annotations

import platform
import stat
import sys
import tempfile
from pathlib import Path

import pytest
from helpers import Shim, bug_in

from shim import __version__, cli, crash, kubeconfig, log


def _crash_in(monkeypatch: pytest.MonkeyPatch, module: object, name: str) -> None:
    bug_in(monkeypatch, module, name)
    monkeypatch.setattr(crash, "_where", {})  # a fresh call: no cache directory known yet


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
        _crash_in(monkeypatch, kubeconfig, "edit")
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


def test_ctrl_c_outside_a_backend_run_is_exit_130_and_no_crash(
    shim: Shim, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """Ctrl-C while the shim waits for a lock or reads its files: 128+SIGINT, as a shell
    says it, with no traceback and no crash log (it is no bug)."""

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "get_credential", interrupted)
    shim.as_this_process(monkeypatch)
    assert cli.run(["-c", "demo"]) == 130
    captured = capfd.readouterr()
    assert (captured.out, captured.err) == ("", "")
    assert not list(shim.cache_dir.glob("crash.log"))
