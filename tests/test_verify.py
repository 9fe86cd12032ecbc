"""Asking the API server whether it still accepts a token (shim.verify), for real over TLS."""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import trustme
from apiserver import ApiServer, own_loopback, proxy
from helpers import HANG_GUARD, kubectl_v35

from shim.deadline import Deadline
from shim.verify import proxy_for, rejected


def cluster(api: ApiServer, **extra: object) -> dict[str, object]:
    return {
        "server": api.url,
        "certificate-authority-data": base64.b64encode(api.ca_pem).decode(),
        **extra,
    }


@pytest.fixture
def connect_proxy() -> Iterator[tuple[str, list[bytes]]]:
    """A CONNECT proxy's URL, with user and password, and the requests it saw."""
    with proxy() as (port, seen):
        yield f"http://user:p%40ss@127.0.0.1:{port}", seen


def root_only() -> None:
    if os.geteuid() != 0:
        pytest.skip("binds a port below 1024, which needs root")


@contextlib.contextmanager
def raw_server(answer: Callable[[ssl.SSLSocket], None]) -> Iterator[dict[str, object]]:
    """A TLS server on 127.0.0.1 that reads one request head and lets `answer` reply any
    bytes at all; yields the cluster info that points at it."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        try:
            client, _ = listener.accept()
            with context.wrap_socket(client, server_side=True) as conn:
                head = b""
                while b"\r\n\r\n" not in head:
                    head += conn.recv(4096)
                answer(conn)
        except OSError:
            pass  # the client gave up: that is what some tests wait for

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield {
            "server": f"https://127.0.0.1:{listener.getsockname()[1]}",
            "certificate-authority-data": base64.b64encode(ca.cert_pem.bytes()).decode(),
        }
    finally:
        listener.close()
        thread.join(HANG_GUARD)


def test_a_401_is_rejected_and_a_200_is_not() -> None:
    with ApiServer(lambda token: token == "good") as api:
        assert rejected(cluster(api), "bad", Deadline(1.5))
        assert not rejected(cluster(api), "good", Deadline(2))
    assert api.tokens == ["bad", "good"]


def test_a_403_is_not_a_rejected_token() -> None:
    with ApiServer(lambda token: False, reject_status=403) as api:
        assert not rejected(cluster(api), "t", Deadline(2))


def test_tls_is_verified_with_the_cluster_ca() -> None:
    with ApiServer(lambda token: False) as api, ApiServer() as other:
        assert not rejected(
            cluster(api, **{"certificate-authority-data": base64.b64encode(other.ca_pem).decode()}),
            "t",
            Deadline(2),
        )
        assert api.tokens == []  # the token never went to a server we could not verify
        assert rejected(
            cluster(api, **{"certificate-authority-data": None, "insecure-skip-tls-verify": True}),
            "t",
            Deadline(2),
        )


def test_tls_server_name_is_the_name_checked() -> None:
    with ApiServer(lambda token: False) as api:
        assert rejected(cluster(api, **{"tls-server-name": "localhost"}), "t", Deadline(2))
        assert not rejected(
            cluster(api, **{"tls-server-name": "elsewhere.example"}), "t", Deadline(2)
        )
    assert len(api.tokens) == 1


def test_nothing_listening_or_no_https_is_not_rejected() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    assert not rejected({"server": f"https://127.0.0.1:{port}"}, "t", Deadline(2))
    assert not rejected({"server": "http://127.0.0.1:1"}, "t", Deadline(2))
    assert not rejected({}, "t", Deadline(2))


def test_an_http_proxy_url_is_used(connect_proxy: tuple[str, list[bytes]]) -> None:
    proxy, seen = connect_proxy
    with ApiServer(lambda token: False) as api:
        assert rejected(cluster(api, **{"proxy-url": proxy}), "t", Deadline(2))
    assert len(seen) == 1
    assert seen[0].startswith(b"CONNECT 127.0.0.1:")
    assert b"Proxy-Authorization: Basic " + base64.b64encode(b"user:p@ss") in seen[0]


def behind_a_proxy(api: ApiServer) -> dict[str, object]:
    """The stub's cluster info under a name no resolver knows (the test proxy reaches
    `*.test` at 127.0.0.1), which Go's rules do proxy."""
    port = api.url.rpartition(":")[2]
    return cluster(api, server=f"https://api.stub.test:{port}", **{"tls-server-name": "localhost"})


