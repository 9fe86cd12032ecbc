"""Differential: kubectl 1.35 runs an exec plugin directly from a kubeconfig, and through
the shim from the same kubeconfig after `shim kubeconfig wrap`, with the same environment
and working directory, against the local API stub. What the user sees must be the same:
whether kubectl succeeded, which program ran, the tokens the server received, and
kubectl's error. Speed and caching are the only differences allowed: a third run through
the shim shows that what kubectl refused was not cached.

The credential forms are the differential test of shim.credential: for each, kubectl
says in the same run whether it accepts the output, and the shim must never cache one
it refuses (it passes such output on as it came, and kubectl says what it says).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest
import trustme
from apiserver import ApiServer, kubeconfig, proxy
from helpers import (
    HANG_GUARD,
    kubectl_v35,
    on_a_terminal,
    plant_shim_package,
    process_state,
    read_until,
    shim_argv,
)

# The plugin: notes which file ran, then answers as PARITY_MODE says (not an identity
# variable: it never changes the shim's cache key).
PLUGIN = r"""#!/bin/sh
[ -r /proc/$$/status ] &&  # (Linux: the signals the plugin was started with ignored)
    while read -r field value; do [ "$field" = SigIgn: ] && ignored=$value; done < /proc/$$/status
echo "$0 $ignored" >> "$PARITY_RAN"
head='{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential"'
token="\"token\":\"k8s-aws-v1.parity-$PARITY_NAME\""
expiry='"expirationTimestamp":"2099-01-01T00:00:00Z"'
case "$PARITY_MODE" in
fail) echo "the plugin failed" >&2; exit 3 ;;
exit1) echo "ExpiredToken: the security token included in the request is expired" >&2; exit 1 ;;
exit127) exit 127 ;;
garbage) echo "<html>Gateway Timeout</html>" ;;
empty) ;;
wrongkind) echo '{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"Config"}' ;;
v1) echo "${head%1beta1*}1\",\"kind\":\"ExecCredential\",\"status\":{$token,$expiry}}" ;;
noisy) echo "a warning on stderr" >&2; echo "$head,\"status\":{$token,$expiry}}" ;;
pasttime) echo "$head,\"status\":{$token,\"expirationTimestamp\":\"2001-01-01T00:00:00Z\"}}" ;;
noexpiry) echo "$head,\"status\":{$token}}" ;;
form) cat "$PARITY_FORM" ;;
*) echo "$head,\"status\":{$token,$expiry}}" ;;
esac
"""
ARGS = ["eks", "get-token", "--cluster-name", "demo", "--output", "json"]
# Signals 32 and 33, glibc's own (thread cancellation, setxid): its posix_spawn leaves
# them ignored in the child, and no program may set them (Python refuses them too).
GLIBC_INTERNAL = 0b11 << 31


class Seen(NamedTuple):
    """What the user sees of one kubectl run."""

    succeeded: bool
    ran: tuple[str, ...]  # the programs that ran, by where they are (relative to the case),
    # each with the signals it started with ignored (SigIgn: kubectl's plugins get none)
    tokens: tuple[str, ...]  # what the API server received
    error: str  # kubectl's error, the executable's name left out; "" when it succeeded


class Case(NamedTuple):
    name: str
    path: str  # PATH, with {bin} (where aws is), {cwd} and {rel} (a directory in cwd)
    planted: tuple[str, ...] = ()  # where else an `aws` is: "cwd", "rel"; "python": a
    # Python package named `shim` in the current directory
    env: tuple[tuple[str, str], ...] = ()
    mode: str = ""
    # kubectl started with SIGINT or SIGHUP ignored, or with neither (None: as pytest runs)
    ignored: signal.Signals | None = None
    form: bytes = b""  # what the plugin prints, in mode "form"
    closed: tuple[int, ...] = ()  # kubectl started without these descriptors (0, 2)
    # when kubectl succeeds: whether the shim caches what it got (None: either)
    cached: bool | None = True


# Credential forms: what the plugin prints, and whether the shim caches it (it must not
# cache anything kubectl refuses; of what kubectl accepts, it caches what it is sure of).
_LEAF = trustme.CA().issue_cert("parity-client")
CERT, KEY = _LEAF.cert_chain_pems[0].bytes().decode(), _LEAF.private_key_pem.bytes().decode()
OTHER_KEY = trustme.CA().issue_cert("other").private_key_pem.bytes().decode()
BOM = b"\xef\xbb\xbf"
EXPIRY = '"expirationTimestamp":"2099-01-01T00:00:00Z"'


def printed(status: str = '{"token":"tok",' + EXPIRY + "}", extra: str = "") -> bytes:
    head = '{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential"'
    return f'{head}{extra},"status":{status}}}'.encode()


def pair(cert: str, key: str, token: str = "") -> str:
    fields = {"clientCertificateData": cert, "clientKeyData": key, "token": token}
    return json.dumps({**fields, "expirationTimestamp": "2099-01-01T00:00:00Z"})


FORMS = [
    ("the usual form", printed(), True),
    ("a UTF-8 BOM first", BOM + printed(), True),
    ("a BOM and a number beyond float", BOM + printed(extra=',"x":1e999'), True),
    ("a BOM and an escaped slash", BOM + printed(extra=',"x":"a\\/b"'), False),
    ("a BOM and a lone surrogate", BOM + printed(extra=',"x":"\\ud800"'), False),
    ("white space around", b"\n \t\r\n" + printed() + b"\n\n", True),
    ("a form feed first", b"\x0c" + printed(), False),
    ("spec as a string", printed(extra=',"spec":"x"'), False),
    ("spec.interactive as a string", printed(extra=',"spec":{"interactive":"yes"}'), False),
    (
        "a CA that is not base64",
        printed(extra=',"spec":{"cluster":{"certificate-authority-data":"!"}}'),
        False,
    ),
    ("anything in spec.cluster.config", printed(extra=',"spec":{"cluster":{"config":[1]}}'), True),
    (
        "a token and only a certificate",
        printed('{"token":"tok","clientCertificateData":"x"}'),
        False,
    ),
    ("a token and a numeric key", printed('{"token":"tok","clientKeyData":5}'), False),
    ("a certificate and key of garbage", printed(pair("x", "y", "tok")), False),
    ("a certificate with another's key", printed(pair(CERT, OTHER_KEY, "tok")), False),
    ("a certificate, its key and a token", printed(pair(CERT, KEY, "tok")), True),
    ("a certificate and its key only", printed(pair(CERT, KEY)), True),
    ("a token with a newline", printed('{"token":"t\\nok",' + EXPIRY + "}"), False),
    ("a token with a control character", printed('{"token":"t\\u0001ok"}'), False),
    ("a token with DEL", printed('{"token":"t\\u007fok",' + EXPIRY + "}"), False),
    ("a token with a tab", printed('{"token":"t\\tok",' + EXPIRY + "}"), True),
    ("a token not ASCII", printed('{"token":"t\u00e9ok",' + EXPIRY + "}"), True),
    (
        "a token with invalid UTF-8",
        printed(
            '{"token":"t',
        )
        + b"\xff"
        + b'ok"}}',
        False,
    ),
    ("a lone surrogate kubectl ignores", printed(extra=',"x":"\\ud800"'), True),
    ("1e999 where kubectl does not look", printed(extra=',"x":1e999'), True),
    ("a raw control character in a string", printed(extra=',"x":"a\x01b"'), False),
    ("Token spelt with a capital", printed('{"Token":"tok"}'), False),
    ("the token twice, the last empty", printed('{"token":"tok","token":""}'), False),
    ("the token twice, the last set", printed('{"token":"","token":"tok2",' + EXPIRY + "}"), False),
    ("status null", printed("null"), False),
    ("an empty expirationTimestamp", printed('{"token":"tok","expirationTimestamp":""}'), False),
    ("a numeric expirationTimestamp", printed('{"token":"tok","expirationTimestamp":5}'), False),
    ("kind in lower case", printed().replace(b"ExecCredential", b"execcredential"), False),
    ("no kind", printed().replace(b',"kind":"ExecCredential"', b""), True),
    ("something after the object", printed() + b"x", False),
    ("YAML", b"apiVersion: client.authentication.k8s.io/v1beta1\nstatus:\n  token: tok\n", False),
    # (Python 3.9 to 3.12 give up at about 1000 levels, 3.13 reads it, Go up to 10000)
    (
        "deep nesting where kubectl does not look",
        printed(extra=',"x":' + "[" * 1100 + "]" * 1100),
        None,
    ),
]


CASES = [
    Case("plain success", "{bin}:/usr/bin:/bin"),
    Case("the plugin fails, with its exit status", "{bin}:/usr/bin:/bin", mode="fail"),
    Case("a credential without expiry", "{bin}:/usr/bin:/bin", mode="noexpiry", cached=False),
    Case("no such program on PATH", "/usr/bin:/bin"),
    Case("the plugin fails with exit 1 and a message", "{bin}:/bin", mode="exit1"),
    Case("the plugin exits 127 itself", "{bin}:/bin", mode="exit127"),
    Case("the plugin prints garbage", "{bin}:/bin", mode="garbage"),
    Case("the plugin prints nothing", "{bin}:/bin", mode="empty"),
    Case("the plugin prints another kind", "{bin}:/bin", mode="wrongkind"),
    Case("the plugin answers another apiVersion", "{bin}:/bin", mode="v1"),
    Case("stderr noise, then a credential", "{bin}:/bin", mode="noisy"),
    Case("a credential that expired long ago", "{bin}:/bin", mode="pasttime", cached=False),
    Case("kubectl started with SIGINT ignored", "{bin}:/bin", ignored=signal.SIGINT),
    Case("kubectl started with SIGHUP ignored", "{bin}:/bin", ignored=signal.SIGHUP),
    Case("kubectl started with SIGTERM ignored", "{bin}:/bin", ignored=signal.SIGTERM),
    Case("an empty PATH entry finds ./aws", ":/usr/bin:/bin", planted=("cwd",)),
    Case("an empty PATH entry before the real one", ":{bin}:/bin", planted=("cwd",)),
    Case("`.` on PATH finds ./aws", ".:{bin}", planted=("cwd",)),
    Case("a relative PATH entry", "rel:{bin}", planted=("rel",)),
    Case("a relative entry after the real one", "{bin}:rel", planted=("rel",)),
    Case("only the current directory has it", "{bin}/none:.", planted=("cwd",)),
    Case("an absolute entry for the current directory", "{cwd}:/bin", planted=("cwd",)),
    Case(
        "GODEBUG=execerrdot=0 lets ./aws run",
        ":/usr/bin:/bin",
        planted=("cwd",),
        env=(("GODEBUG", "execerrdot=0"),),
    ),
    Case(
        "GODEBUG's last execerrdot wins",
        ":/usr/bin:/bin",
        planted=("cwd",),
        env=(("GODEBUG", "execerrdot=0,execerrdot=1"),),
    ),
    Case(
        "PYTHONPATH=. where a `shim` package is", "{bin}:/bin", ("python",), (("PYTHONPATH", "."),)
    ),
    Case("PYTHONINSPECT set", "{bin}:/bin", env=(("PYTHONINSPECT", "1"),)),
    Case("kubectl started with stderr closed", "{bin}:/bin", mode="noisy", closed=(2,)),
    Case("stderr closed, and the plugin fails", "{bin}:/bin", mode="fail", closed=(2,)),
    Case("kubectl started with stdin closed", "{bin}:/bin", closed=(0,)),
    *(
        Case(f"output: {name}", "{bin}:/bin", mode="form", form=form, cached=cached)
        for name, form, cached in FORMS
    ),
]


def kubectl_error(stderr: str) -> str:
    """kubectl's error line, alike with and without the shim: the executable it names (aws,
    or the shim) left out, and a program that is not there said as a shell says it, exit
    127 (no plugin can make kubectl say "not found": the shim is found)."""
    if not stderr:
        return "(nothing: kubectl's stderr was closed)"
    lines = [line for line in stderr.splitlines() if line.startswith(KUBECTL_ERRORS)]
    assert lines, stderr  # (a kubectl whose words changed: the harness must be told)
    error = re.sub(r"executable \S+ (not found|failed)", r"executable \1", lines[0])
    return error.replace("executable not found", "executable failed with exit code 127")


KUBECTL_ERRORS = ("Unable to connect to the server: ", "error: ")


def plant(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "aws").write_text(PLUGIN)
    (directory / "aws").chmod(0o755)


@pytest.mark.real_kubectl
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_kubectl_sees_the_same_through_the_shim(
    tmp_path: Path, private_home: Path, case: Case
) -> None:
    kubectl = kubectl_v35()
    places = {"bin": tmp_path / "bin", "cwd": tmp_path / "cwd", "rel": tmp_path / "cwd" / "rel"}
    plant(places["bin"])
    places["cwd"].mkdir(exist_ok=True)
    (tmp_path / "form").write_bytes(case.form)
    for where in case.planted:
        if where == "python":
            plant_shim_package(places["cwd"], tmp_path / "imported")
        else:
            plant(places[where])
    ran = tmp_path / "ran"
    env = {
        **os.environ,  # (as conftest left it: no AWS_, EKS_SHIM_ or KUBE variables)
        "HOME": str(private_home),
        "PATH": case.path.format(**{name: str(path) for name, path in places.items()}),
        "PARITY_RAN": str(ran),
        "PARITY_MODE": case.mode,
        "PARITY_NAME": case.name.replace(" ", "-"),
        "PARITY_FORM": str(tmp_path / "form"),
        **dict(case.env),
    }

    def run(config: Path, api: ApiServer) -> Seen:
        before = len(api.tokens)
        signals = {signal.SIGINT: signal.SIG_DFL, signal.SIGHUP: signal.SIG_DFL}
        if case.ignored is not None:
            signals[case.ignored] = signal.SIG_IGN

        def prepare() -> None:  # (in the child, before exec)
            for sig, how in signals.items():
                signal.signal(sig, how)
            for fd in case.closed:
                os.close(fd)

        done = subprocess.run(
            [kubectl, "--kubeconfig", str(config), "get", "--raw", "/version"],
            env=env,
            cwd=places["cwd"],
            preexec_fn=prepare,
            capture_output=True,
            timeout=HANG_GUARD * 2,
            check=False,
        )
        runs = [line.split() for line in ran.read_text().splitlines()] if ran.exists() else []
        ran.unlink(missing_ok=True)
        where = tuple(
            f"{os.path.relpath(os.path.join(places['cwd'], program), tmp_path)} "
            f"SigIgn {int(ignored, 16) & ~GLIBC_INTERNAL:x}"
            for program, ignored in runs
        )
        return Seen(
            done.returncode == 0,
            where,
            tuple(sorted(set(api.tokens[before:]))),
            kubectl_error(done.stderr.decode(errors="replace")) if done.returncode else "",
        )

    with ApiServer(lambda token: True) as api:
        direct = tmp_path / "direct"
        direct.write_text(kubeconfig(api, "aws", ARGS))
        wrapped = tmp_path / "wrapped"
        shutil.copy(direct, wrapped)
        wrap = subprocess.run(
            [*shim_argv(), "kubeconfig", "wrap", "--kubeconfig", str(wrapped)],
            env={**os.environ, "HOME": str(private_home)},
            capture_output=True,
            timeout=HANG_GUARD,
            check=False,
        )
        assert wrap.returncode == 0, wrap.stderr.decode()
        assert b"changed 1 user" in wrap.stdout
        by_kubectl = run(direct, api)
        by_shim = run(wrapped, api)
        again = run(wrapped, api)
    assert by_shim == by_kubectl
    if not by_kubectl.succeeded:  # nothing was cached: the plugin runs again, the same error
        assert again == by_kubectl
    else:
        assert again.succeeded
        assert again.tokens == by_kubectl.tokens
        if case.cached is not None:
            assert (again.ran == ()) == case.cached, "cached, or not, as the shim says"


# Heal behind a proxy: kubectl asks the plugin again in the same process when the server
# answers 401 (`kubectl get pods` does, after discovery), and the shim checks the cached
# token with the server before it fetches a new one. That check must reach the server as
# kubectl does. The server is `api.stub.test` (the test proxy reaches it at 127.0.0.1):
# reached directly, it is no host at all.
COUNTING_PLUGIN = r"""#!/bin/sh
n=$(cat "$PARITY_COUNT" 2>/dev/null || echo 0); n=$((n + 1)); echo $n > "$PARITY_COUNT"
echo '{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential",'\
'"status":{"token":"parity-'$n'","expirationTimestamp":"2099-01-01T00:00:00Z"}}'
"""


@pytest.mark.real_kubectl
@pytest.mark.parametrize("where", ["HTTPS_PROXY", "https_proxy", "proxy-url"])
def test_a_token_revoked_behind_a_proxy_is_replaced_as_without_the_shim(
    tmp_path: Path, private_home: Path, where: str
) -> None:
    kubectl = kubectl_v35()
    plugin = tmp_path / "aws"
    plugin.write_text(COUNTING_PLUGIN)
    plugin.chmod(0o755)
    revoked: set[str] = set()
    with proxy() as (port, seen), ApiServer(lambda token: token not in revoked) as api:
        config = json.loads(kubeconfig(api, str(plugin), ARGS, provide_cluster_info=True))
        cluster = config["clusters"][0]["cluster"]
        cluster["server"] = f"https://api.stub.test:{api.url.rpartition(':')[2]}"
        cluster["tls-server-name"] = "localhost"
        env = {**os.environ, "HOME": str(private_home), "PARITY_COUNT": str(tmp_path / "n")}
        if where == "proxy-url":
            cluster["proxy-url"] = f"http://127.0.0.1:{port}"
        else:
            env[where] = f"http://127.0.0.1:{port}"
        direct, wrapped = tmp_path / "direct", tmp_path / "wrapped"
        direct.write_text(json.dumps(config))
        wrapped.write_text(json.dumps(config))
        subprocess.run(
            [*shim_argv(), "kubeconfig", "wrap", "--kubeconfig", str(wrapped)],
            env=env, capture_output=True, timeout=HANG_GUARD, check=True,
        )  # fmt: skip

        def kubectl_get_pods(config: Path) -> tuple[bool, str]:
            done = subprocess.run(
                [kubectl, "--kubeconfig", str(config), "get", "pods"],
                env=env, capture_output=True, timeout=HANG_GUARD * 2, check=False,
            )  # fmt: skip
            return done.returncode == 0, kubectl_error(done.stderr.decode(errors="replace"))

        kubectl_get_pods(wrapped)  # the shim caches a token
        revoked.update(api.tokens)  # and the server stops accepting it
        by_kubectl = kubectl_get_pods(direct)
        by_shim = kubectl_get_pods(wrapped)
    assert by_shim == by_kubectl
    assert "the server doesn't have a resource type" in by_kubectl[1]  # (the stub has no pods)
    assert len(seen) >= 4  # kubectl's requests went through the proxy, and so did the check


# Job control: kubectl as the foreground job of a shell on a terminal (a pty), the plugin
# slow enough to be interrupted or suspended. What the shell sees of its job must be the
# same with and without the shim.
SLOW_PLUGIN = r"""#!/bin/sh
[ "$PARITY_TRAP" ] && trap '' INT
# PARITY_HOLD: run on until SIGUSR1 (the test sends it once the job is continued). The
# sleep is started before the plugin says it runs: a Ctrl-Z that caught the shell in the
# vfork of a later command would stop the child before its exec and leave the shell in
# the kernel (state D), never stopped, whoever runs the plugin.
[ "$PARITY_HOLD" ] && { sleep 60 & held=$!; trap 'kill $held' USR1; }
echo $$ > "$PARITY_STARTED.tmp" && mv "$PARITY_STARTED.tmp" "$PARITY_STARTED"
code=slow
if [ "$PARITY_PROMPT" ]; then printf 'Enter MFA code: ' >&2; read -r code
elif [ "$PARITY_HOLD" ]; then wait $held
else sleep "$PARITY_SLEEP"; fi
echo '{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential",'\
'"status":{"token":"parity-'"$code"'","expirationTimestamp":"2099-01-01T00:00:00Z"}}'
"""
# A shell with job control, in the pty's session: runs its job in a process group of its
# own, with the terminal; reports how the job stopped or ended; on a stop, takes the
# terminal back and says STOPPED, then waits for a line (`fg`) to continue the job.
JOB_SHELL = r"""
import json, os, signal, sys
JOB_SIGNALS = (signal.SIGINT, signal.SIGQUIT, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU)
for signum in JOB_SIGNALS:
    signal.signal(signum, signal.SIG_IGN)
