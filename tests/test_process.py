"""shim.process: running a backend. Its output, stderr and stdin, its exit code, timeouts
and signals ending it with everything it started, the terminal handed over and back."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    HANG_GUARD,
    Shim,
    age,
    needs_proc,
    on_a_terminal,
    open_descriptors,
    process_state,
    shim_argv,
    token_of,
)

from shim.deadline import Deadline


# No orphans.
def child_alive(pid: int) -> bool:
    return process_state(pid) not in ("", "Z")


def wait_gone(pids: list[int]) -> None:
    deadline = time.monotonic() + HANG_GUARD
    while any(child_alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            for pid in pids:
                if child_alive(pid):
                    os.kill(pid, signal.SIGKILL)
            pytest.fail(f"the backend's children outlived it: {pids}")
        time.sleep(0.05)


def started_children(pids_file: Path, count: int = 1) -> list[int]:
    deadline = time.monotonic() + HANG_GUARD
    while not (pids_file.exists() and len(pids_file.read_text().split()) >= count):
        assert time.monotonic() < deadline, "the backend never started its child"
        time.sleep(0.02)
    return [int(pid) for pid in pids_file.read_text().split()]


# What kubectl does around a plugin, in the pty's session: run it, then use the terminal.
# As kubectl does, it reads the plugin's stdout through a pipe; stdin and stderr are the
# terminal's.
AS_KUBECTL = """
import os, subprocess, sys
ran = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, check=False)
sys.stdout.buffer.write(ran.stdout)
print("terminal is ours" if os.tcgetpgrp(0) == os.getpgrp() else "terminal LOST", flush=True)
sys.exit(ran.returncode)
"""


def talk_to(terminal: int, answer: bytes) -> bytes:
    """Wait for the MFA prompt on `terminal`, type `answer`, read until the other end closes."""
    import select

    output = b""
    deadline = time.monotonic() + HANG_GUARD
    while b"Enter MFA code" not in output:
        ready, _, _ = select.select([terminal], [], [], max(0, deadline - time.monotonic()))
        assert ready, f"no prompt: {output!r}"
        output += os.read(terminal, 4096)
    os.write(terminal, answer)
    return read_to_the_end(terminal, deadline, output)


def read_to_the_end(terminal: int, deadline: float, output: bytes = b"") -> bytes:
    """`output` and what `terminal` gives until the other end closes it."""
    import select

    while True:
        ready, _, _ = select.select([terminal], [], [], max(0, deadline - time.monotonic()))
        assert ready, f"stuck: {output!r}"
        try:
            chunk = os.read(terminal, 4096)
        except OSError:  # EIO: the child closed the terminal
            return output
        if not chunk:
            return output
        output += chunk


# Only the credential goes to stdout; stderr, stdin and the environment pass through.
def test_stdout_is_the_credential_and_backend_stderr_passes_through(shim: Shim) -> None:
    result = shim.run("-c", "demo", FAKE_MODE="stderr")
    assert result.returncode == 0
    credential = json.loads(result.stdout)
    assert credential["kind"] == "ExecCredential"
    assert b"a message from the backend" in result.stderr
    assert b"a message from the backend" not in result.stdout


def test_stdin_reaches_the_backend_for_mfa_prompts(shim: Shim) -> None:
    result = shim.run("-c", "demo", stdin=b"123456\n", FAKE_MODE="mfa")
    assert result.returncode == 0
    assert token_of(result.stdout).endswith("-mfa-123456")


def test_a_missing_backend_is_a_clear_error(shim: Shim) -> None:
    result = shim.run("--", "no-such-command-anywhere", expect=127)
    assert result.stdout == b""
    assert b"no-such-command-anywhere: command not found" in result.stderr


def test_a_name_that_is_not_utf8_is_shown_by_its_bytes(shim: Shim) -> None:
    result = shim.run("--", os.fsdecode(b"aws\xff\xfe"), expect=127)
    shown = b"aws\\xff\\xfe"  # (as Python writes bytes: the terminal gets no raw 0xff)
    said = b"eks-token-shim: error: " + shown + b": command not found (is it on PATH?)\n"
    assert result.stderr == said


def test_a_backend_path_to_nothing_says_so(shim: Shim, tmp_path: Path) -> None:
    """A path is not looked up on PATH: the message says the file is missing."""
    missing = tmp_path / "nowhere" / "aws"
    result = shim.run("--", str(missing), expect=127)
    assert result.stderr.decode().splitlines() == [
        f"eks-token-shim: error: {missing}: no such file"
    ]


@pytest.mark.parametrize(
    ("content", "mode", "code", "says"),
    [
        (b"#!/bin/sh\n", 0o644, 126, "permission denied"),
        (b"\x7fELF, but not really", 0o755, 1, "cannot run: Exec format error"),
        (
            b"#!/nonexistent/interpreter\n",
            0o755,
            126,
            "cannot run: the interpreter its #! line names is not there",
        ),
    ],
)
def test_a_backend_that_cannot_run_is_a_clear_error(
    shim: Shim, tmp_path: Path, content: bytes, mode: int, code: int, says: str
) -> None:
    backend = tmp_path / "backend"
    backend.write_bytes(content)
    backend.chmod(mode)
    result = shim.run("--", str(backend), expect=code)
    assert result.stderr.decode().splitlines() == [f"eks-token-shim: error: {backend}: {says}"]
    assert shim.entries() == []


# Timeout.
def test_a_hanging_backend_is_killed_and_nothing_cached(shim: Shim) -> None:
    result = shim.run("-c", "demo", "--timeout", "1", FAKE_MODE="sleep:60", timeout=30, expect=124)
    assert result.stdout == b""
    assert b"timed out (--timeout 1 s)" in result.stderr
    assert shim.entries() == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_ends_the_backend_and_its_children(
    shim: Shim, tmp_path: Path, signum: int
) -> None:
    pids_file = tmp_path / "children"
    process = shim.popen("-c", "demo", FAKE_MODE="child-sleep:300", FAKE_CHILD_PIDS=str(pids_file))
    children = started_children(pids_file)
    backend = shim.calls()[0]["pid"]
    process.send_signal(signum)
    assert process.wait(HANG_GUARD) == 128 + signum
    assert process.stdout is not None
    assert process.stdout.read() == b""
    wait_gone([*children, int(str(backend))])
    assert shim.entries() == []


@pytest.mark.parametrize("where", ["foreground", "background refresh"])
def test_a_timeout_ends_the_backend_and_its_children(
    shim: Shim, tmp_path: Path, where: str
) -> None:
    if where == "background refresh":
        shim.run("-c", "demo", "--timeout", "1")
        age(shim, 840 - 200)  # the next call serves, and refreshes in the background
    pids_file = tmp_path / "children"
    shim.run(
        "-c",
        "demo",
        "--timeout",
        "1",
        FAKE_MODE="child-sleep:300",
        FAKE_CHILD_PIDS=str(pids_file),
        timeout=HANG_GUARD,
        expect=124 if where == "foreground" else 0,
    )
    wait_gone(started_children(pids_file))


def test_a_backend_that_closes_its_output_and_runs_on_is_timed_out(shim: Shim) -> None:
    """As kubectl waits for a plugin to exit, so does the shim, up to --timeout."""
    result = shim.run(
        "-c",
        "demo",
        "--timeout",
        "2",
        FAKE_MODE="close-output:300",
        expect=124,
        timeout=HANG_GUARD,
    )
    assert b"timed out (--timeout 2 s) and was killed" in result.stderr
    assert shim.entries() == []


@pytest.mark.parametrize("mode", ["stubborn-child:300", "stubborn:300"])
def test_a_backend_or_a_child_that_ignores_term_is_killed(
    shim: Shim, tmp_path: Path, mode: str
) -> None:
    """A child that ignores TERM outlives its parent's exit: the group gets KILL after the
    grace all the same; so does a backend that ignores TERM itself."""
    pids_file = tmp_path / "children"
    process = shim.popen(
        "-c", "demo", "--timeout", "2", FAKE_MODE=mode, FAKE_CHILD_PIDS=str(pids_file)
    )
    children = started_children(pids_file)
    backend = shim.calls()[0]["pid"]
    assert process.wait(HANG_GUARD) == 124
    wait_gone([*children, int(str(backend))])


def test_a_backend_that_outlives_the_timeout_gets_term_and_time_to_tidy_up(
    shim: Shim, tmp_path: Path
) -> None:
    """TERM first, then a grace before KILL: a backend that tidies up on TERM (the AWS
    CLI's SSO cache, a temp file) gets to finish."""
    said = tmp_path / "said"
    shim.run(
        "-c",
        "demo",
        "--timeout",
        "4",  # time for the backend to set its trap first, even on a loaded machine
        FAKE_MODE="trap-sleep:300",
        FAKE_TERM_LOG=str(said),
        expect=124,
        timeout=HANG_GUARD,
    )
    assert said.read_text() == "tidied up after TERM\n"


def test_an_mfa_prompt_on_the_terminal_still_works(shim: Shim) -> None:
    """The backend's own process group gets the terminal: reading it must not stop it; and
    the terminal is given back afterwards, or kubectl would be stopped reading it next."""
    argv = [sys.executable, "-c", AS_KUBECTL, *shim_argv(), "-c", "demo"]
    pid, terminal = on_a_terminal(argv, {**shim.env, "FAKE_MODE": "mfa"})
    try:
        output = talk_to(terminal, b"424242\n")
    finally:
        _, status = os.waitpid(pid, os.WNOHANG)
        if _ == 0:  # still running: stuck, the test has failed already
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, output
    assert b"-mfa-424242" in output
    assert b"terminal is ours" in output


def reaped(pid: int) -> int:
    """The exit code of `pid`, once it has exited and become our child (an orphan comes to
    a child subreaper); fails after HANG_GUARD seconds."""
    deadline = time.monotonic() + HANG_GUARD
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):  # (not ours yet: its parent lives)
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    raise AssertionError(f"{pid} still runs after {HANG_GUARD} s")