@pytest.mark.parametrize("variable", ["HTTPS_PROXY", "https_proxy"])
def test_the_https_proxy_of_the_environment_is_used(
    connect_proxy: tuple[str, list[bytes]], variable: str
) -> None:
    proxy, seen = connect_proxy
    with ApiServer(lambda token: False) as api:
        assert rejected(behind_a_proxy(api), "t", Deadline(2), {variable: proxy})
        assert not rejected(behind_a_proxy(api), "t", Deadline(2), {})  # (no such host)
    assert [head.split(b"\r\n")[0] for head in seen] == [
        f"CONNECT api.stub.test:{api.url.rpartition(':')[2]} HTTP/1.1".encode()
    ]


def test_the_clusters_proxy_url_wins_over_the_environment(
    connect_proxy: tuple[str, list[bytes]],
) -> None:
    proxy, seen = connect_proxy
    with ApiServer(lambda token: False) as api:
        info = behind_a_proxy(api)
        info["proxy-url"] = proxy
        env = {"HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": "*"}
        assert rejected(info, "t", Deadline(2), env)
    assert len(seen) == 1


def test_http_proxy_is_not_used_for_https(connect_proxy: tuple[str, list[bytes]]) -> None:
    proxy, seen = connect_proxy
    with ApiServer(lambda token: False) as api:
        assert not rejected(behind_a_proxy(api), "t", Deadline(2), {"HTTP_PROXY": proxy})
    assert seen == []


def test_a_proxy_without_a_scheme_is_http(connect_proxy: tuple[str, list[bytes]]) -> None:
    proxy, seen = connect_proxy
    with ApiServer(lambda token: False) as api:
        bare = proxy.partition("://")[2]
        assert rejected(behind_a_proxy(api), "t", Deadline(2), {"HTTPS_PROXY": bare})
    assert len(seen) == 1


# Which hosts NO_PROXY exempts, asked of kubectl itself: the proxy sees its CONNECT or not.
# The server's host, on port 6443.
NO_PROXY_CASES = [
    ("api.stub.test", ""),
    ("api.stub.test", "*"),
    ("api.stub.test", "stub.test"),
    ("api.stub.test", ".stub.test"),
    ("stub.test", ".stub.test"),
    ("stub.test", "*.stub.test"),
    ("api.stub.test", "*.stub.test"),
    ("api.stub.test", "ub.test"),
    ("api.stub.test", "API.Stub.Test"),
    ("api.stub.test", " other.test , api.stub.test "),
    ("api.stub.test", "api.stub.test:6443"),
    ("api.stub.test", "api.stub.test:1"),
    ("api.stub.test", "test"),
    ("192.0.2.10", "192.0.2.10"),
    ("192.0.2.10", "192.0.2.0/24"),
    ("192.0.2.10", "192.0.3.0/24"),
    ("192.0.2.10", "192.0.2.10:6443"),
    ("192.0.2.10", "192.0.2.10:1"),
    ("192.0.2.10", "192.0.2.1"),
    ("[2001:db8::10]", "2001:db8::10"),
    ("[2001:db8::10]", "[2001:db8::10]:6443"),
    ("[2001:db8::10]", "2001:db8::/32"),
    ("[2001:db8::10]", "2001:db8::11"),
    ("127.0.0.1", ""),
    ("localhost", ""),
    ("[::1]", ""),
    ("127.0.0.2", "other.test"),
    ("192.0.2.10", "192.0.2.99/24"),  # host bits in a range: Go's ParseCIDR takes it
    ("api.stub.test", "192.0.2.0/24"),  # a range says nothing of a name
    ("[2001:db8::10]", "2001:0db8:0::10"),  # the same address, written otherwise
    ("api.stub.test.", ":6443"),  # a port without a host: Go ignores the entry
    ("api.stub.test", "api.stub.test:"),  # an empty port
    ("api.stub.test", "api.stub.test:https"),  # a port Go does not read as a number
    ("api.6443", "6443"),  # digits alone: a domain
]
# The server's host and port as the URL has them (none: https's 443), NO_PROXY's name.
OTHER_CASES = [
    ("api.stub.test", "api.stub.test:443", "NO_PROXY"),
    ("api.stub.test", "api.stub.test:6443", "NO_PROXY"),
    ("api.stub.test:6443", "api.stub.test", "no_proxy"),
]


