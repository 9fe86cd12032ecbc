"""Ask the API server whether it still accepts a token: one GET /version.

Used only when the same kubectl process asks again right after we served a
cached token (shim.lookup), and only with the cluster info kubectl passes with
`provideClusterInfo: true`. TLS is verified with the cluster's CA, and
`tls-server-name`, `insecure-skip-tls-verify` and an http:// `proxy-url` are
honoured as kubectl would. Only a 401 counts as rejected: a 403, a 200, a timeout
or anything unexpected means "serve the cached token as usual". The whole check,
connect, TLS handshake and every read, ends by one deadline: a server that trickles
its answer a byte at a time cannot hold kubectl.
"""

from __future__ import annotations

import base64
import socket
import ssl
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit

from shim.deadline import Deadline

TIMEOUT = 2.0  # seconds for the whole check, at most


def _bound(sock: socket.socket, deadline: Deadline) -> socket.socket:
    """`sock`, allowed what is left of `deadline` for its next operation. Once nothing is
    left, a timeout of 0 makes the socket non-blocking: an operation that would wait fails
    at once (an OSError), and that ends the check."""
    sock.settimeout(deadline.left())
    return sock


def rejected(cluster: Mapping[str, object], token: str, deadline: Deadline) -> bool:
    """Whether the server at cluster["server"] answers 401 to `token` by `deadline`."""
    if not token.isprintable() or " " in token:
        return False  # it could not be sent as a header as it is
    try:
        status = _status(cluster, token, deadline)
    except (OSError, ValueError, UnicodeError):
        status = 0
    return status == 401


def _context(cluster: Mapping[str, object]) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca = cluster.get("certificate-authority-data")
    if cluster.get("insecure-skip-tls-verify") is True:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif isinstance(ca, str) and ca:
        context.load_verify_locations(cadata=base64.b64decode(ca).decode("ascii"))
    return context


def _host_header(host: str, port: int | None) -> str:
    # Never the URL's userinfo (user:password@): only host and port belong in Host.
    name = f"[{host}]" if ":" in host else host
    return f"{name}:{port}" if port else name


def _status(cluster: Mapping[str, object], token: str, deadline: Deadline) -> int:
    server = urlsplit(str(cluster.get("server")))  # (None: "None", no scheme)
    if server.scheme != "https" or not server.hostname:
        return 0
    host, port = server.hostname, server.port or 443
    proxy = cluster.get("proxy-url")
    sock = _connect(host, port, str(proxy) if proxy else "", deadline)
    name = cluster.get("tls-server-name")
    try:
        _bound(sock, deadline)
        tls = _context(cluster).wrap_socket(sock, server_hostname=str(name) if name else host)
    except BaseException:
        sock.close()
        raise
    with tls:
        path = server.path.rstrip("/") + "/version"
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {_host_header(host, server.port)}\r\n"
            f"Authorization: Bearer {token}\r\nAccept: application/json\r\n"
            "User-Agent: eks-token-shim\r\nConnection: close\r\n\r\n"
        )
        _bound(tls, deadline).sendall(request.encode("ascii"))
        return _read_status(tls, deadline)


def _connect(host: str, port: int, proxy_url: str, deadline: Deadline) -> socket.socket:
    left = deadline.left()
    if not proxy_url:
        return socket.create_connection((host, port), timeout=left)
    proxy = urlsplit(proxy_url)
    if proxy.scheme != "http" or not proxy.hostname:
        raise ValueError("only http:// proxies can be used to verify a token")  # e.g. socks5://
    sock = socket.create_connection((proxy.hostname, proxy.port or 80), timeout=left)
    auth = ""
    if proxy.username:
        pair = f"{unquote(proxy.username)}:{unquote(proxy.password or '')}".encode()
        auth = f"Proxy-Authorization: Basic {base64.b64encode(pair).decode()}\r\n"
    target = _host_header(host, port)
    try:
        connect = f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n{auth}\r\n"
        _bound(sock, deadline).sendall(connect.encode())
        if _read_status(sock, deadline) != 200:
            raise ValueError("the proxy refused the tunnel")
    except BaseException:
        sock.close()
        raise
    return sock


def _read_status(sock: socket.socket, deadline: Deadline) -> int:
    """The status code of an HTTP response on `sock`, reading through the end of its head."""
    head = b""
    while b"\r\n\r\n" not in head and len(head) < 65536:
        chunk = _bound(sock, deadline).recv(4096)
        if not chunk:
            break
        head += chunk
    parts = head.split(b"\r\n", 1)[0].split(b" ", 2)  # HTTP/1.1 401 Unauthorized
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
