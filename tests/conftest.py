"""Shared fixtures: a private HOME, fake backends on PATH, and a way to run the shim."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import IN_CI, Mount, Shim
from hypothesis import settings

# Subprocess-heavy tests share two cores with hypothesis; its per-example deadline
# would turn a slow moment into a failure that says nothing about the code.
settings.register_profile("project", deadline=None)
settings.load_profile("project")

# Variables that would change what the shim or a backend does if the developer has them set.
_SCRUBBED = ("KUBERNETES_EXEC_INFO", "KUBECONFIG", "KUBERC", "KUBECTL_KUBERC")

_SCRUBBED_PREFIXES = ("AWS_", "EKS_SHIM_", "FAKE_")


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


@pytest.fixture
def shim(tmp_path: Path) -> Shim:
    """The shim, with the fake `aws` and `aws-iam-authenticator` first on PATH."""
    return Shim(tmp_path)


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Mount]:
    """mount(OPTIONS) -> a fresh tmpfs mounted in tmp_path; unmounted in teardown."""
    mounted: list[Path] = []

    def mount(options: str) -> Path:
        point = tmp_path / f"mnt{len(mounted)}"
        point.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)],
            capture_output=True,
            check=False,
        )
        if done.returncode != 0:
            message = f"cannot mount a tmpfs here: {done.stderr.decode().strip()}"
            if IN_CI and os.geteuid() == 0:  # (only root may mount: unprivileged, it skips)
                pytest.fail(message)
            pytest.skip(message)
        mounted.append(point)
        return point

    yield mount
    for point in reversed(mounted):
        subprocess.run(["umount", "-l", str(point)], check=False)