@pytest.mark.real_kubectl
def test_no_proxy_exempts_the_hosts_kubectl_exempts(
    connect_proxy: tuple[str, list[bytes]],
) -> None:
    """For each server host and NO_PROXY, whether kubectl 1.35 sends its request through
    HTTPS_PROXY, and whether shim.verify.proxy_for would."""
    kubectl = kubectl_v35()
    proxy, seen = connect_proxy
    differences = []
    cases = [(f"{host}:6443", no_proxy, "NO_PROXY") for host, no_proxy in NO_PROXY_CASES]
    for address, no_proxy, variable in cases + OTHER_CASES:
        server = f"https://{address}"
        env = {"PATH": os.environ["PATH"], "HOME": "/nonexistent", "HTTPS_PROXY": proxy}
        env[variable] = no_proxy
        before = len(seen)
        subprocess.run(
            [kubectl, "--server", server, "--token", "t", "--request-timeout", "1s",
             "--insecure-skip-tls-verify", "get", "--raw", "/version"],
            env=env, capture_output=True, timeout=HANG_GUARD, check=False,
        )  # fmt: skip
        by_kubectl = len(seen) > before
        by_shim = proxy_for(urlsplit(server), {}, env) != ""
        if by_kubectl != by_shim:
            differences.append((address, variable, no_proxy, by_kubectl))
    assert differences == [], differences


def test_a_socks_proxy_is_not_guessed_at() -> None:
    with ApiServer(lambda token: False) as api:
        assert not rejected(
            cluster(api, **{"proxy-url": "socks5://127.0.0.1:1080"}), "t", Deadline(2)
        )
    assert api.tokens == []


def test_a_server_trickling_its_answer_cannot_hold_the_check() -> None:
    """A 401 sent a byte every 0.5 s would arrive after ~20 s; the check has one
    deadline for everything, so it gives up at its timeout and does not count as rejected."""
    with ApiServer(lambda token: False, trickle=0.5) as api:
        started = time.monotonic()
        assert not rejected(cluster(api), "t", Deadline(1.5))
        took = time.monotonic() - started
    assert took < 5, f"the check took {took:.1f} s with a 1.5 s deadline"


def test_the_host_header_never_carries_userinfo() -> None:
    with ApiServer(lambda token: False) as api:
        port = api.url.rpartition(":")[2]
        server = api.url.replace("https://", "https://user:secret@")
        assert rejected(cluster(api, server=server), "t", Deadline(2))
    assert api.hosts == [f"127.0.0.1:{port}"]


@pytest.mark.parametrize("token", ["a\r\nX-Injected: 1", "a\nb", "a\x00", "a\x7f"])
def test_a_token_that_is_no_header_value_never_leaves(token: str) -> None:
    """(The shim never caches such a token; an entry written by an older version may hold
    one, and it must not inject a header.)"""
    with ApiServer(lambda token: False) as api:
        assert not rejected(cluster(api), token, Deadline(1.5))
    assert api.tokens == []


@pytest.mark.parametrize("token", ["a b", "a\tb", "t\u00e9k", "\ufffd", "a "])
def test_a_token_kubectl_sends_is_checked_as_kubectl_sends_it(token: str) -> None:
    """UTF-8, white space at the ends trimmed, as Go writes a header."""
    with ApiServer(lambda token: False) as api:
        assert rejected(cluster(api), token, Deadline(2))
    assert api.tokens == [token.rstrip(" \t").encode().decode("latin-1")]


