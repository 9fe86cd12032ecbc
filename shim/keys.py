"""Cache keys: which requests may share a cached credential.

Pure, and the same function on the hot path and the full CLI, so a
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

# The environment variables that change which identity signs the token, or how:
# two requests that differ in any of them never share an entry.
# Secrets (AWS_SECRET_ACCESS_KEY, AZURE_CLIENT_SECRET...) are left out on purpose:
# the variables that name the identity already tell identities apart. OIDC plugins
# (int128/kubelogin) take issuer and client as arguments, which the key holds.
IDENTITY_ENV_VARS = (
    # AWS: aws eks get-token, aws-iam-authenticator, aws-vault
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
    # Google Cloud: gke-gcloud-auth-plugin and gcloud read the active configuration
    "CLOUDSDK_CONFIG",
    "CLOUDSDK_ACTIVE_CONFIG_NAME",
    "CLOUDSDK_CORE_ACCOUNT",
    "CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT",
    "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE",
    "CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE",
    "GOOGLE_APPLICATION_CREDENTIALS",
    # Azure: Azure/kubelogin and the az CLI it may call
    "AZURE_CONFIG_DIR",
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_AUTHORITY_HOST",
    "AAD_LOGIN_METHOD",
    "AAD_SERVICE_PRINCIPAL_CLIENT_ID",
    "AAD_SERVICE_PRINCIPAL_CLIENT_CERTIFICATE",
    "AAD_USER_PRINCIPAL_NAME",
)
KEY_FORMAT = "eks-token-shim-key/1"


def hexdigest(data: bytes) -> str:
    """The SHA-256 of `data`, in hex."""
    return str(_sha256(data).hexdigest())


def _field(text: str) -> str:
    # Length-prefixed, so that no two different lists of fields join to the same text.
    return f"{len(text)}:{text}"


def cache_key(
    command: Sequence[str],
    api_version: str,
    env: Mapping[str, str],
    extra_env: Sequence[str] = (),
) -> str:
    """A file-name-safe digest of the backend argv, the apiVersion asked for, the identity env
    (IDENTITY_ENV_VARS, then the `extra_env` names that --key-env adds)."""
    fields = [KEY_FORMAT, api_version, str(len(command)), *command]
    for name in (*IDENTITY_ENV_VARS, *extra_env):
        value = env.get(name)
        # An unset variable and an empty one are different identities to the AWS SDKs.
        fields.append(name + ("=" + value if value is not None else "!"))
    text = "".join(_field(field) for field in fields)
    return hexdigest(text.encode("utf-8", "surrogateescape"))
