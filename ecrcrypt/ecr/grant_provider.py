"""The data keys of a KMS repository: every one needs both of the repository's grants (private).

ECR's data flow (kms-ecr-semantics §3.4; the seed): the ECR service principal makes
the data-key calls for every layer and manifest under the ECR grant ("a push calls
GenerateDataKey per image layer and manifest", "a pull calls Decrypt with the same
EC"), and the storage service only ever *receives* decrypted data keys ("AWS KMS
decrypts the encrypted data key and sends the decrypted data key to Amazon S3").
Modelled as two calls per data key, one per grant:

* **new key** (push): ECR ``GenerateDataKeyWithoutPlaintext`` under the ECR grant --
  ECR never holds the plaintext (ECR's guide links that operation's page) -- then
  storage ``Decrypt`` of that encrypted data key under the storage grant, which is
  how the storage side receives the plaintext it encrypts the object with;
* **existing key** (pull): ECR ``Decrypt`` under the ECR grant -- ECR's documented
  pull call, which authorizes the read; its plaintext is discarded, because in the
  model the storage side does not receive it from ECR but fetches it itself --
  then storage ``Decrypt`` under the storage grant;
* **re-bound key** (body-first upload, digest known last): ECR ``ReEncrypt`` of the
  provisional encrypted data key to the final context (ECR grant: ReEncryptFrom /
  ReEncryptTo), then storage ``Decrypt`` of the result, which also proves the final
  header opens to the key the body was encrypted with.

So revoking either grant stops every object operation of the repository, and the
provider remembers whose call KMS refused (:attr:`refused`) so the error can name
the grant.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence
from typing import TypeVar

import attrs

from ecrcrypt.context import EncryptionContext
from ecrcrypt.errors import DataKeyDecryptionError, EcrCryptError, InvalidCiphertextError, KmsError
from ecrcrypt.keyprovider import DataKey, EncryptedDataKey
from ecrcrypt.kms import DecryptResponse, Kms

__all__ = ["GrantedClient", "GrantPairKeyProvider"]

#: ESDK's provider id for KMS-wrapped data keys (kms_keyring.KMS_PROVIDER_ID; ESDK aws-kms-keyring.md).
_KMS_PROVIDER_ID = "aws-kms"
_T = TypeVar("_T")


@attrs.frozen(kw_only=True)
class GrantedClient:
    """One grantee's KMS client and the token of its grant on the repository's key."""

    role: str
    principal: str
    kms: Kms = attrs.field(repr=False)
    grant_tokens: tuple[str, ...] = attrs.field(default=(), repr=False)


class GrantPairKeyProvider:
    """A :class:`~ecrcrypt.keyprovider.KeyProvider` whose every data key takes both grants.

    Error contract (KeyProvider's): a KMS error saying the key or a grant cannot be
    used propagates unchanged, after :attr:`refused` was set to the role (``"ecr"`` or
    ``"storage"``) whose call failed; "no encrypted data key here opens under this
    context" is ``DataKeyDecryptionError``. Plaintext keys never reach a repr or a message.
    """

    def __init__(self, *, key_arn: str, ecr: GrantedClient, storage: GrantedClient) -> None:
        self.key_arn = key_arn
        self.ecr = ecr
        self.storage = storage
        #: the role whose KMS call was refused last (``None`` while nothing failed)
        self.refused: str | None = None

    def __repr__(self) -> str:
        return f"GrantPairKeyProvider(key_arn={self.key_arn!r}, ecr={self.ecr!r}, storage={self.storage!r})"

    def _call(self, side: GrantedClient, call: Callable[[], _T]) -> _T:
        try:
            return call()
        except KmsError:
            self.refused = side.role
            raise

    def _edk(self, key_arn: str, ciphertext: bytes) -> EncryptedDataKey:
        return EncryptedDataKey(provider_id=_KMS_PROVIDER_ID, provider_info=key_arn.encode(), ciphertext=ciphertext)

    def _decrypt(self, side: GrantedClient, edk: EncryptedDataKey, context: EncryptionContext) -> DecryptResponse:
        return self._call(
            side,
            lambda: side.kms.decrypt(
                ciphertext_blob=edk.ciphertext,
                encryption_context=context,
                key_id=self.key_arn,
                grant_tokens=side.grant_tokens,
            ),
        )

    def _storage_decrypt(self, edk: EncryptedDataKey, context: EncryptionContext) -> bytes:
        return self._decrypt(self.storage, edk, context).plaintext

    # -- KeyProvider ----------------------------------------------------------------------
    def generate_data_key(self, context: EncryptionContext, *, length: int = 32) -> DataKey:
        e = self.ecr
        resp = self._call(
            e,
            lambda: e.kms.generate_data_key_without_plaintext(
                key_id=self.key_arn, encryption_context=context, number_of_bytes=length, grant_tokens=e.grant_tokens
            ),
        )
        edk = self._edk(resp.key_id, resp.ciphertext_blob)
        return DataKey(plaintext=self._storage_decrypt(edk, context), encrypted_data_keys=(edk,))

    def decrypt_data_key(self, encrypted_data_keys: Sequence[EncryptedDataKey], context: EncryptionContext) -> bytes:
        tried = 0
        for edk in encrypted_data_keys:
            # ESDK strict KMS keyring: only EDKs whose provider info is this key's ARN.
            if edk.provider_id != _KMS_PROVIDER_ID or edk.provider_info != self.key_arn.encode():
                continue
            tried += 1
            try:
                # ECR's documented pull call; its plaintext is dropped: the storage side fetches its own.
                authorized = self._decrypt(self.ecr, edk, context)
            except InvalidCiphertextError:  # includes IncorrectKeyError: not this key, or not this context
                continue
            # ESDK: "the response KeyId MUST equal the provider info of the encrypted data key".
            if authorized.key_id != self.key_arn:
                continue
            return self._storage_decrypt(edk, context)
        raise DataKeyDecryptionError(
            f"none of the {len(encrypted_data_keys)} encrypted data keys could be decrypted with KMS key "
            f"{self.key_arn} ({tried} tried)"
        )

    def encrypt_data_key(self, plaintext_key: bytes, context: EncryptionContext) -> tuple[EncryptedDataKey, ...]:
        """Refused: neither grantee wraps a plaintext key (see :meth:`rebind_data_key`)."""
        raise EcrCryptError(
            "a repository's data keys are never wrapped from plaintext: ECR re-encrypts the encrypted data key "
            "(rebind_data_key) and the storage side only receives decrypted keys"
        )

    # -- body-first uploads -----------------------------------------------------------------
    def rebind_data_key(
        self, data_key: DataKey, source: EncryptionContext, destination: EncryptionContext
    ) -> tuple[EncryptedDataKey, ...]:
        """The encrypted data key of ``data_key`` (made under ``source``) re-bound to ``destination``.

        ECR ``ReEncrypt`` (ECR grant), then storage ``Decrypt`` of the result (storage
        grant), which must give back the very key the body was encrypted with.
        """
        e = self.ecr
        (edk,) = [k for k in data_key.encrypted_data_keys if k.provider_id == _KMS_PROVIDER_ID]
        resp = self._call(
            e,
            lambda: e.kms.re_encrypt(
                ciphertext_blob=edk.ciphertext,
                source_encryption_context=source,
                source_key_id=self.key_arn,
                destination_key_id=self.key_arn,
                destination_encryption_context=destination,
                grant_tokens=e.grant_tokens,
            ),
        )
        rebound = self._edk(resp.key_id, resp.ciphertext_blob)
        if not hmac.compare_digest(self._storage_decrypt(rebound, destination), data_key.plaintext):
            raise EcrCryptError("ReEncrypt returned an encrypted data key that does not open to the upload's data key")
        return (rebound,)