# kubectl holds the shim's stdout and never reads it, as it does while a plugin runs.
KUBECTL_THAT_WAITS = """
import os, subprocess, sys, time
pids = sys.argv[1]
shim = subprocess.Popen(sys.argv[2:], stdout=subprocess.PIPE)
with open(pids + ".tmp", "w") as file:
    file.write(f"{os.getpid()} {shim.pid}")
os.rename(pids + ".tmp", pids)
time.sleep(300)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's child subreaper")
def test_a_shim_on_the_terminal_ends_its_backend_when_kubectl_is_killed(
    shim: Shim, tmp_path: Path
) -> None:
    """On the terminal the shim and the backend leave kubectl's process group (the
    backend's prompt must be the foreground), so killing kubectl's group no longer
    reaches them: the shim watches its stdout's reader and, once kubectl is gone, ends
    the backend as a write to the closed pipe would have (128+SIGPIPE), not when the
    backend is done, however long it runs."""
    pids = tmp_path / "pids"
    kubectl = [sys.executable, "-c", KUBECTL_THAT_WAITS, str(pids), *shim_argv()]
    kubectl += ["--timeout", "120", "-c", "demo"]
    # (a session leader that outlives kubectl: its exit would hang up the terminal)
    leader_script = " ".join(f"'{arg}'" for arg in kubectl) + "; sleep 300"
    set_child_subreaper(True)  # the orphaned shim and backend become ours to reap
    leader, terminal = on_a_terminal(
        ["/bin/sh", "-c", leader_script],
        {**shim.env, "FAKE_MODE": "sleep:120"},
    )
    try:
        deadline = time.monotonic() + HANG_GUARD
        while not (pids.exists() and shim.calls()):
            assert time.monotonic() < deadline, "the backend never started"
            time.sleep(0.02)
        kubectl_pid, shim_pid = map(int, pids.read_text().split())
        backend_pid = shim.calls()[0]["pid"]
        os.kill(kubectl_pid, signal.SIGKILL)
        assert reaped(shim_pid) == 128 + signal.SIGPIPE
        with pytest.raises(ProcessLookupError):  # ended with its group (and reaped by the
            os.kill(backend_pid, 0)  # shim), not left to run its 120 s
    finally:
        os.kill(leader, signal.SIGKILL)
        os.waitpid(leader, 0)
        os.close(terminal)
        set_child_subreaper(False)


@pytest.mark.parametrize(
    ("mode", "code", "says"),
    [
        (f"die:{signal.SIGKILL}", 137, f"-{signal.SIGKILL}"),
        (f"die:{signal.SIGSEGV}", 139, f"-{signal.SIGSEGV}"),
        ("exit:1", 1, "1"),
        ("exit:255", 255, "255"),
    ],
)
def test_a_backend_s_exit_code_is_ours_and_a_signal_n_is_128_plus_n(
    shim: Shim, mode: str, code: int, says: str
) -> None:
    result = shim.run("-c", "demo", FAKE_MODE=mode, expect=code)
    assert f"failed with exit code {says}".encode() in result.stderr
    assert shim.entries() == []


def test_a_child_that_keeps_the_backend_s_stderr_is_not_waited_for(
    shim: Shim, tmp_path: Path
) -> None:
    """The backend printed its credential and exited; something it started still holds
    its stderr (a credential helper, a daemon): the call ends with the credential."""
    pids = tmp_path / "pids"
    try:
        result = shim.run(
            "-c", "demo", FAKE_MODE="stderr-child", FAKE_CHILD_PIDS=str(pids), timeout=HANG_GUARD
        )
        assert token_of(result.stdout)
    finally:
        for pid in pids.read_text().split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)


def test_python_never_prints_a_traceback_for_a_signal(shim: Shim) -> None:
    """A signal while the backend runs is an exit code, not a KeyboardInterrupt traceback."""
    process = shim.popen("-c", "demo", FAKE_MODE="sleep:300")
    deadline = time.monotonic() + HANG_GUARD
    while not shim.calls():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    assert process.wait(HANG_GUARD) == 130
    assert process.stderr is not None
    assert b"Traceback" not in process.stderr.read()


def test_a_signal_that_arrives_while_the_backend_starts_still_ends_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The signal waits (blocked) until the backend's pid is known, then ends it: the fault
    is a SIGTERM sent in the narrowest window, right after the spawn returns."""
    from shim import process
    from shim.errors import Terminated

    spawned: list[int] = []
    real_spawn = os.posix_spawnp

    def spawn_then_terminate(*args: Any, **kwargs: Any) -> int:
        pid = real_spawn(*args, **kwargs)
        spawned.append(pid)
        os.kill(os.getpid(), signal.SIGTERM)  # to us, while signals are blocked: pending
        return pid

    monkeypatch.setattr(os, "posix_spawnp", spawn_then_terminate)
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated), process.start(["sleep", "300"], dict(os.environ)) as backend:
        backend.finish(Deadline(HANG_GUARD))
    assert spawned
    assert not child_alive(spawned[0])
    assert signal.getsignal(signal.SIGTERM) is before


