"""Re-wrapping a layer for another repository: a new header, the same encrypted body.

An ESDK v2 body depends only on the data key and the message id (the content key is derived from
those two; a frame's AAD holds the message id, sequence number and length -- not the encryption
context). So moving a layer to a repository with another key -- the re-keying ECR does not offer --
needs only a new header: the data key re-encrypted from the source's key and context to the
target's (KMS ``ReEncrypt`` under both repositories' ECR grants, which never shows the key to the
caller) and a header tag made for the new context. The cost is one header per object, not the bytes.

What it does not give: the data key is the same, so anyone who ever obtained it (a compromised data
key, a leaked plaintext key) can still read the re-wrapped layer; and the message id is the same.
Full re-encryption (the default of :func:`~ecrcrypt.ecr.migration.migrate`) gives fresh keys.

Only single-message layers are re-wrapped (``KMS`` and ``AES256``): a ``KMS_DSSE`` layer's inner
header, which names the repository, is inside the outer body. Nor is an ``AES256`` layer moved to a
``KMS`` repository this way (a KMS repository's keys are never wrapped from plaintext). For those,
:func:`rewrap_layer` returns ``False`` and the caller copies the layer the ordinary way.
"""

from __future__ import annotations

import hmac
import secrets

from ecrcrypt.config import EncryptionType
from ecrcrypt.context import EncryptionContext
from ecrcrypt.digest import Digest
from ecrcrypt.ecr.codec import Written
from ecrcrypt.ecr.grant_provider import GrantPairKeyProvider
from ecrcrypt.ecr.repository import _PUSH_ACTIONS, Repository
from ecrcrypt.errors import EcrCryptError
from ecrcrypt.format.header import parse_header
from ecrcrypt.format.message import DecryptPolicy
from ecrcrypt.keyprovider import EncryptedDataKey, KeyProvider
from ecrcrypt.store.copy import append_object
from ecrcrypt.store.protocol import BlobStore
from ecrcrypt.streams import message_header

__all__ = ["can_rewrap", "rewrap_layer"]

_SINGLE = (EncryptionType.KMS, EncryptionType.AES256)
#: Bytes fetched per ranged read of a header (a header with one KMS data key is well under 1 KiB).
_HEADER_READ = 16 * 1024


def can_rewrap(source: Repository, target: Repository) -> bool:
    if source.encryption_type not in _SINGLE or target.encryption_type not in _SINGLE:
        return False
    return not (source.encryption_type is EncryptionType.AES256 and target.encryption_type is EncryptionType.KMS)


def _rewrapped_keys(
    source_provider: KeyProvider,
    target_provider: KeyProvider,
    edks: tuple[EncryptedDataKey, ...],
    source_context: EncryptionContext,
    target_context: EncryptionContext,
    data_key: bytes,
) -> tuple[EncryptedDataKey, ...]:
    if not isinstance(target_provider, GrantPairKeyProvider):
        # A service-managed (AES256) target wraps the key itself.
        return target_provider.encrypt_data_key(data_key, target_context)
    assert isinstance(source_provider, GrantPairKeyProvider)
    ecr = target_provider.ecr
    (edk,) = [k for k in edks if k.provider_info == source_provider.key_arn.encode()][:1] or [edks[0]]
    resp = target_provider._call(
        ecr,
        lambda: ecr.kms.re_encrypt(
            ciphertext_blob=edk.ciphertext,
            source_encryption_context=source_context,
            source_key_id=source_provider.key_arn,
            destination_key_id=target_provider.key_arn,
            destination_encryption_context=target_context,
            grant_tokens=(*source_provider.ecr.grant_tokens, *ecr.grant_tokens),
        ),
    )
    rebound = (target_provider._edk(resp.key_id, resp.ciphertext_blob),)
    # The storage side must open it to the very key the body was sealed with.
    if not hmac.compare_digest(target_provider.decrypt_data_key(rebound, target_context), data_key):
        raise EcrCryptError("ReEncrypt returned an encrypted data key that does not open to the layer's data key")
    return rebound


class _HeaderReader:
    """Reads the front of an object by ranges: a streaming GET would fetch (or drain) the whole body."""

    def __init__(self, store: BlobStore, key: str) -> None:
        self._store = store
        self._key = key
        self._position = 0
        self._buffer = b""

    def read(self, n: int) -> bytes:
        if len(self._buffer) < n:
            data = self._store.read_range(self._key, self._position, max(n, _HEADER_READ))
            self._position += len(data)
            self._buffer += data
        out, self._buffer = self._buffer[:n], self._buffer[n:]
        return out


def rewrap_layer(source: Repository, target: Repository, digest: Digest) -> bool:
    """Store ``source``'s layer ``digest`` in ``target`` with a new header and the same body; ``False``
    (nothing done) when this layer cannot be re-wrapped and must be copied by re-encryption."""
    if not can_rewrap(source, target):
        return False
    source._require_live()
    target._require_live()
    # The permissions of the pull and the push it replaces.
    source._allow(("ecr:GetDownloadUrlForLayer",), "kms:Decrypt")
    target._allow(_PUSH_ACTIONS, "kms:GenerateDataKey")
    record = source._object("layer", digest)
    policy = DecryptPolicy()
    source_context = source._context("layer", digest)
    target_context = target._context("layer", digest)
    source_provider, target_provider = source._provider(), target._provider()
    store = source._core.store
    # Write-once, as every push: a fresh key per write, announced before it is opened.
    key = f"{target._blob_key('layer', digest)}.{secrets.token_hex(8)}"
    header = parse_header(
        _HeaderReader(store, record.blob_key).read,
        allow_v1=False,
        max_encrypted_data_keys=policy.max_encrypted_data_keys,
        max_header_size=policy.max_header_size,
        max_frame_length=policy.max_frame_length,
    )
    if header.context != source_context:
        return False  # not a layer this registry wrote under this repository: re-encrypt it instead
    with source._guard(source_provider):
        data_key = source_provider.decrypt_data_key(header.encrypted_data_keys, source_context)
    # Authenticates the stored header (the recomputed one must match it byte for byte: same key
    # commitment, same tag) before its body is trusted to belong to this data key.
    expected = message_header(
        data_key=data_key,
        message_id=header.message_id,
        context=source_context,
        encrypted_data_keys=header.encrypted_data_keys,
        frame_length=header.frame_length,
    )
    if not hmac.compare_digest(expected, header.body + header.auth_tag):
        return False
    with target._guard(target_provider):
        edks = _rewrapped_keys(
            source_provider, target_provider, header.encrypted_data_keys, source_context, target_context, data_key
        )
    new_header = message_header(
        data_key=data_key,
        message_id=header.message_id,
        context=target_context,
        encrypted_data_keys=edks,
        frame_length=header.frame_length,
    )
    del data_key
    target._begin_blob(key)
    try:
        with target._core.store.open_write(key) as sink:
            sink.write(new_header)
            # The body as it is: on S3 (same bucket) a server-side copy, elsewhere a plain byte copy.
            body = append_object(sink, store, record.blob_key, header.length)
            sink.commit()
    except BaseException:
        target._drop_blob(key)
        raise
    written = Written(size=record.size, sha256=digest, stored_size=len(new_header) + body, inner_size=None)
    target._record_object("layer", digest, written, key)  # a concurrent push recorded first: it stands
    return True