report, command = sys.argv[1], sys.argv[2:]
job = os.fork()
if job == 0:
    os.setpgid(0, 0)
    os.tcsetpgrp(0, os.getpgrp())
    for signum in JOB_SIGNALS:
        signal.signal(signum, signal.SIG_DFL)
    os.execv(command[0], command)
try:  # (as the child does: whichever comes first; the other fails once it has exec'd)
    os.setpgid(job, job)
except OSError:
    pass
os.tcsetpgrp(0, job)
seen = []
while True:
    _, status = os.waitpid(job, os.WUNTRACED)
    if os.WIFSTOPPED(status):
        seen.append("stopped by " + signal.Signals(os.WSTOPSIG(status)).name)
        os.tcsetpgrp(0, os.getpgrp())
        print("STOPPED", flush=True)
        sys.stdin.readline()
        os.tcsetpgrp(0, job)
        os.killpg(job, signal.SIGCONT)
        continue
    code = os.waitstatus_to_exitcode(status)
    seen.append(f"exited {code}" if code >= 0 else "killed by " + signal.Signals(-code).name)
    break
with open(report + ".tmp", "w") as file:
    json.dump(seen, file)
os.rename(report + ".tmp", report)
"""


def stopped(output: bytes, times: int) -> bool:
    """Whether the job shell has said STOPPED `times` times in `output`."""
    return output.count(b"STOPPED") == times


def is_stopped(pid: int) -> bool:
    return process_state(pid) == "T"


def is_gone(pid: int) -> bool:
    return process_state(pid) in ("", "Z", "X")


def until(condition: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + HANG_GUARD
    while not condition():
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.02)


def slow_configs(
    tmp_path: Path, api: ApiServer, env: dict[str, str], interactive: str = "Never"
) -> tuple[Path, Path]:
    """A kubeconfig whose plugin is SLOW_PLUGIN, with `interactiveMode` (IfAvailable: kubectl
    gives the plugin its stdin, the terminal), and its copy through `shim kubeconfig wrap`."""
    plugin = tmp_path / "aws"
    plugin.write_text(SLOW_PLUGIN)
    plugin.chmod(0o755)
    direct, wrapped = tmp_path / "direct", tmp_path / "wrapped"
    config = json.loads(kubeconfig(api, str(plugin), ARGS))
    config["users"][0]["user"]["exec"]["interactiveMode"] = interactive
    direct.write_text(json.dumps(config))
    shutil.copy(direct, wrapped)
    subprocess.run(
        [*shim_argv(), "kubeconfig", "wrap", "--kubeconfig", str(wrapped)],
        env=env, capture_output=True, timeout=HANG_GUARD, check=True,
    )  # fmt: skip
    return direct, wrapped


@pytest.mark.real_kubectl
@pytest.mark.parametrize("interactive", ["Never", "IfAvailable"])
@pytest.mark.parametrize(
    "keys",
    [
        "Ctrl-C",
        "Ctrl-C, the plugin ignoring it",
        "Ctrl-Z, fg",
        "an MFA code typed",
        "an MFA code typed after Ctrl-Z, fg twice",
    ],
)
def test_the_shell_sees_its_kubectl_job_as_without_the_shim(
    tmp_path: Path, private_home: Path, keys: str, interactive: str
) -> None:
    """interactiveMode IfAvailable: the plugin's stdin is the terminal, and the shim hands
    the terminal to the backend's group; Never: it has no terminal (and a prompt reads
    the end of stdin, as kubectl gives it)."""
    if "after Ctrl-Z" in keys and interactive == "Never":
        pytest.skip("without the terminal, the prompt reads the end of stdin at once")
    kubectl = kubectl_v35()
    started = tmp_path / "started"
    env = {**os.environ, "HOME": str(private_home), "PARITY_STARTED": str(started)}
    env.update(PARITY_SLEEP="20")
    if keys.startswith("Ctrl-Z"):  # the plugin runs on until the job is continued
        env["PARITY_HOLD"] = "1"  # (a loaded machine may take seconds to stop it)
    if "ignoring" in keys:
        env["PARITY_TRAP"] = "1"
    if "MFA" in keys:
        env["PARITY_PROMPT"] = "1"

    def job(config: Path) -> list[str]:
        started.unlink(missing_ok=True)
        report = tmp_path / "report"
        report.unlink(missing_ok=True)
        command = [kubectl, "--kubeconfig", str(config), "get", "--raw", "/version"]
        argv = [sys.executable, "-c", JOB_SHELL, str(report), *command]
        pid, terminal = on_a_terminal(argv, env)
        output = b""
        try:
            until(started.exists, "the plugin to start")
            plugin = int(started.read_text())
            if keys.startswith("Ctrl-Z"):
                os.write(terminal, b"\x1a")
                output = read_until(terminal, output, lambda seen: b"STOPPED" in seen)
                until(lambda: is_stopped(plugin), f"the plugin to be stopped with {config.name}")
                os.write(terminal, b"fg\n")
                until(lambda: not is_stopped(plugin), "the plugin to be continued")
                os.kill(plugin, signal.SIGUSR1)
            elif "after Ctrl-Z" in keys:  # each time, the backend gets the terminal back
                output = read_until(terminal, output, lambda seen: b"Enter MFA code" in seen)
                for stop in (1, 2):
                    os.write(terminal, b"\x1a")
                    output = read_until(terminal, output, functools.partial(stopped, times=stop))
                    until(lambda: is_stopped(plugin), f"the plugin to be stopped ({stop})")
                    os.write(terminal, b"fg\n")
                    until(lambda: not is_stopped(plugin), f"the plugin to be continued ({stop})")
                os.write(terminal, b"424242\n")
            elif "MFA" in keys:
                if interactive != "Never":
                    output = read_until(terminal, output, lambda seen: b"Enter MFA code" in seen)
                    os.write(terminal, b"424242\n")
            else:
                os.write(terminal, b"\x03")
            until(report.exists, "the job to end")
        finally:
            os.close(terminal)
            os.waitpid(pid, 0)
        if not keys.startswith("Ctrl-Z") or "ignoring" not in keys:
            until(lambda: is_gone(plugin) or "ignoring" in keys, "the plugin to end")
        seen: list[str] = json.loads(report.read_text())
        return seen

    with ApiServer(lambda token: True) as api:
        direct, wrapped = slow_configs(tmp_path, api, env, interactive)
        by_kubectl = job(direct), sorted(set(api.tokens))
        api.tokens.clear()
        by_shim = job(wrapped), sorted(set(api.tokens))
    assert by_shim == by_kubectl
    assert list(private_home.rglob("crash.log")) == []  # (a shim that crashed says nothing)
    ended = "killed by SIGINT" if keys.startswith("Ctrl-C") else "exited 0"
    assert by_kubectl[0][-1] == ended
    if "MFA" in keys:  # (with no terminal, the prompt reads the end of stdin: no code)
        assert by_kubectl[1] == ["parity-424242" if interactive != "Never" else "parity-"]


@pytest.mark.real_kubectl
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_killing_kubectls_process_group_ends_the_plugin_as_without_the_shim(
    tmp_path: Path, private_home: Path, signum: signal.Signals
) -> None:
    """CI cancelling a job, timeout(1): the signal goes to kubectl's whole process group."""
    kubectl = kubectl_v35()
    started = tmp_path / "started"
    env = {**os.environ, "HOME": str(private_home), "PARITY_STARTED": str(started)}
    env["PARITY_SLEEP"] = "60"

    def plugin_survives(config: Path) -> bool:
        started.unlink(missing_ok=True)
        process = subprocess.Popen(
            [kubectl, "--kubeconfig", str(config), "get", "--raw", "/version"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        try:
            until(started.exists, "the plugin to start")
            plugin = int(started.read_text())
            os.killpg(process.pid, signum)
            process.wait(HANG_GUARD)
            deadline = time.monotonic() + 5  # (without the shim: at once)
            while not is_gone(plugin) and time.monotonic() < deadline:
                time.sleep(0.02)
            survived = not is_gone(plugin)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(int(started.read_text()), signal.SIGKILL)
        return survived

    with ApiServer(lambda token: True) as api:
        direct, wrapped = slow_configs(tmp_path, api, env)
        by_kubectl = plugin_survives(direct)
        by_shim = plugin_survives(wrapped)
    assert (by_shim, by_kubectl) == (False, False)