# A Ctrl-Z (SIGTSTP to us) in the narrowest window, right after the spawn returns.
CTRL_Z_WHILE_STARTING = """
import os, signal, sys
from shim import process
from shim.deadline import Deadline
real_spawn = os.posix_spawnp
def spawn_then_stop(*args, **kwargs):
    pid = real_spawn(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGTSTP)
    return pid
os.posix_spawnp = spawn_then_stop
with process.start(["sleep", "2"], dict(os.environ)) as backend:
    backend.finish(Deadline(60))
"""


def test_a_ctrl_z_that_arrives_while_the_backend_starts_stops_it_too() -> None:
    """Held until the backend's pid is known: without that, SIGTSTP's default stops us
    at once, and the backend runs on while the job looks stopped."""
    needs_proc()
    shim = subprocess.Popen(
        [sys.executable, "-c", CTRL_Z_WHILE_STARTING],
        stdin=subprocess.DEVNULL,
        preexec_fn=os.setpgrp,  # a job of its own: in an orphaned group, SIGTSTP is dropped
    )
    try:
        deadline = time.monotonic() + HANG_GUARD
        while process_state(shim.pid) != "T":
            assert time.monotonic() < deadline, "the shim never stopped"
            time.sleep(0.01)
        children = Path(f"/proc/{shim.pid}/task/{shim.pid}/children").read_text().split()
        # The backend; not its watchdog, which never stops (a stop before its exec would
        # hold the shim's spawn for good).
        children = [
            c for c in children if b"goodbye" not in Path(f"/proc/{c}/cmdline").read_bytes()
        ]
        assert children
        while any(process_state(int(child)) not in ("T", "") for child in children):
            assert time.monotonic() < deadline, "the backend runs on while the shim is stopped"
            time.sleep(0.01)
        os.kill(shim.pid, signal.SIGCONT)
        assert shim.wait(HANG_GUARD) == 0
    finally:
        shim.kill()
        shim.wait()


