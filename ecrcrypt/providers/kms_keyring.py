"""KmsKeyProvider: any :class:`ecrcrypt.kms.Kms` as a :class:`ecrcrypt.keyprovider.KeyProvider`.

It writes the AWS Encryption SDK's ``aws-kms`` encrypted data keys -- provider id
``aws-kms``, provider info the key ARN in UTF-8, ciphertext KMS's
``CiphertextBlob`` -- so messages are readable by an ESDK KMS keyring for the same
key (ESDK spec, aws-kms-keyring.md: "The key provider info MUST be the response
KeyId", which KMS returns as the key ARN).
"""

from __future__ import annotations

from collections.abc import Sequence

from ecrcrypt.arns import AliasArn, AliasName, KeyArn, KeyId, parse_key_reference
from ecrcrypt.context import EncryptionContext
from ecrcrypt.errors import DataKeyDecryptionError, InvalidArnError, InvalidCiphertextError, ValidationError
from ecrcrypt.keyprovider import DataKey, EncryptedDataKey
from ecrcrypt.kms import KeyIdentifier, Kms

__all__ = ["KMS_PROVIDER_ID", "KmsKeyProvider"]

KMS_PROVIDER_ID = "aws-kms"


class KmsKeyProvider:
    """Wrap data keys under one KMS key, through one ``Kms`` client (one identity).

    ``grant_tokens`` are passed on every call (ECR passes the tokens of the
    repository's grants so that a fresh grant is usable at once).

    Error contract (that of :class:`~ecrcrypt.keyprovider.KeyProvider`): errors saying
    the key cannot be used -- ``DisabledError``, ``KmsInvalidStateError``,
    ``AccessDeniedError``, ``NotFoundError`` -- propagate from every method; only
    "no encrypted data key here is ours, or none opens under this context"
    (``InvalidCiphertextError`` / ``IncorrectKeyError`` from Decrypt, EDKs of other
    providers or other keys) becomes ``DataKeyDecryptionError``.
    """

    def __init__(self, kms: Kms, key_id: KeyIdentifier, *, grant_tokens: Sequence[str] = ()) -> None:
        if isinstance(grant_tokens, str):
            raise ValidationError("grant_tokens is a sequence of tokens, not a str")
        if not isinstance(key_id, str | KeyId | KeyArn | AliasName | AliasArn):
            raise ValidationError(f"key_id must be a str or a key reference, not {type(key_id).__name__}")
        self._kms = kms
        self.key_id = str(key_id)
        if not self.key_id:
            raise ValidationError("key_id must not be empty")
        self.grant_tokens = tuple(grant_tokens)
        try:
            ref: object = parse_key_reference(self.key_id)
        except (InvalidArnError, ValidationError):
            ref = None  # left for KMS to judge
        # An alias is followed, not pinned: after UpdateAlias retargets it, new data keys come
        # from the new key and Decrypt (KeyId = the alias) accepts the new key's EDKs -- as a
        # provider built after the change would. A key id or ARN always names one key.
        self._follows_alias = isinstance(ref, AliasName | AliasArn)
        self._arn: str | None = str(ref) if isinstance(ref, KeyArn) else None  # learned from KMS for a key id

    def __repr__(self) -> str:
        return f"KmsKeyProvider(key_id={self.key_id!r}, kms={self._kms!r})"

    def generate_data_key(self, context: EncryptionContext, *, length: int = 32) -> DataKey:
        resp = self._kms.generate_data_key(
            key_id=self.key_id,
            encryption_context=context,
            number_of_bytes=length,
            grant_tokens=self.grant_tokens,
        )
        edks: tuple[EncryptedDataKey, ...] = (self._edk(resp.key_id, resp.ciphertext_blob),)
        # type-ignore: keyprovider.DataKey uses converter=tuple, which mypy cannot type (reported).
        return DataKey(plaintext=resp.plaintext, encrypted_data_keys=edks)

    def encrypt_data_key(self, plaintext_key: bytes, context: EncryptionContext) -> tuple[EncryptedDataKey, ...]:
        resp = self._kms.encrypt(
            key_id=self.key_id,
            plaintext=plaintext_key,
            encryption_context=context,
            grant_tokens=self.grant_tokens,
        )
        return (self._edk(resp.key_id, resp.ciphertext_blob),)

    def decrypt_data_key(self, encrypted_data_keys: Sequence[EncryptedDataKey], context: EncryptionContext) -> bytes:
        tried = 0
        for edk in encrypted_data_keys:
            if edk.provider_id != KMS_PROVIDER_ID:
                continue
            try:
                arn = edk.provider_info.decode("utf-8")
            except UnicodeDecodeError:
                continue
            # ESDK strict KMS keyring: only EDKs whose provider info is this keyring's key.
            if self._arn is not None and arn != self._arn:
                continue
            tried += 1
            try:
                resp = self._kms.decrypt(
                    ciphertext_blob=edk.ciphertext,
                    encryption_context=context,
                    key_id=self.key_id,
                    grant_tokens=self.grant_tokens,
                )
            except InvalidCiphertextError:  # includes IncorrectKeyError: not ours, or not this context
                continue
            # ESDK: "the response KeyId MUST equal the provider info of the encrypted data key".
            if resp.key_id != arn:
                continue
            self._learn(resp.key_id)
            return resp.plaintext
        raise DataKeyDecryptionError(
            f"none of the {len(encrypted_data_keys)} encrypted data keys could be decrypted with KMS key "
            f"{self.key_id} ({tried} tried)"
        )

    def _learn(self, key_arn: str) -> None:
        if not self._follows_alias:
            self._arn = self._arn or key_arn

    def _edk(self, key_arn: str, ciphertext: bytes) -> EncryptedDataKey:
        self._learn(key_arn)
        info = key_arn.encode("utf-8")
        return EncryptedDataKey(provider_id=KMS_PROVIDER_ID, provider_info=info, ciphertext=ciphertext)
