"""The shim on Windows, end to end: what scripts/windows-test runs under Wine (and a
Windows machine runs as it is, once the project is pip-installed into the Python that
runs them). Each test runs the installed `shim.exe` as kubectl would, with fake
backends written here: a Python script started through a `.cmd` on PATH, as pip
installs `aws.cmd`.

Run without the suite's conftest (`pytest --noconftest tests/windows`): that one serves
the POSIX tests, with servers and tools Windows does not have here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "win32", reason="the shim on Windows")

HANG_GUARD = 120  # seconds: only to prove that nothing hangs (Wine starts slowly)

# A backend: notes each run, optionally starts a child that sleeps (its pid noted), and
# prints a credential (or sleeps, with FAKE_MODE=hang; FAKE_SLOW=SECONDS first).
BACKEND = r"""
import datetime, json, os, subprocess, sys, time
with open(os.environ["FAKE_RUNS"], "a") as runs:
    runs.write("run\n")
if os.environ.get("FAKE_MODE") == "hang":
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    with open(os.environ["FAKE_CHILD"], "w") as noted:
        noted.write(str(child.pid))
    time.sleep(300)
time.sleep(float(os.environ.get("FAKE_SLOW", "0")))
life = float(os.environ.get("FAKE_LIFE", "840"))
expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=life)
status = {"token": f"token-{os.getpid()}", "expirationTimestamp": f"{expiry:%Y-%m-%dT%H:%M:%SZ}"}
kind, version = "ExecCredential", "client.authentication.k8s.io/v1beta1"
print(json.dumps({"kind": kind, "apiVersion": version, "status": status}))
"""


def started(argv: list[str], **options: Any) -> subprocess.CompletedProcess[bytes]:
    """subprocess.run, started again once if Wine's CreateProcess fails with
    ERROR_INTERNAL_ERROR (1359): Wine's own, seen about once in 30 runs under load,
    before the program ran at all. Windows does not answer that."""
    try:
        return subprocess.run(argv, **options)
    except OSError as error:
        if getattr(error, "winerror", None) != 1359:
            raise
        return subprocess.run(argv, **options)


def installed_shim() -> Path:
    """pip's `shim.exe` for this Python: beside python.exe in a venv, else in Scripts."""
    here = Path(sys.executable).parent
    for candidate in (here / "shim.exe", here / "Scripts" / "shim.exe"):
        if candidate.is_file():
            return candidate
    pytest.fail(f"no shim.exe installed for {sys.executable}: pip install the project first")


class Shim:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.bin = root / "bin"
        self.bin.mkdir()
        script = root / "backend.py"
        script.write_text(BACKEND)
        (self.bin / "fakeplugin.cmd").write_text(f'@"{sys.executable}" "{script}" %*\r\n')
        self.runs = root / "runs"
        self.env = {
            **os.environ,
            "PATH": f"{self.bin};{os.environ.get('PATH', '')}",
            "EKS_SHIM_CACHE_DIR": str(root / "cache"),
            "FAKE_RUNS": str(self.runs),
            "FAKE_CHILD": str(root / "child"),
        }

    def run(self, *args: str, expect: int = 0, cwd: Path | None = None, **env: str) -> Any:
        done = started(
            [str(installed_shim()), *args],
            env={**self.env, **env},
            cwd=cwd or self.root,
            capture_output=True,
            timeout=HANG_GUARD,
            check=False,
        )
        assert done.returncode == expect, done.stderr.decode(errors="replace")
        return done

    def backend_runs(self) -> int:
        return len(self.runs.read_text().split()) if self.runs.exists() else 0


@pytest.fixture
def shim(tmp_path: Path) -> Shim:
    return Shim(tmp_path)


def test_version(shim: Shim) -> None:
    from shim import __version__

    assert shim.run("--version").stdout.strip() == f"eks-token-shim {__version__}".encode()


def test_a_miss_then_a_hit_runs_the_backend_once(shim: Shim) -> None:
    miss = shim.run("--", "fakeplugin")
    hit = shim.run("--", "fakeplugin")
    assert shim.backend_runs() == 1
    assert hit.stdout == miss.stdout
    credential = json.loads(miss.stdout)
    assert credential["status"]["token"].startswith("token-")
    assert b"\r\n" not in miss.stdout  # the bytes as the backend printed them, no text mode


