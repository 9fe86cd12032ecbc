"""A stand-in Kubernetes API server on loopback over HTTPS, for tests and the benchmark.

client-go runs exec plugins only for TLS servers, so this serves HTTPS with a
certificate from `trustme`. GET /version answers 200 to a bearer token ("" for none) that
`accept` likes and 401 otherwise, and records every token it saw.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import select
import signal
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import parse_qs, urlsplit

import trustme

VERSION = {"major": "1", "minor": "31", "gitVersion": "v1.31.0-eks-stub", "platform": "linux/amd64"}


def is_signed_eks_token(token: str) -> bool:
    """Whether `token` is `k8s-aws-v1.` + a presigned STS GetCallerIdentity URL for a cluster."""
    prefix = "k8s-aws-v1."
    if not token.startswith(prefix):
        return False
    encoded = token[len(prefix) :]
    try:
        url = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except ValueError:
        return False
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    return (
        parts.scheme == "https"
        and parts.hostname is not None
        and parts.hostname.startswith("sts.")
        and query.get("Action") == ["GetCallerIdentity"]
        and "x-k8s-aws-id" in query.get("X-Amz-SignedHeaders", [""])[0]
        and bool(query.get("X-Amz-Signature"))
    )


def own_loopback() -> str:
    """A loopback address of this process's own, for a server on a fixed port (443, 80,
    53): all of 127.0.0.0/8 is loopback on Linux, so two test runs at once (both Pythons
    of scripts/test, a mutation campaign) each have their own and never meet."""
    pid = os.getpid()
    return f"127.{pid >> 16 & 255}.{pid >> 8 & 255}.{pid & 255}"


def no_signals_here() -> None:
    """For a helper thread that outlives its test: signals it took would run their handler
    in the main thread even while the main thread has them blocked (a test of that
    guarantee would fail because of us)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())


@contextlib.contextmanager
def proxy(
    status: bytes = b"200 Connection established",
    port: int = 0,
    answers: bool = True,
    host: str = "127.0.0.1",
) -> Iterator[tuple[int, list[bytes]]]:
    """A minimal HTTP CONNECT proxy on `host`: yields its port and the requests it saw.
    It answers `status` and then tunnels whatever that status said (a proxy that refuses
    and tunnels anyway tests the client); `answers=False`: it reads and says nothing.
    A host under `.test` is reached at 127.0.0.1: a name no resolver knows, which Go's
    proxy rules do not exempt as they exempt localhost and loopback addresses."""
    seen: list[bytes] = []
    listener = socket.create_server((host, port))
    stopping = threading.Event()

    def pipe(client: socket.socket) -> None:
        no_signals_here()
        head = b""
        while b"\r\n\r\n" not in head:
            head += client.recv(4096)
        seen.append(head)
        if not answers:
            stopping.wait(10)
            client.close()
            return
        host, _, upstream_port = head.split(b" ")[1].decode().rpartition(":")
        host = "127.0.0.1" if host.endswith(".test") else host
        try:
            upstream = socket.create_connection((host, int(upstream_port)))
        except OSError:
            client.close()
            return
        with upstream, client, contextlib.suppress(OSError):  # (a reset ends the tunnel too)
            client.sendall(b"HTTP/1.1 " + status + b"\r\n\r\n")
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
        no_signals_here()
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=pipe, args=(client,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield listener.getsockname()[1], seen
    finally:
        stopping.set()
        listener.close()


class ApiServer:
    """`with ApiServer(accept) as api:` api.url, api.ca_pem, api.tokens (every token seen)."""

    def __init__(
        self,
        accept: Callable[[str], bool] = is_signed_eks_token,
        reject_status: int = 401,
        trickle: float = 0.0,
        port: int = 0,
        host: str = "127.0.0.1",
    ) -> None:
        self.accept = accept
        self.reject_status = reject_status
        self.trickle = trickle  # seconds between the bytes of an answer: a stalled server
        self.stopping = threading.Event()
        self.tokens: list[str] = []
        self.agents: list[str] = []  # User-Agent of every request
        self.hosts: list[str] = []  # Host header of every request
        self.ca = trustme.CA()
        self._server = ThreadingHTTPServer((host, port), self._handler())
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert(host, "localhost").configure_cert(context)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.url = f"https://{host}:{self._server.server_address[1]}"
        self.ca_pem = self.ca.cert_pem.bytes()
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> ApiServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                auth = self.headers.get("Authorization", "")
                token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else ""
                server.tokens.append(token)
                server.agents.append(self.headers.get("User-Agent", ""))
                server.hosts.append(self.headers.get("Host", ""))
                ok = server.accept(token)  # (a client certificate comes without a token)
                body: dict[str, object] = (
                    dict(VERSION)
                    if ok
                    else {
                        "kind": "Status",
                        "status": "Failure",
                        "code": 401,
                        "reason": "Unauthorized",
                        "message": "Unauthorized",
                    }
                )
                data = json.dumps(body).encode()
                if server.trickle:
                    status = 200 if ok else server.reject_status
                    answer = f"HTTP/1.1 {status} Trickle\r\nContent-Length: 0\r\n\r\n"
                    for byte in answer.encode():
                        if server.stopping.wait(server.trickle):
                            return
                        try:
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                        except OSError:  # the client gave up waiting: that is the point
                            return
                    return
                self.send_response(200 if ok else server.reject_status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass  # keep test output clean

        return Handler


def kubeconfig(
    server: ApiServer,
    command: str,
    args: list[str],
    env: dict[str, str] | None = None,
    provide_cluster_info: bool = False,
) -> str:
    """A kubeconfig (JSON is YAML) with one cluster, one user whose exec runs `command`."""
    exec_section: dict[str, object] = {
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "command": command,
        "args": args,
        "interactiveMode": "Never",
        "provideClusterInfo": provide_cluster_info,
    }
    if env:
        exec_section["env"] = [{"name": name, "value": value} for name, value in env.items()]
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "stub",
            "clusters": [
                {
                    "name": "stub",
                    "cluster": {
                        "server": server.url,
                        "certificate-authority-data": base64.b64encode(server.ca_pem).decode(),
                    },
                }
            ],
            "users": [{"name": "stub", "user": {"exec": exec_section}}],
            "contexts": [{"name": "stub", "context": {"cluster": "stub", "user": "stub"}}],
        },
        indent=2,
    )


def write_aws_throwaway_credentials(home: str) -> None:
    """Clearly fake static keys: enough for `aws eks get-token` to sign locally, no network."""
    import os

    aws = os.path.join(home, ".aws")
    os.makedirs(aws, exist_ok=True)
    with open(os.path.join(aws, "credentials"), "w") as file:
        file.write(
            "# THROWAWAY example keys written by eks-token-shim's tests: not real\n"
            "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\n"
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"
        )
    with open(os.path.join(aws, "config"), "w") as file:
        file.write("[default]\nregion = us-east-1\n")
