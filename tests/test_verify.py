"""Asking the API server whether it still accepts a token (shim.verify), for real over TLS."""

from __future__ import annotations

import base64
import select
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from apiserver import ApiServer

from shim.verify import rejected


def cluster(api: ApiServer, **extra: object) -> dict[str, object]:
    return {
        "server": api.url,
        "certificate-authority-data": base64.b64encode(api.ca_pem).decode(),
        **extra,
    }


def test_a_401_is_rejected_and_a_200_is_not() -> None:
    with ApiServer(lambda token: token == "good") as api:
        assert rejected(cluster(api), "bad", 1.5)
        assert not rejected(cluster(api), "good", 2)
    assert api.tokens == ["bad", "good"]


def test_a_403_is_not_a_rejected_token() -> None:
    with ApiServer(lambda token: False, reject_status=403) as api:
        assert not rejected(cluster(api), "t", 2)


def test_tls_is_verified_with_the_cluster_ca() -> None:
    with ApiServer(lambda token: False) as api, ApiServer() as other:
        assert not rejected(
            cluster(api, **{"certificate-authority-data": base64.b64encode(other.ca_pem).decode()}),
            "t",
            2,
        )
        assert api.tokens == []  # the token never went to a server we could not verify
        assert rejected(
            cluster(api, **{"certificate-authority-data": None, "insecure-skip-tls-verify": True}),
            "t",
            2,
        )


def test_tls_server_name_is_the_name_checked() -> None:
    with ApiServer(lambda token: False) as api:
        assert rejected(cluster(api, **{"tls-server-name": "localhost"}), "t", 2)
        assert not rejected(cluster(api, **{"tls-server-name": "elsewhere.example"}), "t", 2)
    assert len(api.tokens) == 1


def test_nothing_listening_or_no_https_is_not_rejected() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    assert not rejected({"server": f"https://127.0.0.1:{port}"}, "t", 2)
    assert not rejected({"server": "http://127.0.0.1:1"}, "t", 2)
    assert not rejected({}, "t", 2)


@pytest.fixture
def connect_proxy() -> Iterator[tuple[str, list[bytes]]]:
    """A minimal HTTP CONNECT proxy on 127.0.0.1; yields its URL and the requests it saw."""
    seen: list[bytes] = []
    listener = socket.create_server(("127.0.0.1", 0))

    def pipe(client: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            head += client.recv(4096)
        seen.append(head)
        host, _, port = head.split(b" ")[1].decode().rpartition(":")
        with socket.create_connection((host, int(port))) as upstream, client:
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            while True:
                ready, _, _ = select.select([client, upstream], [], [], 5)
                if not ready:
                    return
                for source in ready:
                    data = source.recv(65536)
                    if not data:
                        return
                    (upstream if source is client else client).sendall(data)

    def serve() -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=pipe, args=(client,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://user:p%40ss@127.0.0.1:{listener.getsockname()[1]}", seen
    listener.close()


def test_an_http_proxy_url_is_used(connect_proxy: tuple[str, list[bytes]]) -> None:
    proxy, seen = connect_proxy
    with ApiServer(lambda token: False) as api:
        assert rejected(cluster(api, **{"proxy-url": proxy}), "t", 2)
    assert len(seen) == 1
    assert seen[0].startswith(b"CONNECT 127.0.0.1:")
    assert b"Proxy-Authorization: Basic " + base64.b64encode(b"user:p@ss") in seen[0]


def test_a_socks_proxy_is_not_guessed_at() -> None:
    with ApiServer(lambda token: False) as api:
        assert not rejected(cluster(api, **{"proxy-url": "socks5://127.0.0.1:1080"}), "t", 2)
    assert api.tokens == []


def test_a_server_trickling_its_answer_cannot_hold_the_check() -> None:
    """Issue #8: a 401 sent a byte every 0.5 s would arrive after ~20 s; the check has one
    deadline for everything, so it gives up at its timeout and does not count as rejected."""
    with ApiServer(lambda token: False, trickle=0.5) as api:
        started = time.monotonic()
        assert not rejected(cluster(api), "t", timeout=1.5)
        took = time.monotonic() - started
    assert took < 5, f"the check took {took:.1f} s with a 1.5 s deadline"


def test_the_host_header_never_carries_userinfo() -> None:
    with ApiServer(lambda token: False) as api:
        port = api.url.rpartition(":")[2]
        server = api.url.replace("https://", "https://user:secret@")
        assert rejected(cluster(api, server=server), "t", 2)
    assert api.hosts == [f"127.0.0.1:{port}"]


@pytest.mark.parametrize("token", ["a b", "a\r\nX-Injected: 1", "a\x00", "a\tb"])
def test_a_token_that_is_no_header_value_never_leaves(token: str) -> None:
    with ApiServer(lambda token: False) as api:
        assert not rejected(cluster(api), token, 1.5)
    assert api.tokens == []


@pytest.mark.parametrize("data", [["not", "a", "string"], 5, ""])
def test_certificate_authority_data_that_is_no_base64_text_means_no_trust(data: object) -> None:
    """kubectl's cluster info is JSON from outside: odd CA data is no CA (the system's
    roots, which do not know the stub's), never a crash."""
    with ApiServer(lambda token: False) as api:
        assert not rejected(cluster(api, **{"certificate-authority-data": data}), "t", 1.5)
    assert api.tokens == []


def test_only_an_https_server_with_a_host_is_ever_contacted() -> None:
    """No token in clear over http://, and a server without a host is not localhost's."""
    with socket.create_server(("127.0.0.1", 0)) as plain:
        port = plain.getsockname()[1]
        assert not rejected({"server": f"http://127.0.0.1:{port}"}, "t", 1.5)
        plain.setblocking(False)
        with pytest.raises(BlockingIOError):
            plain.accept()  # nobody connected
    with ApiServer(lambda token: False) as api:
        port = api.url.rpartition(":")[2]
        insecure = {"insecure-skip-tls-verify": True, "certificate-authority-data": None}
        assert not rejected(cluster(api, server=f"https://:{port}", **insecure), "t", 1.5)
        assert rejected(cluster(api, **insecure), "t", 1.5)  # the same, with its host
    assert api.tokens == ["t"]