def test_calls_at_once_run_the_backend_once(shim: Shim) -> None:
    """The lock (msvcrt.locking on `<key>.lock`): the calls that find it held wait, then
    take the entry the first one wrote."""
    calls = [
        subprocess.Popen(
            [str(installed_shim()), "--", "fakeplugin"],
            env={**shim.env, "FAKE_SLOW": "3"},
            cwd=shim.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(3)
    ]
    outputs = [call.communicate(timeout=HANG_GUARD) for call in calls]
    assert [call.returncode for call in calls] == [0, 0, 0], outputs
    assert len({stdout for stdout, _ in outputs}) == 1
    assert shim.backend_runs() == 1


HOLD = """
import sys, time
from shim.deadline import Deadline
from shim.lock import KeyLock
lock = KeyLock(sys.argv[1])  # (kept: its file, closed, would let the lock go)
assert lock.acquire(Deadline(0))
print("held", flush=True)
time.sleep(300)
"""


def test_the_lock_excludes_and_dies_with_its_holder(tmp_path: Path) -> None:
    from shim.deadline import Deadline
    from shim.lock import KeyLock

    path = str(tmp_path / "k.lock")
    first, second = KeyLock(path), KeyLock(path)
    assert first.acquire(Deadline(0))
    assert not second.acquire(Deadline(0.2))
    first.release()
    assert second.acquire(Deadline(0))
    second.release()
    holder = subprocess.Popen([sys.executable, "-c", HOLD, path], stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == b"held\r\n"
        assert not first.acquire(Deadline(0.2))  # held by another process
    finally:
        holder.kill()  # (TerminateProcess: no cleanup of its own)
        holder.wait(HANG_GUARD)
    assert first.acquire(Deadline(HANG_GUARD))  # the system let it go
    first.release()


def test_purge_removes_the_entries_while_a_call_holds_a_lock(shim: Shim) -> None:
    """Windows cannot remove a file another process holds open (a call waiting for its
    backend holds the key's lock file): the entries still go, the lock is left to its
    holder, and nothing crashes."""
    shim.run("--", "fakeplugin")
    (lock_file,) = (shim.root / "cache").glob("*.lock")
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(lock_file)], stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == b"held\r\n"
        done = shim.run("--purge")
        assert b"removed 1 cache entry" in done.stdout, done.stderr
        assert b"left 1 file in" in done.stderr
        assert b"that a running call holds open (its lock)" in done.stderr
        assert not list((shim.root / "cache").glob("*.entry"))
        assert lock_file.exists()
    finally:
        holder.kill()
        holder.wait(HANG_GUARD)


def test_list_names_the_entry_without_its_token_and_purge_removes_it(shim: Shim) -> None:
    token = json.loads(shim.run("--", "fakeplugin").stdout)["status"]["token"]
    listed = shim.run("--list").stdout
    assert b"fakeplugin" in listed
    assert token.encode() not in listed
    assert b"removed 1 cache entry" in shim.run("--purge").stdout
    assert not list((shim.root / "cache").glob("*.entry"))
    shim.run("--", "fakeplugin")
    assert shim.backend_runs() == 2


def still_running(pid: int) -> bool:
    """Whether process `pid` runs (os.kill would end it: on Windows it is TerminateProcess)."""
    import ctypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
    kernel32.OpenProcess.restype = ctypes.c_void_p
    handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return False
    try:
        code = ctypes.c_ulong()
        kernel32.GetExitCodeProcess(ctypes.c_void_p(handle), ctypes.byref(code))
        return code.value == 259  # STILL_ACTIVE
    finally:
        kernel32.CloseHandle(ctypes.c_void_p(handle))


def test_a_timeout_ends_the_backend_and_the_process_it_started(shim: Shim) -> None:
    # (15 s: time for Wine to start cmd.exe, the backend and its child on a busy machine)
    done = shim.run("--timeout", "15", "--", "fakeplugin", expect=124, FAKE_MODE="hang")
    assert b"timed out (--timeout 15 s) and was killed" in done.stderr
    child = int((shim.root / "child").read_text())
    deadline = time.monotonic() + HANG_GUARD
    while still_running(child):
        assert time.monotonic() < deadline, "the backend's child outlived it"
        time.sleep(0.1)
    assert not list((shim.root / "cache").glob("*.entry"))
    assert not list((shim.root / "cache").glob("*.lock"))  # (it goes when its key has no entry)


def test_a_backend_only_in_the_current_directory_is_not_run(shim: Shim, tmp_path: Path) -> None:
    """As kubectl (Go's LookPath since Go 1.19): never a program found through the current
    directory, where Windows' own CreateProcess would look first."""
    import shutil

    here = tmp_path / "here"
    here.mkdir()
    (here / "planted.cmd").write_text("@echo planted> ran\r\n")
    shutil.copy(sys.executable, here / "planted.exe")  # what CreateProcess would run
    done = shim.run("--", "planted", cwd=here, expect=127)
    assert b"planted: command not found: the only match is .\\planted." in done.stderr
    assert b"relative to the current directory" in done.stderr
    assert not (here / "ran").exists()


def allowlist(shim: Shim, *entries: str) -> str:
    """A kuberc allowing only `entries` (kubectl 1.35's credential-plugin allowlist)."""
    kuberc = shim.root / "kuberc"
    lines = [f"- name: '{entry}'" for entry in entries]
    kuberc.write_text(
        "apiVersion: kubectl.config.k8s.io/v1beta1\nkind: Preference\n"
        "credentialPluginPolicy: Allowlist\ncredentialPluginAllowlist:\n" + "\n".join(lines)
    )
    return str(kuberc)


def test_the_allowlist_matches_a_backend_as_go_finds_it_on_windows(shim: Shim) -> None:
    """An entry matches the command as written, or the same path once Go's Windows
    LookPath (PATH and PATHEXT) has found both: `fakeplugin` is `...\\fakeplugin.cmd`."""
    cases = [
        ("fakeplugin", "fakeplugin"),
        ("fakeplugin", str(shim.bin / "fakeplugin.cmd")),
        (str(shim.bin / "fakeplugin"), "fakeplugin"),
    ]
    for number, (command, entry) in enumerate(cases):
        cache = str(shim.root / f"cache{number}")  # (a hit would not ask the policy)
        shim.run("--", command, EKS_SHIM_CACHE_DIR=cache, KUBERC=allowlist(shim, entry))
    assert shim.backend_runs() == len(cases)


def test_the_allowlist_compares_paths_as_go_does_with_their_case(shim: Shim) -> None:
    """client-go compares the strings LookPath gives: an entry in other letters is another
    entry, as for kubectl, though Windows would open the same file. Never wider."""
    other_case = str(shim.bin / "FAKEPLUGIN.CMD")
    done = shim.run("--", "fakeplugin", expect=1, KUBERC=allowlist(shim, other_case))
    assert b"fakeplugin is not one of them: it was not run" in done.stderr
    assert f"add `- name: {shim.bin / 'fakeplugin.cmd'}`".encode() in done.stderr
    assert shim.backend_runs() == 0


# kubectl, as the shim sees it: one process running the shim N times (as client-go
# does when the server answers 401 to the credential it was given), printing stderr.
ASKING = r"""
import subprocess, sys
for _ in range(int(sys.argv[1])):
    sys.stdout.buffer.write(subprocess.run(sys.argv[2:], capture_output=True).stderr)
"""
INFO = '{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1beta1","spec":{}}'


def ask(shim: Shim, times: int) -> bytes:
    command = [sys.executable, "-c", ASKING, str(times), str(installed_shim()), "-v"]
    done = started(
        [*command, "--", "fakeplugin"],
        env={**shim.env, "KUBERNETES_EXEC_INFO": INFO},
        cwd=shim.root,
        capture_output=True,
        timeout=HANG_GUARD,
        check=True,
    )
    return done.stdout


def test_the_process_asking_is_the_launcher_s_parent(shim: Shim) -> None:
    """pip's shim.exe runs python.exe as its child: the asker (whose asking again within
    seconds is how a rejected token is noticed) is the process that ran shim.exe, the
    same for both calls of one kubectl; another kubectl is another asker."""
    again = b"asked again by the same process"
    assert ask(shim, 2).count(again) == 1
    assert again not in ask(shim, 1) + ask(shim, 1)
    assert shim.backend_runs() == 1  # (no cluster to ask: the cache is served)


def dacl_of(path: Path) -> str:
    """The DACL of `path`, in SDDL, as Windows reports it."""
    import ctypes

    advapi32 = ctypes.WinDLL("advapi32", use_last_error=True)  # type: ignore[attr-defined]
    descriptor, dacl, text = ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_wchar_p()
    se_file_object, dacl_security_information = 1, 4
    code = advapi32.GetNamedSecurityInfoW(
        str(path), se_file_object, dacl_security_information,
        None, None, ctypes.byref(dacl), None, ctypes.byref(descriptor),
    )  # fmt: skip
    assert code == 0, f"GetNamedSecurityInfoW: error {code}"
    assert advapi32.ConvertSecurityDescriptorToStringSecurityDescriptorW(
        descriptor, 1, dacl_security_information, ctypes.byref(text), None
    ), "ConvertSecurityDescriptorToStringSecurityDescriptorW failed"
    return text.value or ""


def private_and_plain(tmp_path: Path) -> tuple[str, str]:
    """The DACLs of a directory made by os.mkdir(path, 0o700) in a CPython that makes it
    owner-only (3.12.4 on), and of one made without a mode. Under Wine both follow the
    Unix mode (no `P`, no Administrators: Wine's own), but they still differ."""
    assert sys.version_info >= (3, 12, 4), "the oracle: CPython's private mkdir"
    (tmp_path / "private").mkdir(0o700)
    (tmp_path / "plain").mkdir()
    private, plain = dacl_of(tmp_path / "private"), dacl_of(tmp_path / "plain")
    assert private != plain  # (else these tests could not fail)
    return private, plain


def test_the_cache_directory_gets_the_acl_python_gives_a_private_directory(
    shim: Shim, tmp_path: Path
) -> None:
    cache = tmp_path / "made" / "cache"
    shim.run("--", "fakeplugin", EKS_SHIM_CACHE_DIR=str(cache))
    private, _ = private_and_plain(tmp_path)
    assert dacl_of(cache) == dacl_of(cache.parent) == private


def test_private_directories_do_not_depend_on_the_python_running_the_shim(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pythons before 3.12.4 ignore os.mkdir's mode on Windows (the default ACL, which
    may let others read): the shim sets the private ACL itself."""
    from shim.files import make_private_dirs

    private, _ = private_and_plain(tmp_path)
    real_mkdir = os.mkdir
    monkeypatch.setattr(os, "mkdir", lambda path, mode=0o777, **kw: real_mkdir(path, **kw))
    make_private_dirs(str(tmp_path / "older" / "python"))
    assert dacl_of(tmp_path / "older") == dacl_of(tmp_path / "older" / "python") == private


KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- cluster:
    server: https://example.invalid
  name: demo
contexts:
- context: {cluster: demo, user: demo}
  name: demo  # the one context
current-context: demo
users:
- name: demo
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: aws
      args: [eks, get-token, --cluster-name, demo]
"""


def test_kubeconfig_wrap_then_unwrap_gives_the_file_back(shim: Shim) -> None:
    config = shim.root / "config"
    config.write_bytes(KUBECONFIG.encode())
    shim.run("kubeconfig", "wrap", "--kubeconfig", str(config))
    wrapped = config.read_text()
    assert "args: [--, aws, eks, get-token, --cluster-name, demo]" in wrapped
    # kubeconfig names the installed launcher, which kubectl can run
    assert json.dumps(str(installed_shim())) in wrapped
    assert "# the one context" in wrapped
    shim.run("kubeconfig", "unwrap", "--kubeconfig", str(config))
    assert config.read_bytes() == KUBECONFIG.encode()
    assert not Path(f"{config}.lock").exists()


def test_wrap_edits_the_kubeconfig_kubectl_reads(shim: Shim) -> None:
    """Without --kubeconfig: the one client-go finds on Windows, in the first of HOME,
    HOMEDRIVE+HOMEPATH and USERPROFILE that holds one: HOME set (as Git Bash sets it)
    without one does not hide USERPROFILE's."""
    git_home, profile = shim.root / "git-home", shim.root / "profile"
    git_home.mkdir()
    (profile / ".kube").mkdir(parents=True)
    (profile / ".kube" / "config").write_bytes(KUBECONFIG.encode())
    shim.run("kubeconfig", "wrap", HOME=str(git_home), USERPROFILE=str(profile))
    assert b"eks-token-shim" in (profile / ".kube" / "config").read_bytes()
    assert not (git_home / ".kube").exists()


def test_a_hit_in_the_last_stretch_refreshes_in_the_background(shim: Shim) -> None:
    """Detached, as on POSIX: the hit is served at once, and the backend runs again behind
    it (its child has no console, process group or handles of kubectl's)."""
    options = ("--refresh-before", "1", "--refresh-ahead", "20", "--", "fakeplugin")
    first = shim.run(*options, FAKE_LIFE="30").stdout
    time.sleep(16)  # 14 s left: in the refresh-ahead window (at most half the life)
    assert shim.run(*options, FAKE_LIFE="30").stdout == first  # served from the cache
    deadline = time.monotonic() + HANG_GUARD
    while shim.backend_runs() < 2:
        assert time.monotonic() < deadline, "no refresh ran behind the hit"
        time.sleep(0.2)
    while shim.run(*options, FAKE_LIFE="30").stdout == first:  # the refreshed entry, once saved
        assert time.monotonic() < deadline, "the refresh was not saved"
        time.sleep(0.2)
