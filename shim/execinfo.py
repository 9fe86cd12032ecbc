"""What kubectl tells the plugin in KUBERNETES_EXEC_INFO.

kubectl sets it to a serialized ExecCredential whose apiVersion is the one the
kubeconfig asks for; the answer must carry the same apiVersion, or kubectl fails
("plugin returned version ..."). See client-go plugin/pkg/client/auth/exec/exec.go.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

ENV_VAR = "KUBERNETES_EXEC_INFO"
# What `aws eks get-token` answers when kubectl did not say (awscli get_token.py).
DEFAULT_API_VERSION = "client.authentication.k8s.io/v1beta1"
_SIMPLE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789./-")


def api_version_fast(raw: str) -> str | None:
    """The apiVersion, read without a JSON parser; None when the text is not in the usual form.

    client-go writes `{"kind":"ExecCredential","apiVersion":"...","spec":{...}}`:
    TypeMeta first, so the top-level apiVersion comes before any nested object.
    Anything else (nesting or escapes before it, odd characters in it) is left to JSON.
    """
    head, _, rest = raw.partition('"apiVersion":"')
    # (No match leaves `rest` empty, which the value check below refuses.)
    if not head.startswith("{") or head[-1] not in "{,":
        return None
    # No escapes, no nesting and balanced quotes before it: the match is a top-level key.
    if any(c in head[1:] for c in "{[\\") or head.count('"') % 2:
        return None
    value, quote, _ = rest.partition('"')
    if not quote or not value or not _SIMPLE.issuperset(value):
        return None
    return value


def _parsed(raw: str) -> object:
    """KUBERNETES_EXEC_INFO as JSON; None when it is not JSON, or nested too deep to read."""
    import json

    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


def api_version(raw: str) -> str:
    """The apiVersion kubectl asked for, parsed as JSON; the default when there is none.

    As `aws eks get-token` does, an unreadable value gets a warning and the default.
    """
    info = _parsed(raw)
    value = info.get("apiVersion") if isinstance(info, dict) else None
    if isinstance(value, str) and value:
        return value
    from shim import log

    log.warn(f"{ENV_VAR} holds no readable apiVersion: answering with {DEFAULT_API_VERSION}")
    return DEFAULT_API_VERSION


def requested_api_version_fast(environ: Mapping[str, str]) -> str | None:
    """The apiVersion to answer with, or None when only a JSON parser can tell (the hot path)."""
    raw = environ.get(ENV_VAR)
    return api_version_fast(raw) if raw else DEFAULT_API_VERSION


def requested_api_version(environ: Mapping[str, str]) -> str:
    """The apiVersion to answer with. The fast reading comes first, so both paths agree."""
    raw = environ.get(ENV_VAR)
    if not raw:
        return DEFAULT_API_VERSION
    fast = api_version_fast(raw)
    return fast if fast is not None else api_version(raw)


def cluster_info(environ: Mapping[str, str]) -> dict[str, object] | None:
    """spec.cluster, which kubectl passes with `provideClusterInfo: true`; None without it."""
    info = _parsed(environ.get(ENV_VAR) or "null")
    spec = info.get("spec") if isinstance(info, dict) else None
    cluster = spec.get("cluster") if isinstance(spec, dict) else None
    return cluster if isinstance(cluster, dict) and cluster.get("server") else None
