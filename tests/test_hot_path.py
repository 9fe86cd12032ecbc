"""A deterministic guard of the hot path: what a cache hit imports (no timing here)."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
from helpers import Shim, age, token_of

# Each costs milliseconds to tens of milliseconds on every kubectl call.
FORBIDDEN_ON_A_HIT = {
    "dateutil",
    "argparse",
    "json",
    "pathlib",
    "subprocess",
    "tempfile",
    "hashlib",
    "logging",
    "typing",
    "dataclasses",
    "datetime",
    "re",  # what pip's generated console-script wrapper imports first: our launcher does not
    "runpy",
    "shim.cli",
    "shim.flow",
    "shim.credential",
    "shim.process",
    "shim.lock",
    "collections",  # ~1.2 ms with collections.abc: what `if TYPE_CHECKING:` blocks import
    "enum",  # ~1.3 ms: what `import signal` or `re` would bring
    "shim.kuberc",  # kubectl's plugin policy is read on a miss only
    "ruamel",
    "shim.crash",
    "shim.meta",
    "shim.deadline",
    "shim.verify",
    "shim.kubeconfig",
    "shim.yamlfile",
    "shim.allowlist",
    "shim.wrapping",
    "shim.yamltext",
    "signal",
}


def imported_modules(stderr: bytes) -> set[str]:
    """Module names from `-X importtime` (PYTHONPROFILEIMPORTTIME) output."""
    found = re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s+(\S+)$", stderr.decode(), re.MULTILINE)
    return set(found)


def top_level_importer(stderr: bytes, module: str) -> str | None:
    """The top-level import under which `module` was first imported, per -X importtime."""
    found = re.findall(r"^import time:\s+\d+ \|\s+\d+ \|( +)(\S+)$", stderr.decode(), re.MULTILINE)
    for at, (_, name) in enumerate(found):
        if name == module:
            # importtime prints a module when it is done, after the modules it imported.
            return str(next(name for indent, name in found[at:] if len(indent) == 1))
    return None


def top_level(names: set[str]) -> set[str]:
    return names | {name.split(".")[0] for name in names}


@pytest.mark.parametrize(
    "args", [["-c", "demo"], ["--", "aws", "eks", "get-token", "--cluster-name", "demo"]]
)
def test_a_cache_hit_imports_nothing_heavy(shim: Shim, args: list[str]) -> None:
    miss = shim.run(*args, PYTHONPROFILEIMPORTTIME="1")
    hit = shim.run(*args, PYTHONPROFILEIMPORTTIME="1")
    assert len(shim.calls()) == 1
    assert hit.stdout == miss.stdout
    assert token_of(hit.stdout)
    miss_modules, hit_modules = imported_modules(miss.stderr), imported_modules(hit.stderr)
    assert "shim.main" in hit_modules  # the guard sees our own imports, so it can fail
    assert {"json", "argparse", "shim"} <= top_level(miss_modules)
    assert top_level(hit_modules) & FORBIDDEN_ON_A_HIT == set()


def test_a_hit_that_starts_a_refresh_ahead_imports_nothing_heavy(shim: Shim) -> None:
    info = '{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1beta1"}'
    shim.run("-c", "demo", KUBERNETES_EXEC_INFO=info)
    age(shim, 600)  # inside the refresh-ahead window
    for note in shim.cache_dir.glob("*.served"):
        note.unlink()  # as if another kubectl process asked
    hit = shim.run(
        "-c", "demo", PYTHONPROFILEIMPORTTIME="1", KUBERNETES_EXEC_INFO=info, FAKE_MODE="sleep:1"
    )
    modules = imported_modules(hit.stderr)
    assert "shim.background" in modules
    assert top_level(modules) & FORBIDDEN_ON_A_HIT == set()
    assert list(shim.cache_dir.glob("*.ahead"))  # it did start the refresh
    assert list(shim.cache_dir.glob("*.served"))  # and noted who asked


def test_a_miss_starts_the_backend_before_importing_validation(shim: Shim, tmp_path: Path) -> None:
    # shim.flow.fetch starts the backend, then imports shim.credential (json, re):
    # lazily, after everything the miss path needed before the start.
    # The backend is `cat`, not the Python fake, whose own -X importtime lines would mix in.
    stamp = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=14)).isoformat()
    credential = tmp_path / "credential.json"
    credential.write_text(
        json.dumps(
            {
                "kind": "ExecCredential",
                "apiVersion": "client.authentication.k8s.io/v1beta1",
                "status": {"token": "k8s-aws-v1.cat", "expirationTimestamp": stamp},
            }
        )
    )
    result = shim.run("--", "cat", str(credential), PYTHONPROFILEIMPORTTIME="1")
    assert token_of(result.stdout) == "k8s-aws-v1.cat"
    lines = result.stderr.decode().splitlines()
    modules = [line.rsplit("|", 1)[-1].strip() for line in lines if line.startswith("import time:")]
    assert modules.index("shim.process") < modules.index("shim.credential")
    assert modules.index("shim.process") < modules.index("json")
    # subprocess costs ~24 ms before the backend can start: shim.process spawns without it.
    assert "subprocess" not in modules


def test_python_dash_m_serves_the_same_hit(shim: Shim) -> None:
    import subprocess
    import sys

    miss = shim.run("-c", "demo")
    hit = subprocess.run(
        [sys.executable, "-m", "shim", "-c", "demo"], env=shim.env, capture_output=True, check=True
    )
    assert hit.stdout == miss.stdout
    assert len(shim.calls()) == 1


@pytest.mark.parametrize(
    "broken",
    [
        "lookup.note_served",  # after printing: ignored, the hit stands
        "main.scan",  # before printing: the full CLI decides, and serves the same entry
    ],
)
def test_a_fault_on_the_hot_path_never_fails_the_call(
    shim: Shim, broken: str, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    from shim import lookup, main

    miss = shim.run("-c", "demo")
    capfd.readouterr()

    def fault(*args: object) -> None:
        raise RuntimeError("injected")

    module, _, name = broken.partition(".")
    monkeypatch.setattr({"main": main, "lookup": lookup}[module], name, fault)
    shim.as_this_process(monkeypatch)
    assert main.main(["-c", "demo"]) == 0
    assert capfd.readouterr().out.encode() == miss.stdout  # printed once, whole
    assert len(shim.calls()) == 1


@pytest.mark.parametrize(
    ("kuberc", "parsed"),
    [
        ("apiVersion: kubectl.config.k8s.io/v1beta1\nkind: Preference\n", False),
        ("kind: Preference\ncredentialPluginPolicy: AllowAll\n", True),
    ],
)
def test_a_miss_parses_kuberc_only_when_it_speaks_of_credential_plugins(
    shim: Shim, tmp_path: Path, kuberc: str, parsed: bool
) -> None:
    """A kuberc without a plugin policy costs a miss one read, not the YAML parser."""
    path = tmp_path / "kuberc"
    path.write_text(kuberc)
    miss = shim.run("-c", "demo", PYTHONPROFILEIMPORTTIME="1", KUBERC=str(path))
    assert token_of(miss.stdout)
    modules = top_level(imported_modules(miss.stderr))
    assert "shim.kuberc" in modules  # (it was read)
    assert ("ruamel" in modules) is parsed
