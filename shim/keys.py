"""Cache keys: which requests may share a cached credential.

Pure, and the same function on the hot path and the full CLI (issue #3), so a
credential cached by a miss is found by the next hit.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

# The builtin module, not hashlib: hashlib loads OpenSSL, about 7 ms on every cache hit.
_sha256: Any
try:
    from _sha256 import sha256 as _sha256  # type: ignore[import-not-found,no-redef,unused-ignore]
except ImportError:  # pragma: no cover - Python >= 3.12 renamed it
    try:
        from _sha2 import sha256 as _sha256  # type: ignore[import-not-found,no-redef,unused-ignore]
    except ImportError:
        from hashlib import sha256 as _sha256

# The environment variables that change which AWS identity signs the token, or
# how: two requests that differ in any of them never share an entry (issue #2).
IDENTITY_ENV_VARS = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_ACCESS_KEY_ID",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_STS_REGIONAL_ENDPOINTS",
    "AWS_VAULT",
)
KEY_FORMAT = "eks-token-shim-key/1"


def hexdigest(data: bytes) -> str:
    """The SHA-256 of `data`, in hex."""
    return str(_sha256(data).hexdigest())


def _field(text: str) -> str:
    # Length-prefixed, so that no two different lists of fields join to the same text.
    return f"{len(text)}:{text}"


def cache_key(command: Sequence[str], api_version: str, env: Mapping[str, str]) -> str:
    """A file-name-safe digest of the backend argv, the apiVersion asked for, the identity env."""
    fields = [KEY_FORMAT, api_version, str(len(command)), *command]
    for name in IDENTITY_ENV_VARS:
        value = env.get(name)
        # An unset variable and an empty one are different identities to the AWS SDKs.
        fields.append(name + ("=" + value if value is not None else "!"))
    text = "".join(_field(field) for field in fields)
    return hexdigest(text.encode("utf-8", "surrogateescape"))
