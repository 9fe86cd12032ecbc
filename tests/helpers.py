"""What the tests share: running the shim with fake backends, real tools (kubectl, the AWS CLI)
found or skipped, and small readers of what the shim wrote. scripts/bench imports from here too."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Callable

import pytest
from apiserver import ApiServer
from hypothesis import strategies as st

from shim.deadline import Deadline
from shim.entry import decode_entry, encode_entry
from shim.lock import DEFAULT_IMPLEMENTATION, KeyLock
from shim.options import VALUE_OPTIONS

HERE = Path(__file__).parent

IN_CI = os.environ.get("CI") == "true"


def shim_argv() -> list[str]:
    """The installed console script, as kubectl would run it."""
    script = Path(sys.executable).with_name("shim")
    return [str(script)] if script.exists() else [sys.executable, "-m", "shim"]


# Read before any test points HOME elsewhere: where scripts/fetch-kubectl put kubectl 1.35.
_KUBECTL_V35 = os.environ.get("KUBECTL_V35") or str(
    Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    / "eks-token-shim-dev/kubectl-v35/kubectl"
)


def in_deleted_dir(directory: Path) -> list[str]:
    """The start of an argv that runs the rest in `directory`, deleted once entered (a
    shell sitting in a directory someone removed)."""
    return ["sh", "-c", 'cd "$0" && rm -r "$0" && exec "$@"', str(directory)]


def kubectl_v35() -> str:
    """Real kubectl 1.35 (scripts/fetch-kubectl): skip without it, but fail in CI."""
    path = _KUBECTL_V35
    if not os.access(path, os.X_OK):
        message = f"kubectl 1.35 is not at {path} (scripts/fetch-kubectl puts it there)"
        if IN_CI:
            pytest.fail(f"{message}, and CI=true requires the real-component tests to run")
        pytest.skip(message)
    return path


def require_tool(name: str) -> str:
    """The path of a real tool; skip without it, but fail in CI, where it must be there."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not on PATH"
        if IN_CI:
            pytest.fail(f"{message}, and CI=true requires the real-component tests to run")
        pytest.skip(message)
    return path


def signals_at_default() -> None:
    """In a child about to exec: SIGHUP and SIGINT at their defaults (see Shim.popen)."""
    for signum in (signal.SIGHUP, signal.SIGINT):
        signal.signal(signum, signal.SIG_DFL)


