"""Shared fixtures: a private HOME, fake backends on PATH, and a way to run the shim."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from shim.entry import Entry, decode_entry, encode_entry

# Subprocess-heavy tests share two cores with hypothesis; its per-example deadline
# would turn a slow moment into a failure that says nothing about the code.
settings.register_profile("project", deadline=None)
settings.load_profile("project")

HERE = Path(__file__).parent
IN_CI = os.environ.get("CI") == "true"
# Variables that would change what the shim or a backend does if the developer has them set.
_SCRUBBED = ("KUBERNETES_EXEC_INFO", "KUBECONFIG", "KUBERC", "KUBECTL_KUBERC")
_SCRUBBED_PREFIXES = ("AWS_", "EKS_SHIM_", "FAKE_")


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


@pytest.fixture(autouse=True)
def private_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep every test out of the real home directory and its ~/.kube and ~/.aws."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in list(os.environ):
        if name in _SCRUBBED or name.startswith(_SCRUBBED_PREFIXES):
            monkeypatch.delenv(name)
    return home


@pytest.fixture(autouse=True)
def coverage_context(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """For tools/mutate's map of which test reaches which line: name the running test,
    in this process (a coverage context) and in the processes it starts (MUTATE_TEST_ID,
    which its .coveragerc reads). Does nothing outside a mapping run."""
    if not os.environ.get("COVERAGE_PROCESS_START"):
        return
    import importlib

    coverage = importlib.import_module("coverage")  # in .mutate-venv only
    monkeypatch.setenv("MUTATE_TEST_ID", request.node.nodeid)
    current = coverage.Coverage.current()
    if current is not None:
        current.switch_context(request.node.nodeid)


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
        return subprocess.Popen(
            [*shim_argv(), *args],
            env={**self.env, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def run(
        self,
        *args: str,
        stdin: bytes = b"",
        timeout: float = 60,
        expect: int | None = 0,
        env: Mapping[str, str] | None = None,
        **variables: str,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run the shim with `env` and `variables` added to the environment; fail the test
        unless it exits `expect` (None: any code)."""
        result = subprocess.run(
            [*shim_argv(), *args],
            env={**self.env, **(env or {}), **variables},
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


@pytest.fixture
def shim(tmp_path: Path) -> Shim:
    """The shim, with the fake `aws` and `aws-iam-authenticator` first on PATH."""
    return Shim(tmp_path)


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
    moved = Entry(
        int(entry.expiry - seconds), int(entry.fetched_at - seconds), entry.meta, entry.credential
    )
    path.write_bytes(encode_entry(moved))


def cached_token(shim: Shim) -> str:
    (path,) = shim.entries()
    entry = decode_entry(path.read_bytes())
    assert entry is not None
    return token_of(entry.credential)
