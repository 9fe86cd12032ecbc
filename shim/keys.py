"""Cache keys: which requests may share a cached credential, and which files name the
identity an entry was fetched under.

The key is pure, and the same function on the hot path and the full CLI, so a
credential cached by a miss is found by the next hit. Identities also live in files
(the AWS config and credentials files, gcloud's active configuration, the Azure
CLI's profile, and any --key-file): an entry records their state when it was
fetched, and is served only while a `stat` of each still says the same.
A cache hit imports this module: shim.main states the import diet it keeps.
"""

from __future__ import annotations

import os

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
KEY_FORMAT = "eks-token-shim-key/2"


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
    watched: Sequence[str] = (),
) -> str:
    """A file-name-safe digest of the backend argv, the apiVersion asked for, the identity env
    (IDENTITY_ENV_VARS, then the `extra_env` names that --key-env adds), and the paths of
    the identity files (`watched`: identity_files, then the --key-file paths)."""
    fields = [KEY_FORMAT, api_version, str(len(command)), *command]
    for name in (*IDENTITY_ENV_VARS, *extra_env):
        value = env.get(name)
        # An unset variable and an empty one are different identities to the AWS SDKs.
        fields.append(name + ("=" + value if value is not None else "!"))
    fields += [str(len(watched)), *watched]
    text = "".join(_field(field) for field in fields)
    return hexdigest(text.encode("utf-8", "surrogateescape"))


def expand_path(path: str, env: Mapping[str, str]) -> str:
    """`path` as a program run with `env` opens it: `~` is env's HOME, a relative path is
    taken from the current directory (which kubectl gives its plugins)."""
    home = env.get("HOME")
    if home and (path == "~" or path.startswith("~/")):
        path = home + path[1:]
    else:
        path = os.path.expanduser(path)
    try:
        return os.path.abspath(path)
    except OSError:  # the current directory is gone: the path names nothing anyone can open
        return path


def identity_files(env: Mapping[str, str], key_files: Sequence[str] = ()) -> tuple[str, ...]:
    """The files whose content says which identity a backend run with `env` signs as, as
    that backend finds them, then `key_files` (--key-file): the AWS shared config and
    credentials files; gcloud's active configuration name, and its properties when the
    environment names the configuration (else identity_files_now adds them); the Azure
    CLI's profile and cloud. An empty variable names no file."""
    gcloud = env.get("CLOUDSDK_CONFIG", "~/.config/gcloud")
    azure = env.get("AZURE_CONFIG_DIR", "~/.azure")
    named = env.get("CLOUDSDK_ACTIVE_CONFIG_NAME")
    paths = [
        env.get("AWS_CONFIG_FILE", "~/.aws/config"),
        env.get("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials"),
        gcloud and gcloud + "/active_config",
        gcloud and named and gcloud + "/configurations/config_" + named,
        azure and azure + "/azureProfile.json",
        azure and azure + "/clouds.config",
        *key_files,
    ]
    return tuple(expand_path(path, env) for path in paths if path)


def identity_files_now(env: Mapping[str, str], watched: Sequence[str]) -> tuple[str, ...]:
    """`watched` (identity_files), and the properties of gcloud's active configuration when
    only the file `active_config` names it: read now, before the backend runs (a hit only
    compares the states of the files an entry recorded, and never reads one)."""
    gcloud = env.get("CLOUDSDK_CONFIG", "~/.config/gcloud")
    if not gcloud or env.get("CLOUDSDK_ACTIVE_CONFIG_NAME"):
        return tuple(watched)
    active = expand_path(gcloud + "/active_config", env)
    try:
        with open(active, "rb") as file:
            name = file.read(256).decode("utf-8", "replace").strip()
    except OSError:  # (no such file: gcloud uses "default")
        name = ""
    name = name or "default"
    if "/" in name or name.startswith("."):  # not a name gcloud makes: no file of its own
        return tuple(watched)
    return (*watched, os.path.join(os.path.dirname(active), "configurations", "config_" + name))


def file_state(path: str) -> str:
    """What a `stat` of `path` says, in a form that changes whenever its content may have:
    device, inode, size, mtime and ctime; "-" when nothing is there."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return "-"
    except OSError as error:  # (a file we may not read: its state is that error)
        return f"!{error.errno}"
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"


def fingerprint(paths: Sequence[str]) -> bytes:
    """The digest of the state of each of `paths`, in order."""
    text = "".join(_field(path) + _field(file_state(path)) for path in paths)
    return hexdigest(text.encode("utf-8", "surrogateescape")).encode("ascii")
