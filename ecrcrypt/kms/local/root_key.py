"""The local KMS's root key: given, generated in memory, or read from a 0600 file (private).

Apart from the service because the file is where a store and its secret must agree:
concurrent first opens agree on one key (``ecrcrypt._keyfile``), and a key file is
created only for a store that holds nothing yet. A missing root key next to a store
that has key material wrapped under it, or a root key whose store went missing or
empty, is refused with an error naming the file: a new root key (or a new empty
store) would make every key of the old one unusable without a word.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ecrcrypt._keyfile import create_key_file, read_key_file
from ecrcrypt.errors import KmsInternalError, ValidationError

ROOT_KEY_BYTES = 32


def root_key_path(path: Path | None, root_key_file: str | os.PathLike[str] | None) -> Path | None:
    """Where the root key of the store at ``path`` lives (``None``: in memory or given as bytes)."""
    if root_key_file is not None:
        return Path(root_key_file)
    return None if path is None else Path(f"{path}.rootkey")


def check_not_orphaned(path: Path | None, key_file: Path | None) -> None:
    """Refuse to start a store at ``path`` (missing or empty) next to an existing root key file:
    that key belongs to a store that was lost. Checked before anything is created."""
    if path is None or key_file is None or not key_file.exists():
        return
    try:
        empty = path.stat().st_size == 0
    except FileNotFoundError:
        empty = True
    if empty:
        raise KmsInternalError(
            f"the KMS store {path} is missing or empty but its root key file {key_file} exists: the store "
            "was lost; restore it from backup (to start a new store, move the root key file away first)"
        )


def load_root_key(
    path: Path | None,
    root_key: bytes | None,
    root_key_file: str | os.PathLike[str] | None,
    *,
    store_initialized: bool = False,
) -> bytes:
    """The root key of the store at ``path`` (``store_initialized``: the store records a root-key
    check value, so material may be wrapped under the key; a key file appearing next to a new
    store is a concurrent first open's, and is used)."""
    if root_key is not None:
        if root_key_file is not None:
            raise ValidationError("give root_key or root_key_file, not both")
        if not isinstance(root_key, bytes) or len(root_key) != ROOT_KEY_BYTES:
            raise ValidationError("root_key must be 32 bytes (AES-256)")
        return root_key
    file = root_key_path(path, root_key_file)
    if file is None:
        return AESGCM.generate_key(bit_length=256)  # in-memory store: lives as long as the process
    try:
        data = read_key_file(file)
    except FileNotFoundError:
        if store_initialized:
            raise KmsInternalError(
                f"the root key file {file} is missing, and the KMS store {path} holds key material wrapped "
                "under it: restore the root key file from backup (ecrcrypt never creates a new root key for "
                "an existing store)"
            ) from None
        data = create_key_file(file, ROOT_KEY_BYTES)  # a new store, or one whose creation was interrupted
    except OSError as exc:
        raise KmsInternalError(f"the root key file {file} cannot be read ({exc.strerror or exc})") from None
    if len(data) != ROOT_KEY_BYTES:
        raise KmsInternalError(
            f"the root key file {file} is damaged or truncated ({len(data)} bytes; a root key is "
            f"{ROOT_KEY_BYTES}): restore it from backup"
        )
    return data