WATCHDOG_MASK = """
import os
from shim import process
from shim.deadline import Deadline
with process.start(["sleep", "0.5"], dict(os.environ)) as backend:
    me, found = os.getpid(), []
    while not found:  # (a child's command line reads empty for an instant in its exec)
        children = open(f"/proc/{me}/task/{me}/children").read().split()
        found = [c for c in children if b"goodbye" in open(f"/proc/{c}/cmdline", "rb").read()]
    (watchdog,) = found
    status = open(f"/proc/{watchdog}/status").read().splitlines()
    blocked = int(next(line for line in status if line.startswith("SigBlk:")).split()[1], 16)
    backend.finish(Deadline(60))
print(blocked)
"""


def test_the_watchdog_cannot_be_stopped_between_its_vfork_and_its_exec() -> None:
    """posix_spawn's child is born in the spawner's group; a Ctrl-Z for that group before
    it moves to its own would stop it before its exec, where `fg` never reaches it, and
    hold the shim in the kernel for good (seen under load: the job never continued). The
    watchdog, spawned once the backend runs, so while a Ctrl-Z is likely, runs with the
    stop signals held."""
    needs_proc()
    done = subprocess.run(
        [sys.executable, "-c", WATCHDOG_MASK],
        stdin=subprocess.DEVNULL, capture_output=True, timeout=HANG_GUARD, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    for signum in (signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU):
        assert int(done.stdout) & (1 << (signum - 1))


@pytest.mark.parametrize(
    "argv", [["true"], ["false"], ["sh", "-c", "echo out; echo err >&2"], ["no-such-command-x"]]
)
def test_running_a_backend_leaves_no_descriptor_open(argv: list[str]) -> None:
    """shim.process closes both pipe ends whatever happened (a background refresh, a test
    process, lives on after its backend)."""
    from shim.errors import BackendError
    from shim.process import start

    before = open_descriptors()
    with contextlib.suppress(BackendError), start(argv, dict(os.environ)) as backend:
        backend.finish(Deadline(HANG_GUARD))
    assert open_descriptors() == before


# Standard streams: any of them closed at the start.
def closed_stderr_run(shim: Shim, *args: str, **env: str) -> subprocess.CompletedProcess[bytes]:
    """The shim started with descriptor 2 closed, as `cmd 2>&-` starts it."""
    command = " ".join(f"'{arg}'" for arg in [*shim_argv(), *args])
    return subprocess.run(
        ["sh", "-c", f"exec 2>&-; exec {command}"],
        env={**shim.env, **env},
        capture_output=False,
        stdout=subprocess.PIPE,
        timeout=HANG_GUARD,
        check=False,
    )


# Close a standard descriptor, then log.standard_streams_open; report whether the
# descriptor is /dev/null afterwards (a closed one fails fstat: no report).
STARTED_WITHOUT = """
import os, sys
fd, report = int(sys.argv[1]), sys.argv[2]
os.close(fd)
from shim import log
log.standard_streams_open()
null = os.fstat(fd).st_rdev == os.stat(os.devnull).st_rdev
with open(report, "w") as file:
    file.write(str(null))
"""


@pytest.mark.parametrize("fd", [0, 1, 2])
def test_a_descriptor_we_were_started_without_is_held_open_on_dev_null(
    fd: int, tmp_path: Path
) -> None:
    """So that no file opened later takes its number."""
    report = tmp_path / "report"
    subprocess.run(
        [sys.executable, "-c", STARTED_WITHOUT, str(fd), str(report)],
        capture_output=True,
        timeout=HANG_GUARD,
        check=False,
    )
    assert report.read_text() == "True"


def test_with_stderr_closed_a_warning_does_not_cost_the_credential(shim: Shim) -> None:
    result = closed_stderr_run(shim, "-c", "demo", FAKE_MODE="noexpiry")  # warns: not cached
    assert result.returncode == 0
    assert token_of(result.stdout).startswith("k8s-aws-v1.fake-")


def test_with_stderr_closed_no_file_of_ours_gets_the_backends_stderr(shim: Shim) -> None:
    """Descriptor 2 free at the start: the lock file opened later would take it, and the
    backend's stderr, passed on to our descriptor 2, would be written into the lock."""
    result = closed_stderr_run(shim, "-c", "demo", FAKE_MODE="stderr")
    assert result.returncode == 0
    for path in shim.cache_dir.iterdir():
        assert b"a message from the backend" not in path.read_bytes(), path.name


@pytest.mark.parametrize("mode", ["stderr", "noexpiry", "fail"])
def test_a_full_stderr_nobody_reads_cannot_hold_the_call_past_its_timeout(
    shim: Shim, mode: str
) -> None:
    """The backend's stderr passed on and our own warning or error, into a pipe that is
    full: each waits for room until --timeout at most, then stderr is given up on."""
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    with contextlib.suppress(BlockingIOError):
        while True:
            os.write(write_end, b"x" * 65536)
    os.set_blocking(write_end, True)  # as a shell's `2>&1 | slow-reader` gives it
    try:
        result = subprocess.run(
            [*shim_argv(), "--timeout", "2", "-c", "demo"],
            env={**shim.env, "FAKE_MODE": mode},
            stdout=subprocess.PIPE,
            stderr=write_end,
            timeout=HANG_GUARD,
            check=False,
        )
    finally:
        os.close(write_end)
        os.close(read_end)
    if mode == "fail":
        assert (result.returncode, result.stdout) == (3, b"")
    else:
        assert result.returncode == 0
        assert token_of(result.stdout).startswith("k8s-aws-v1.fake-")


def test_a_stderr_full_for_a_moment_loses_nothing(shim: Shim) -> None:
    """A reader that falls behind, then catches up before --timeout: the backend's stderr
    and our error wait for room and all arrive."""
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    with contextlib.suppress(BlockingIOError):
        while True:
            os.write(write_end, b"x" * 65536)
    os.set_blocking(write_end, True)
    call = subprocess.Popen(
        [*shim_argv(), "--timeout", "20", "-c", "demo"],
        env={**shim.env, "FAKE_MODE": "fail"},
        stdout=subprocess.DEVNULL,
        stderr=write_end,
    )
    os.close(write_end)
    deadline = time.monotonic() + HANG_GUARD
    while not shim.calls():  # (the backend ran: its stderr meets the full pipe)
        assert time.monotonic() < deadline, "the backend never ran"
        time.sleep(0.01)
    time.sleep(0.2)
    with os.fdopen(read_end, "rb") as reader:
        said = reader.read().lstrip(b"x")
    assert call.wait(HANG_GUARD) == 3
    assert said.decode().splitlines() == [
        "An error occurred (ExpiredToken): the security token is expired",
        "eks-token-shim: error: aws eks get-token --cluster-name demo --output json failed "
        "with exit code 3",
    ]


def test_a_backend_that_prints_without_end_is_stopped_with_a_clear_error(shim: Shim) -> None:
    result = shim.run("--timeout", "60", "--", "yes", expect=1)
    assert result.stdout == b""
    assert b"yes printed more than 16 MiB, which is no credential, and was killed" in (
        result.stderr
    )


# macOS answers some signals differently from Linux; these tests give the shim macOS's
# answers on Linux. XNU's killpg returns EPERM for a group whose members are all zombies
# (exited, not reaped yet), where Linux signals them (or says ESRCH once they are reaped).
def group_states(pgid: int) -> list[str]:
    """The /proc state letter of each member of process group `pgid`."""
    states = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                fields = Path(entry.path, "stat").read_text().rpartition(")")[2].split()
                if int(fields[2]) == pgid:
                    states.append(fields[0])
    return states


def killpg_as_on_macos(sent: list[int]) -> Any:
    """os.killpg as XNU answers it; each signal asked for is noted in `sent`."""
    real = os.killpg

    def killpg(pgid: int, signum: int) -> None:
        sent.append(signum)
        states = group_states(pgid)
        if states and all(state == "Z" for state in states):
            raise PermissionError(1, os.strerror(1))
        real(pgid, signum)

    return killpg


def spawn_group(argv: list[str]) -> int:
    """`argv` as the leader of a process group of its own, as the shim runs a backend."""
    return os.posix_spawnp(argv[0], argv, dict(os.environ), setpgroup=0)


def wait_until_exited(pid: int) -> None:
    """Until our child `pid` has exited, without reaping it: a zombie."""
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)