@pytest.mark.parametrize("data", [["not", "a", "string"], 5, ""])
def test_certificate_authority_data_that_is_no_base64_text_means_no_trust(data: object) -> None:
    """kubectl's cluster info is JSON from outside: odd CA data is no CA (the system's
    roots, which do not know the stub's), never a crash."""
    with ApiServer(lambda token: False) as api:
        assert not rejected(
            cluster(api, **{"certificate-authority-data": data}), "t", Deadline(1.5)
        )
    assert api.tokens == []


def test_only_an_https_server_with_a_host_is_ever_contacted() -> None:
    """No token in clear over http://, and a server without a host is not localhost's."""
    with socket.create_server(("127.0.0.1", 0)) as plain:
        port = plain.getsockname()[1]
        assert not rejected({"server": f"http://127.0.0.1:{port}"}, "t", Deadline(1.5))
        plain.setblocking(False)
        with pytest.raises(BlockingIOError):
            plain.accept()  # nobody connected
    with ApiServer(lambda token: False) as api:
        port = api.url.rpartition(":")[2]
        insecure = {"insecure-skip-tls-verify": True, "certificate-authority-data": None}
        assert not rejected(cluster(api, server=f"https://:{port}", **insecure), "t", Deadline(1.5))
        assert rejected(cluster(api, **insecure), "t", Deadline(1.5))  # the same, with its host
    assert api.tokens == ["t"]


@pytest.mark.parametrize(
    ("userinfo", "header"),
    [("", None), ("user@", b"user:"), ("us%3Aer:p%40ss@", b"us:er:p@ss")],
)
def test_proxy_credentials_are_sent_only_when_the_url_has_them(
    userinfo: str, header: bytes | None
) -> None:
    with proxy() as (port, seen), ApiServer(lambda token: False) as api:
        assert rejected(
            cluster(api, **{"proxy-url": f"http://{userinfo}127.0.0.1:{port}"}), "t", Deadline(2)
        )
    (request,) = seen
    if header is None:
        assert b"Proxy-Authorization" not in request
    else:
        assert b"Proxy-Authorization: Basic " + base64.b64encode(header) + b"\r\n" in request


@pytest.mark.parametrize(
    "url", ["socks5://127.0.0.1:{port}", "https://127.0.0.1:{port}", "http://:{port}"]
)
def test_only_an_http_proxy_with_a_host_is_used(url: str) -> None:
    """Not a socks5:// or https:// proxy spoken to as http, nor a proxy without a host as
    localhost's: the check gives up (and the token is served as usual)."""
    with proxy() as (port, seen), ApiServer(lambda token: False) as api:
        assert not rejected(cluster(api, **{"proxy-url": url.format(port=port)}), "t", Deadline(2))
    assert seen == []
    assert api.tokens == []


def test_a_tunnel_the_proxy_refused_is_not_used() -> None:
    with proxy(b"403 Forbidden") as (port, seen), ApiServer(lambda token: False) as api:
        assert not rejected(
            cluster(api, **{"proxy-url": f"http://127.0.0.1:{port}"}), "t", Deadline(2)
        )
    assert len(seen) == 1
    assert api.tokens == []


def test_a_proxy_that_never_answers_ends_at_the_deadline() -> None:
    with proxy(answers=False) as (port, seen), ApiServer(lambda token: False) as api:
        started = time.monotonic()
        assert not rejected(
            cluster(api, **{"proxy-url": f"http://127.0.0.1:{port}"}), "t", Deadline(1)
        )
        assert time.monotonic() - started < HANG_GUARD
    assert len(seen) == 1


# A resolver that takes a minute to say nothing: glibc's own timeout is 60 s here.
SILENT_RESOLVER = """
import sys, time
from shim.deadline import Deadline
from shim.verify import rejected
started = time.monotonic()
rejected({"server": "https://api.never.test:6443"}, "t", Deadline(1))
print(time.monotonic() - started)
"""