class Shim:
    """Runs the shim with fake backends first on PATH, and reads their call log."""

    def __init__(self, tmp_path: Path) -> None:
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        self.log = tmp_path / "calls.log"
        self.cache_dir = tmp_path / "home" / ".kube" / "cache" / "eks-token-shim"
        for name in ("aws", "aws-iam-authenticator"):
            script = self.bin / name
            script.write_text(f"#!{sys.executable}\n" + (HERE / "fake_backend.py").read_text())
            script.chmod(0o755)
        self.env = dict(
            os.environ, PATH=f"{self.bin}{os.pathsep}{os.environ['PATH']}", FAKE_LOG=str(self.log)
        )

    def popen(self, *args: str, **env: str) -> subprocess.Popen[bytes]:
        """The shim, started as from a terminal: SIGHUP and SIGINT at their defaults even
        where the tests run under nohup or as a background job (the shim keeps them
        ignored when it is started with them ignored, as kubectl's plugins do)."""
        return subprocess.Popen(
            [*shim_argv(), *args],
            env={**self.env, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=signals_at_default,
        )

    def run(
        self,
        *args: str,
        stdin: bytes = b"",
        timeout: float = 60,
        expect: int | None = 0,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        **variables: str,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run the shim with `env` and `variables` added to the environment, in `cwd`; fail
        the test unless it exits `expect` (None: any code)."""
        result = subprocess.run(
            [*shim_argv(), *args],
            env={**self.env, **(env or {}), **variables},
            cwd=cwd,
            input=stdin,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        if expect is not None and result.returncode != expect:
            pytest.fail(
                f"shim {' '.join(args)} exited {result.returncode}, not {expect}:\n"
                f"{result.stderr.decode(errors='replace')}"
            )
        return result

    def as_this_process(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Give this process the environment the shim runs with: for calling it in-process
        (cli.run, main.main) with faults injected."""
        for name in ("HOME", "PATH", "FAKE_LOG"):
            monkeypatch.setenv(name, self.env[name])

    def calls(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def entries(self) -> list[Path]:
        return sorted(self.cache_dir.glob("*.entry")) if self.cache_dir.exists() else []


def kubectl_version(
    kubectl: str, env: dict[str, str], config: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[bytes]:
    """`kubectl [--kubeconfig CONFIG] get --raw /version`; `timeout` is a hang guard."""
    argv = [kubectl, *(["--kubeconfig", str(config)] if config else []), "get", "--raw", "/version"]
    return subprocess.run(argv, env=env, capture_output=True, timeout=timeout, check=False)


def token_of(output: bytes) -> str:
    """The token in an ExecCredential the shim printed."""
    return str(json.loads(output)["status"]["token"])


def age(shim: Shim, seconds: float) -> None:
    """Let `seconds` pass for the (only) cached entry."""
    (path,) = shim.entries()
    entry = decode_entry(path.read_bytes())
    assert entry is not None
    entry.expiry, entry.fetched_at = int(entry.expiry - seconds), int(entry.fetched_at - seconds)
    path.write_bytes(encode_entry(entry))


def cached_token(shim: Shim) -> str:
    (path,) = shim.entries()
    entry = decode_entry(path.read_bytes())
    assert entry is not None
    return token_of(entry.credential)


V1 = json.dumps(
    {
        "kind": "ExecCredential",
        "apiVersion": "client.authentication.k8s.io/v1",
        "spec": {"interactive": False},
    },
    separators=(",", ":"),
)

HANG_GUARD = 30  # seconds: far beyond any healthy call; reaching it means the call hung


def on_a_terminal(argv: list[str], env: Mapping[str, str]) -> tuple[int, int]:
    """Start `argv` as the leader of a new session whose controlling terminal is a new pty,
    as a login shell is; its pid, and the pty's master end. With posix_spawn: no Python
    runs in the child (pty.fork in a process with threads, as a test with a server
    running is, may deadlock the child, and a child whose exec failed would run the rest
    of the suite as a second pytest)."""
    master, slave = os.openpty()
    try:
        pid = os.posix_spawn(
            argv[0],
            argv,
            env,
            # Opened after setsid, without O_NOCTTY: the pty becomes the session's terminal.
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.ttyname(slave), os.O_RDWR, 0),
                (os.POSIX_SPAWN_DUP2, 0, 1),
                (os.POSIX_SPAWN_DUP2, 0, 2),
            ],
            setsid=True,
        )
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)
    return pid, master


def read_until(terminal: int, output: bytes, enough: Callable[[bytes], bool]) -> bytes:
    """`output` and what `terminal` gives next, until `enough(output)`; fails rather than
    hang when nothing comes for HANG_GUARD seconds."""
    import select

    while not enough(output):
        ready, _, _ = select.select([terminal], [], [], HANG_GUARD)
        assert ready, f"nothing more came: {output!r}"
        output += os.read(terminal, 4096)
    return output


def needs_proc() -> None:
    """Skip the calling test where there is no /proc (macOS, Windows): it reads process
    facts that only Linux shows there."""
    if not os.path.isdir("/proc/self"):
        pytest.skip("reads process facts in /proc, which only Linux has")


def open_descriptors() -> list[str]:
    """The descriptors this process has open: /proc/self/fd on Linux, /dev/fd on macOS."""
    return sorted(os.listdir("/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"))


def process_state(pid: int) -> str:
    """The state letter /proc gives process `pid` (R, S, T stopped, Z zombie...); "" once
    it is gone."""
    needs_proc()
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return ""


def plant_shim_package(directory: Path, marker: Path) -> None:
    """A `shim` package in `directory` that notes in `marker` each time it is imported, and
    whose main exits 99: what the user's own project may hold where kubectl runs."""
    package = directory / "shim"
    package.mkdir(parents=True)
    note = f"open({str(marker)!r}, 'a').write('imported\\n')\n"
    (package / "__init__.py").write_text(note)
    (package / "main.py").write_text(note + "def main():\n    return 99\n")
    (package / "cli.py").write_text(note + "def run(args):\n    return 99\n")


def key_of(shim: Shim) -> str:
    (path,) = shim.entries()
    return path.name[: -len(".entry")]


def one_warning(stderr: bytes) -> str:
    lines = stderr.decode().splitlines()
    warnings = [line for line in lines if line.startswith("eks-token-shim: warning: ")]
    assert len(warnings) == 1, lines
    assert not any("unexpected" in line or "Traceback" in line for line in lines), lines
    return warnings[0]


def sidecar(shim: Shim, suffix: str) -> Path:
    return shim.cache_dir / (key_of(shim) + suffix)


ALLOWLIST = "credentialPluginPolicy: Allowlist\ncredentialPluginAllowlist:\n"

Mount = Callable[[str], Path]  # the tmpfs fixture: mount(OPTIONS) -> its mount point

HEADER = "apiVersion: kubectl.config.k8s.io/v1beta1\nkind: Preference\n"

UPDATE_KUBECONFIG_ARGS = ["--region", "eu-west-1", "eks", "get-token", "--cluster-name", "demo"]


def accepts_fake_tokens(token: str) -> bool:
    return token.startswith("k8s-aws-v1.fake-")


def kubectl(shim: Shim, config: Path, **env: str) -> subprocess.CompletedProcess[bytes]:
    argv = [kubectl_v35(), "--kubeconfig", str(config), "get", "--raw", "/version"]
    return subprocess.run(
        argv, env={**shim.env, **env}, capture_output=True, timeout=60, check=False
    )


def shim_path() -> str:
    return os.path.abspath(shim_argv()[0])


def write_kuberc(home: Path, body: str) -> Path:
    path = home / ".kube" / "kuberc"
    path.parent.mkdir(exist_ok=True)
    path.write_text(HEADER + body)
    return path


KUBECONFIG_ENV = {"AWS_PROFILE": "ops"}  # what `aws eks update-kubeconfig --profile` writes

WRAPPED = ["--", "aws", "--region", "eu-west-1", "eks", "get-token", "--cluster-name", "prod"]
WRAPPED += ["--output", "json"]  # what `shim kubeconfig wrap` makes of update-kubeconfig's


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


@contextlib.contextmanager
def locked(
    path: str, seconds: float, implementation: str = DEFAULT_IMPLEMENTATION
) -> Iterator[bool]:
    """Hold the lock at `path` (waiting up to `seconds` for it): whether it was taken."""
    lock = KeyLock(path, implementation)
    try:
        yield lock.acquire(Deadline(seconds))
    finally:
        lock.release()


def exec_info(api: ApiServer | None) -> str:
    spec: dict[str, object] = {"interactive": False}
    if api is not None:
        spec["cluster"] = {
            "server": api.url,
            "config": None,
            "certificate-authority-data": base64.b64encode(api.ca_pem).decode(),
        }
    return json.dumps(
        {
            "kind": "ExecCredential",
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "spec": spec,
        },
        separators=(",", ":"),
    )


def queued_on(socket: Path) -> int:
    """How many connections wait in the listen queue of `socket` (Linux /proc/net/unix:
    each one shows the listener's address, in state 02, connecting; the address ends in
    the socket's name, whether it was bound by its path or through /proc/self/fd)."""
    needs_proc()
    lines = Path("/proc/net/unix").read_text().splitlines()[1:]
    return sum(1 for line in lines if line.endswith("/" + socket.name) and line.split()[5] == "02")