def signals_sent(sent: list[int]) -> Any:
    """os.killpg, noting each signal asked for in `sent`."""
    real = os.killpg

    def killpg(pgid: int, signum: int) -> None:
        sent.append(signum)
        real(pgid, signum)

    return killpg


def test_a_group_that_ends_on_term_is_reaped_without_waiting_out_the_grace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from shim import process

    leader = spawn_group(["sleep", "300"])
    sent: list[int] = []
    monkeypatch.setattr(os, "killpg", signals_sent(sent))
    process.end_group(leader, grace=HANG_GUARD)
    monkeypatch.undo()
    assert signal.SIGKILL not in sent  # it ended on TERM: the grace was not waited out
    with pytest.raises(ChildProcessError):
        os.waitpid(leader, os.WNOHANG)  # reaped


def test_a_leader_that_ignores_term_is_killed_and_reaped(tmp_path: Path) -> None:
    from shim import process

    ready = tmp_path / "ready"
    leader = spawn_group(["sh", "-c", f"trap '' TERM; touch {ready}; exec sleep 300"])
    deadline = time.monotonic() + HANG_GUARD
    while not ready.exists():  # (its trap set: a TERM before it would end it, no test)
        assert time.monotonic() < deadline, "the leader never started"
        time.sleep(0.01)
    process.end_group(leader, grace=0.5)
    with pytest.raises(ChildProcessError):
        os.waitpid(leader, os.WNOHANG)  # killed, and reaped: no zombie left