def test_a_resolver_that_never_answers_cannot_hold_the_check(tmp_path: Path) -> None:
    """Name lookups have no timeout of their own: the check runs them on its deadline.
    Real glibc, a real resolver that never answers: /etc/resolv.conf is replaced in a
    mount namespace of the process that checks."""
    root_only()
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1)")
    address = own_loopback()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind((address, 53))  # reads nothing, answers nothing
        resolv = tmp_path / "resolv.conf"
        resolv.write_text(f"nameserver {address}\noptions timeout:30 attempts:2\n")
        done = subprocess.run(
            ["unshare", "--mount", "sh", "-c",
             'mount --bind "$1" /etc/resolv.conf && exec "$2" -c "$3"', "-",
             str(resolv), sys.executable, SILENT_RESOLVER],
            capture_output=True, timeout=HANG_GUARD * 2, check=False,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    assert float(done.stdout) < HANG_GUARD / 3  # (60 s without the bound)


def test_urls_without_a_port_mean_443_and_80() -> None:
    """EKS endpoints are https://NAME with no port; http:// proxies are often written so."""
    root_only()
    address = own_loopback()
    with ApiServer(lambda token: False, port=443, host=address) as api:
        assert rejected(cluster(api, server=f"https://{address}"), "t", Deadline(2))
        with proxy(port=80, host=address) as (_, seen):
            assert rejected(
                cluster(api, server=f"https://{address}", **{"proxy-url": f"http://{address}"}),
                "t",
                Deadline(2),
            )
    assert api.hosts == [address, address]
    assert seen[0].startswith(f"CONNECT {address}:443 HTTP/1.1\r\n".encode())


@pytest.mark.parametrize(
    ("answer", "is_401"),
    [
        (b"HTTP/1.1 401 Unauthorized\r\n\r\n", True),
        (b"HTTP/1.1 401 Unauthorized\r\n", True),  # then the server closes: what came counts
        (b"HTTP/1.1 401\r\n\r\n", True),  # no reason phrase, as Go's client accepts
        (b"HTTP/1.1 200 OK\r\nX-Note: 401 401\r\n\r\n", False),
        (b"HTTP/1.1 200 OK\r\n\r\n", False),
        (b"HTTP/1.1 +401 Unauthorized\r\n\r\n", False),
        (b"garbage\r\n\r\n", False),
        (b"", False),
    ],
)
def test_only_a_401_status_line_is_a_rejection(answer: bytes, is_401: bool) -> None:
    with raw_server(lambda conn: conn.sendall(answer)) as info:
        assert rejected(info, "t", Deadline(2)) is is_401


def test_a_head_that_never_ends_is_read_no_further_than_64_kib() -> None:
    def endless(conn: ssl.SSLSocket) -> None:
        conn.sendall(b"HTTP/1.1 401 Unauthorized\r\n")
        while True:  # until the client hangs up
            conn.sendall(b"X-Padding: " + b"x" * 1000 + b"\r\n")

    with raw_server(endless) as info:
        assert rejected(info, "t", Deadline(5))  # the status, from the first 64 KiB


def test_a_lookup_left_running_takes_no_signal_the_main_thread_holds_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The lookup's thread outlives a check that gave up on it. A signal delivered to it
    would run its handler in the main thread even while the main thread blocks it, as the
    shim does while it starts a backend (the backend could then be left running)."""
    stuck = threading.Event()

    def never_answers(*args: object, **kwargs: object) -> object:
        stuck.wait(HANG_GUARD)
        raise OSError("gave up")

    monkeypatch.setattr(socket, "getaddrinfo", never_answers)
    arrived: list[int] = []
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: arrived.append(signum))
    try:
        assert not rejected({"server": "https://api.never.test"}, "t", Deadline(0.1))
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])
        try:
            os.kill(os.getpid(), signal.SIGUSR1)
            time.sleep(0.2)  # (time for another thread to take it, were one to)
            assert arrived == []
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        assert arrived == [signal.SIGUSR1]  # held back until then
    finally:
        stuck.set()
        signal.signal(signal.SIGUSR1, previous)
