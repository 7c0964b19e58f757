"""The local KMS's ciphertext blob and key-material wrapping (private).

Blob layout (all integers big-endian)::

    version     u8      = 1
    key id      16      the key's UUID, raw bytes
    material    u32     backing-key version (0 = created, +1 per rotation)
    nonce       12      random
    ciphertext  n+16    AES-256-GCM ciphertext and tag

The AAD is the 21-byte header, the key ARN (length-prefixed) and the canonical
serialized encryption context, so that a blob opens only under its own key, its own
material version and exactly its own context (KMS: the encryption context is
"a case-sensitive exact match"). The blob says which key and which material
opened it, as KMS's does ("KMS puts key metadata in the blob"), so Decrypt
needs no KeyId.
"""

from __future__ import annotations

import os
import struct

import attrs
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ecrcrypt.errors import InvalidCiphertextError, KmsInternalError

BLOB_VERSION = 1
_HEADER = struct.Struct(">B16sI")
_NONCE = 12
NONCE_SIZE = _NONCE
_TAG = 16
HEADER_SIZE = _HEADER.size
# Smallest well-formed blob: header, nonce, one plaintext byte, tag.
MIN_BLOB = HEADER_SIZE + _NONCE + 1 + _TAG
# KMS CiphertextType: at most 6144 bytes.
MAX_BLOB = 6144
MATERIAL_BYTES = 32

_INVALID = "The ciphertext is invalid, or the encryption context does not match."
_MATERIAL_AAD = b"ecrcrypt/local-kms/key-material/v1\x00"


@attrs.frozen(kw_only=True)
class ParsedBlob:
    key_id: str
    version: int
    header: bytes = attrs.field(repr=False)
    nonce: bytes = attrs.field(repr=False)
    sealed: bytes = attrs.field(repr=False)


def aad(header: bytes, key_arn: str, context: bytes) -> bytes:
    """The AAD of a blob with ``header``: the header, the key ARN, the context bytes."""
    arn = key_arn.encode()
    return b"".join((header, struct.pack(">H", len(arn)), arn, context))


def header(key_id: str, version: int) -> bytes:
    """The blob header naming ``key_id`` (a UUID's text) and its material ``version``."""
    return _HEADER.pack(BLOB_VERSION, bytes.fromhex(key_id.replace("-", "")), version)


def seal(aead: AESGCM, *, key_id: str, version: int, key_arn: str, plaintext: bytes, context: bytes) -> bytes:
    head = header(key_id, version)
    nonce = os.urandom(_NONCE)
    return b"".join((head, nonce, aead.encrypt(nonce, plaintext, aad(head, key_arn, context))))


def parse(blob: object) -> ParsedBlob:
    """Split a blob into its parts; anything malformed is ``InvalidCiphertextError``."""
    if not isinstance(blob, bytes | bytearray | memoryview):
        raise InvalidCiphertextError(_INVALID)
    data = bytes(blob)
    if not MIN_BLOB <= len(data) <= MAX_BLOB:
        raise InvalidCiphertextError(_INVALID)
    version, raw_id, material = _HEADER.unpack_from(data)
    if version != BLOB_VERSION:
        raise InvalidCiphertextError(_INVALID)
    h = raw_id.hex()
    key_id = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"  # the UUID's canonical text
    return ParsedBlob(
        key_id=key_id,
        version=material,
        header=data[:HEADER_SIZE],
        nonce=data[HEADER_SIZE : HEADER_SIZE + _NONCE],
        sealed=data[HEADER_SIZE + _NONCE :],
    )


def open_blob(aead: AESGCM, parsed: ParsedBlob, *, key_arn: str, context: bytes) -> bytes:
    try:
        return aead.decrypt(parsed.nonce, parsed.sealed, aad(parsed.header, key_arn, context))
    except InvalidTag:
        raise InvalidCiphertextError(_INVALID) from None


def new_material() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def wrap_material(root: AESGCM, *, key_id: str, version: int, material: bytes) -> bytes:
    """Key material at rest: AES-GCM under the root key, bound to key id and version."""
    nonce = os.urandom(_NONCE)
    aad = _MATERIAL_AAD + key_id.encode() + struct.pack(">I", version)
    return nonce + root.encrypt(nonce, material, aad)


def unwrap_material(root: AESGCM, *, key_id: str, version: int, wrapped: bytes) -> bytes:
    aad = _MATERIAL_AAD + key_id.encode() + struct.pack(">I", version)
    try:
        return root.decrypt(wrapped[:_NONCE], wrapped[_NONCE:], aad)
    except (InvalidTag, ValueError):
        # The store was opened with another root key, or the row was altered.
        raise KmsInternalError(f"key material of key {key_id} does not open under this root key") from None
