"""YAML files edited in place for `shim kubeconfig`: kubeconfig and kuberc files.

ruamel.yaml's round-trip mode keeps users' comments, key order and quoting; it is
imported only here, and only when a file must be parsed (it costs ~30 ms). Files are
written atomically with their mode kept, and synced: they cannot be fetched again.
"""

from __future__ import annotations

import io
import os
from typing import Any

from shim.errors import ShimError
from shim.files import replace_file

BACKUP_SUFFIX = ".eks-token-shim.bak"


class YamlError(ShimError):
    """A file that is not YAML; `reason` says where and what, as the parser put it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def round_trip_yaml() -> Any:
    """ruamel.yaml in round-trip mode, set up to give back what it read byte for byte."""
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold a long token, certificate or path
    return yaml


def parse(text: str | bytes) -> Any:
    """The document in `text` as round-trip nodes (None for an empty one); YamlError when
    it is not YAML."""
    from ruamel.yaml.error import YAMLError

    try:
        return round_trip_yaml().load(text)
    except YAMLError as error:  # the base of all of ruamel.yaml's errors
        message = str(error).strip()
        raise YamlError(message.splitlines()[0] if message else "") from None
    except RecursionError:  # the parser recurses into nested collections
        raise YamlError("nested too deeply") from None


def load(path: str) -> Any:
    """The document in the file at `path`; OSError when it cannot be read, YamlError when
    it is not UTF-8 YAML."""
    with open(path, "rb") as file:
        data = file.read()
    try:
        return parse(data.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise YamlError(str(error)) from None


def dump(document: Any) -> bytes:
    """`document` as the bytes of a file."""
    text = io.StringIO()
    round_trip_yaml().dump(document, text)
    return text.getvalue().encode("utf-8")


def write(path: str, document: Any, backup: bool) -> None:
    """Replace the file behind `path` (following a symlink) with `document`, keeping its mode;
    with `backup`, first keep the file as it was in `<file>.eks-token-shim.bak` unless a
    backup is there already (the state before the first edit)."""
    target = os.path.realpath(path)
    mode = os.stat(target).st_mode & 0o7777  # kubeconfigs hold secrets: never wider
    if backup and not os.path.exists(target + BACKUP_SUFFIX):
        with open(target, "rb") as original:
            replace_file(target + BACKUP_SUFFIX, original.read(), mode, durable=True)
    replace_file(target, dump(document), mode, durable=True)
