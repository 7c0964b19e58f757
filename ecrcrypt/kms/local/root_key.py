"""The local KMS's root key: given, generated in memory, or read from a 0600 file (private).

Apart from the service because creating the file is the one place where concurrent
first opens of a store must agree on a secret.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ecrcrypt._keyfile import load_or_create_key_file
from ecrcrypt.errors import KmsInternalError, ValidationError


def load_root_key(path: Path | None, root_key: bytes | None, root_key_file: str | os.PathLike[str] | None) -> bytes:
    if root_key is not None:
        if root_key_file is not None:
            raise ValidationError("give root_key or root_key_file, not both")
        if not isinstance(root_key, bytes) or len(root_key) != 32:
            raise ValidationError("root_key must be 32 bytes (AES-256)")
        return root_key
    if path is None and root_key_file is None:
        return AESGCM.generate_key(bit_length=256)  # in-memory store: lives as long as the process
    file = Path(root_key_file) if root_key_file is not None else Path(f"{path}.rootkey")
    data = load_or_create_key_file(file)
    if data is None:
        raise KmsInternalError(f"the root key file {file} does not hold a 32-byte key")
    return data