def test_ending_a_backend_that_has_just_exited_is_not_a_crash_on_macos(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A backend that exits just as a timeout or a signal ends its group: on macOS the TERM
    answers EPERM. That is nothing left to end, not an error (it was exit 3, a bug)."""
    from shim import process

    needs_proc()  # (group members are read there)
    leader = spawn_group(["true"])
    wait_until_exited(leader)
    sent: list[int] = []
    monkeypatch.setattr(os, "killpg", killpg_as_on_macos(sent))
    process.end_group(leader, grace=HANG_GUARD)
    monkeypatch.undo()
    assert sent[0] == signal.SIGTERM
    assert signal.SIGKILL not in sent  # the grace was not waited out
    with pytest.raises(ChildProcessError):
        os.waitpid(leader, os.WNOHANG)  # reaped


def posix_spawnp_as_on_macos() -> Any:
    """os.posix_spawnp as Apple's libc does it: a file the kernel refuses as no executable
    (ENOEXEC) is run again as a script of /bin/sh, a path with a slash too."""
    import errno

    real = os.posix_spawn

    def posix_spawnp(path: str, argv: list[str], env: dict[str, str], **kwargs: Any) -> int:
        try:
            return real(path, argv, env, **kwargs)
        except OSError as error:
            if error.errno != errno.ENOEXEC:
                raise
            return real("/bin/sh", ["sh", path, *argv[1:]], env, **kwargs)

    return posix_spawnp


def test_a_file_that_is_no_executable_is_not_run_as_a_shell_script_on_macos(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kubectl gives `exec format error` for an executable file without `#!`; Apple's
    posix_spawnp would run it under sh. The shim runs the backend as kubectl would."""
    from shim import process
    from shim.errors import BackendError

    ran = tmp_path / "ran"
    script = tmp_path / "no-interpreter-line"
    script.write_text(f"touch {ran}\n")
    script.chmod(0o755)
    monkeypatch.setattr(os, "posix_spawnp", posix_spawnp_as_on_macos())
    env = dict(os.environ)
    with pytest.raises(BackendError) as refused, process.start([str(script)], env) as backend:
        backend.finish(Deadline(HANG_GUARD))
    assert refused.value.message == f"{script}: cannot run: Exec format error"
    assert not ran.exists()


def set_child_subreaper(on: bool) -> None:
    """Orphans of our children become ours (Linux's PR_SET_CHILD_SUBREAPER), not init's."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.prctl(36, int(on), 0, 0, 0) == 0, os.strerror(ctypes.get_errno())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's child subreaper")
def test_a_group_left_with_only_zombies_is_not_waited_for_on_macos(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The backend is reaped, and what it started has exited but is not reaped yet: on
    macOS the group answers EPERM, and nothing in it can be ended any more. Waiting out
    the grace for it, then a KILL that fails the same way, only delays kubectl."""
    from shim import process

    needs_proc()  # (group members are read there)
    set_child_subreaper(True)  # the orphaned child stays a zombie until we reap it
    try:
        leader = spawn_group(["sh", "-c", "sleep 0.3 & exit 0"])
        wait_until_exited(leader)
        deadline = time.monotonic() + HANG_GUARD
        while sorted(group_states(leader)) != ["Z", "Z"]:
            assert time.monotonic() < deadline, group_states(leader)
            time.sleep(0.01)
        sent: list[int] = []
        monkeypatch.setattr(os, "killpg", killpg_as_on_macos(sent))
        process.end_group(leader, grace=HANG_GUARD)
        monkeypatch.undo()
        assert signal.SIGKILL not in sent  # nothing left to end: the grace was not waited out
        assert 0 in sent  # (it did look)
    finally:
        set_child_subreaper(False)
        with contextlib.suppress(ChildProcessError):
            while os.waitid(os.P_PGID, leader, os.WEXITED | os.WNOHANG) is not None:
                pass


HANDOVER_TO_AN_EXITED_BACKEND = """
import os, signal
from shim import process
from shim.deadline import Deadline
real = os.killpg
def killpg(pgid, signum):
    # macOS, once the backend has exited (a zombie, not reaped yet): SIGCONT is EPERM.
    if signum == signal.SIGCONT and pgid != os.getpgrp():
        os.waitid(os.P_PID, pgid, os.WEXITED | os.WNOWAIT)
        raise PermissionError(1, os.strerror(1))
    real(pgid, signum)
os.killpg = killpg
with process.start(["true"], dict(os.environ)) as backend:
    backend.finish(Deadline(60))
print("terminal is ours" if os.tcgetpgrp(0) == os.getpgrp() else "terminal LOST", flush=True)
"""


def test_the_terminal_comes_back_from_a_backend_that_exited_at_once_on_macos() -> None:
    """Handing the terminal over succeeds, and waking the backend's group (SIGCONT) then
    fails on macOS if the backend has exited already: the terminal is the backend's
    group's all the same, and must come back, or kubectl (or the shell) loses it."""
    pid, terminal = on_a_terminal([sys.executable, "-c", HANDOVER_TO_AN_EXITED_BACKEND], os.environ)
    try:
        output = read_to_the_end(terminal, time.monotonic() + HANG_GUARD)
    finally:
        os.close(terminal)
        done, status = os.waitpid(pid, os.WNOHANG)
        if not done:
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, output
    assert b"terminal is ours" in output, output
