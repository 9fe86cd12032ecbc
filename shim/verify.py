"""Ask the API server whether it still accepts a token: one GET /version.

Used only when the same kubectl process asks again right after we served a
cached token (shim.lookup), and only with the cluster info kubectl passes with
`provideClusterInfo: true`. TLS is verified with the cluster's CA, and
`tls-server-name`, `insecure-skip-tls-verify` and an http:// `proxy-url` are
honoured as kubectl would; without a `proxy-url`, so are `HTTPS_PROXY` and
`NO_PROXY` (or their lower-case spellings), matched as Go's ProxyFromEnvironment
matches them. The token is sent as kubectl sends it (UTF-8, as Go writes a header).
Only a 401 counts as rejected: a 403, a 200, a timeout, a proxy the check cannot
speak (https://, socks5://) or anything unexpected means "serve the cached token as
usual". The whole check, name lookups, connect, TLS handshake and every read, ends by
one deadline: a resolver that never answers or a server that trickles its answer a
byte at a time cannot hold kubectl.
"""

from __future__ import annotations

import base64
import ipaddress
import signal
import socket
import ssl
import threading
from collections.abc import Mapping
from urllib.parse import SplitResult, unquote, urlsplit

from shim.credential import fits_a_header
from shim.deadline import Deadline

TIMEOUT = 2.0  # seconds for the whole check, at most


def _bound(sock: socket.socket, deadline: Deadline) -> socket.socket:
    """`sock`, allowed what is left of `deadline` for its next operation. Once nothing is
    left, a timeout of 0 makes the socket non-blocking: an operation that would wait fails
    at once (an OSError), and that ends the check."""
    sock.settimeout(deadline.left())
    return sock


def rejected(
    cluster: Mapping[str, object],
    token: str,
    deadline: Deadline,
    env: Mapping[str, str] | None = None,
) -> bool:
    """Whether the server at cluster["server"] answers 401 to `token` by `deadline`,
    reached as kubectl would reach it with the environment `env`."""
    if not fits_a_header(token):
        return False  # no header may carry it: kubectl could not send it either
    try:
        status = _status(cluster, token, deadline, env or {})
    except (OSError, ValueError, UnicodeError):
        status = 0
    return status == 401


def proxy_for(server: SplitResult, cluster: Mapping[str, object], env: Mapping[str, str]) -> str:
    """The proxy kubectl uses for the https `server`: the cluster's proxy-url, else
    HTTPS_PROXY (or https_proxy) unless the host is loopback or NO_PROXY (no_proxy)
    names it (golang.org/x/net/http/httpproxy); "" for none."""
    proxy = cluster.get("proxy-url")
    if proxy:
        return str(proxy)
    proxy = env.get("HTTPS_PROXY") or env.get("https_proxy")
    if not proxy or not server.hostname:
        return ""
    if "://" not in proxy:  # Go reads "host:port" as http://host:port
        proxy = "http://" + proxy
    host, port = server.hostname.lower(), str(server.port or 443)
    if host == "localhost":
        return ""
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None and ip.is_loopback:
        return ""
    no_proxy = env.get("NO_PROXY") or env.get("no_proxy") or ""
    return "" if _exempt(host, port, ip, no_proxy) else proxy


def _exempt(
    host: str,
    port: str,
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None,
    no_proxy: str,
) -> bool:
    """Whether an entry of `no_proxy` matches: `*`, an IP or CIDR, a domain and its
    subdomains (`.domain` and `*.domain`: subdomains only), each with an optional port."""
    for entry in (part.strip().lower() for part in no_proxy.split(",")):
        if entry == "*":
            return True
        try:
            if "/" in entry:
                network = ipaddress.ip_network(entry, strict=False)
                if ip is not None and ip in network:
                    return True
                continue
        except ValueError:
            pass
        name, wanted = _split_port(entry)
        if not name:  # (an empty entry, or a port alone: Go ignores it)
            continue
        try:
            named: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(name)
        except ValueError:
            named = None
        if named is not None:
            if named == ip and wanted in ("", port):
                return True
            continue
        if name.startswith("*."):
            name = name[1:]
        suffix = name if name.startswith(".") else "." + name  # (the domain and below)
        if (host.endswith(suffix) or host == name) and wanted in ("", port):
            return True
    return False


def _split_port(entry: str) -> tuple[str, str]:
    """`host:port`, `[v6]:port` or a bare host (a bare IPv6 address has colons too)."""
    if entry.startswith("["):
        name, _, rest = entry[1:].partition("]")
        return name, rest[1:] if rest.startswith(":") else ""
    name, colon, port = entry.rpartition(":")
    if colon and ":" not in name:  # (as Go's SplitHostPort: any port, even "" or "https")
        return name, port
    return entry, ""


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


def _status(
    cluster: Mapping[str, object], token: str, deadline: Deadline, env: Mapping[str, str]
) -> int:
    server = urlsplit(str(cluster.get("server")))  # (None: "None", no scheme)
    if server.scheme != "https" or not server.hostname:
        return 0
    host, port = server.hostname, server.port or 443
    sock = _connect(host, port, proxy_for(server, cluster, env), deadline)
    name = cluster.get("tls-server-name")
    try:
        _bound(sock, deadline)
        tls = _context(cluster).wrap_socket(sock, server_hostname=str(name) if name else host)
    except BaseException:
        sock.close()
        raise
    with tls:
        path = server.path.rstrip("/") + "/version"
        # Go trims a header value's white space at its ends, and writes its bytes: UTF-8.
        authorization = f"Bearer {token}".strip(" \t").encode()
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {_host_header(host, server.port)}\r\n".encode()
            + b"Authorization: "
            + authorization
            + b"\r\nAccept: application/json\r\n"
            + b"User-Agent: eks-token-shim\r\nConnection: close\r\n\r\n"
        )
        _bound(tls, deadline).sendall(request)
        return _read_status(tls, deadline)


def _open(host: str, port: int, deadline: Deadline) -> socket.socket:
    """A TCP connection to host:port, the name lookup included in `deadline`: getaddrinfo
    has no timeout of its own (glibc waits 5 s per try on a resolver that never
    answers), so it runs in a thread nobody waits for past the deadline."""
    found: list[object] = []

    def look_up() -> None:
        # Signals are the main thread's: one delivered here, while the main thread has
        # them blocked (as it does while it starts a backend), would run its handler there.
        signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        try:
            found.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except (OSError, UnicodeError) as error:
            found.append(error)

    lookup = threading.Thread(target=look_up, daemon=True)
    lookup.start()
    lookup.join(deadline.left())
    if not found:
        raise TimeoutError(f"looking up {host} took longer than the check may")
    if isinstance(found[0], BaseException):
        raise found[0]
    error: OSError = OSError(f"no address for {host}")
    for family, kind, protocol, _, address in found[0]:  # type: ignore[attr-defined]
        sock = socket.socket(family, kind, protocol)
        try:
            _bound(sock, deadline).connect(address)
        except OSError as failed:
            sock.close()
            error = failed
            continue
        return sock
    raise error


def _connect(host: str, port: int, proxy_url: str, deadline: Deadline) -> socket.socket:
    if not proxy_url:
        return _open(host, port, deadline)
    proxy = urlsplit(proxy_url)
    if proxy.scheme != "http" or not proxy.hostname:
        raise ValueError("only http:// proxies can be used to verify a token")  # e.g. socks5://
    sock = _open(proxy.hostname, proxy.port or 80, deadline)
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
