"""The local KMS's cryptographic operations, with their hot and full paths (private).

GenerateDataKey and Decrypt are what ECR calls on every push and pull, so each has
a hot path (per-key state from :mod:`ecrcrypt.kms.local.hot_path`, no validation beyond what
its own request needs) that falls back to the full path -- which validates, raises
and audits -- on anything unusual. Encrypt and ReEncrypt take the full path only.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping, Sequence

from cryptography.exceptions import InvalidTag

from ecrcrypt.authz import Reason
from ecrcrypt.context import EncryptionContext
from ecrcrypt.errors import IncorrectKeyError, InvalidCiphertextError, ValidationError
from ecrcrypt.kms import (
    SYMMETRIC_DEFAULT,
    DataKeySpec,
    DecryptResponse,
    EncryptResponse,
    GenerateDataKeyResponse,
    GenerateDataKeyWithoutPlaintextResponse,
    GrantOperation,
    KeyIdentifier,
    KeyState,
    ReEncryptResponse,
)
from ecrcrypt.kms.local import ciphertext as blob
from ecrcrypt.kms.local import hot_path as hot
from ecrcrypt.kms.local.access import Verdict, decide, request_context
from ecrcrypt.kms.local.client import ClientBase
from ecrcrypt.kms.local.events import Call
from ecrcrypt.kms.local.params import (
    MAX_DATA_KEY_BYTES,
    MAX_PLAINTEXT,
    as_context,
    check_tokens,
    data_key_length,
    json_scalar,
    json_text,
)
from ecrcrypt.kms.local.rules import require_usable
from ecrcrypt.kms.local.store import KeyRecord

# KMS GenerateDataKey KeySpec: AES_256 (32 bytes) or AES_128 (16 bytes).
_SPEC_BYTES = {spec.value: spec.number_of_bytes for spec in DataKeySpec}


class CryptoOps(ClientBase):
    """GenerateDataKey (with and without plaintext), Encrypt, Decrypt and ReEncrypt."""

    # -- cryptography -------------------------------------------------------------------
    def _use(self, key_id: KeyIdentifier, op: GrantOperation, ctx: EncryptionContext, call: Call) -> KeyRecord:
        kms = self._kms
        key = kms._resolve(key_id)
        call.arns = (key.arn,)
        self._authorize(key, op.value, context=ctx, pairs=kms._context_info(ctx)[1])
        require_usable(key)
        return key

    def _head(self, key: Hashable, name: str, before: str, after: str) -> tuple[str, str]:
        """The audit JSON around a hot-path request's context, built once per request shape."""
        heads = self._heads
        found = heads.get(key)
        if found is None:
            kms = self._kms
            found = (
                "".join(
                    (
                        '{"eventVersion":"1.08","userIdentity":',
                        self._caller.identity_json,
                        ',"eventSource":"kms.amazonaws.com","eventName":"',
                        name,
                        '","awsRegion":"',
                        kms.region,
                        '","requestParameters":',
                        before,
                    )
                ),
                after + ',"responseElements":null,"readOnly":true',
            )
            if len(heads) >= hot.MAX_ENTRIES:
                heads.clear()
            heads[key] = found
        return found

    def _hot_allowed(self, hk: hot.HotKey, op: GrantOperation, parts: hot.ContextParts) -> bool:
        """The full path's authorization when it allows; ``False`` sends the call to the full path,
        which decides again and raises the denial with its explanation."""
        found = self._verdict(hk.key_id, op.value)
        if found is Verdict.ALLOW:
            return True
        caller = self._caller
        if found is Verdict.PER_CALL:
            # A condition reads the encryption context: ask the engine with this call's context.
            key = self._kms._load_key(hk.key_id)
            if key is None:
                return False
            context = request_context(caller, op.value, dict(parts.pairs))
            decision = decide(self._kms, caller, key, op.value, context)
            if decision.allowed:
                return True
            if decision.reason is Reason.EXPLICIT_DENY:
                return False
        elif found is not Verdict.GRANTS:
            return False  # an explicit deny: the full path raises it
        grants = self._kms._grants_of(hk.key_id)
        if grants.find(caller.principal, op, None, parts.folded(), caller.source_arn) is not None:
            return True
        return caller.parsed.policy_arn != caller.principal and (
            grants.find(caller.parsed.policy_arn, op, None, parts.folded(), caller.source_arn) is not None
        )

    def _context(self, name: str, value: object, key_id: object) -> EncryptionContext:
        """The request's encryption context; a malformed one is refused *and audited* (CloudTrail
        records requests KMS rejects as invalid, with their error code)."""
        try:
            return as_context(value)  # type: ignore[arg-type]
        except ValidationError as exc:
            self._reject(Call(name, {"keyId": key_id if isinstance(key_id, str) else None}, read_only=True), exc)

    def _generate(
        self,
        name: str,
        op: GrantOperation,
        key_id: KeyIdentifier,
        encryption_context: Mapping[str, str] | None,
        number_of_bytes: int | None,
        key_spec: DataKeySpec | str | None,
        grant_tokens: Sequence[str],
    ) -> tuple[bytes, bytes, str]:
        kms = self._kms
        with kms._store.lock:
            kms._refresh()
            if type(key_id) is str:
                hk = kms._hot_refs.get(key_id)
                if hk is not None:
                    out = self._generate_hot(
                        hk, name, op, key_id, encryption_context, number_of_bytes, key_spec, grant_tokens
                    )
                    if out is not None:
                        return out
            return self._generate_slow(name, op, key_id, encryption_context, number_of_bytes, key_spec, grant_tokens)

    def _generate_hot(
        self,
        hk: hot.HotKey,
        name: str,
        op: GrantOperation,
        key_id: str,
        encryption_context: object,
        number_of_bytes: object,
        key_spec: object,
        grant_tokens: object,
    ) -> tuple[bytes, bytes, str] | None:
        """GenerateDataKey on a hot key: the request's own work only; ``None`` sends the
        call through the full path (which validates, raises and audits)."""
        kms = self._kms
        if key_spec is None:
            if type(number_of_bytes) is not int or not 1 <= number_of_bytes <= MAX_DATA_KEY_BYTES:
                return None
            n = number_of_bytes
        elif number_of_bytes is None and type(key_spec) is str:
            n = _SPEC_BYTES.get(key_spec, 0)
            if not n:
                return None
        else:
            return None
        if grant_tokens and not kms._tokens_ok(grant_tokens):
            return None
        parts = kms._contexts.parts(encryption_context)
        if parts is None:
            return None
        t = kms._now()
        if t >= hk.expires or not self._hot_allowed(hk, op, parts):
            return None
        plaintext = os.urandom(n)
        nonce = os.urandom(blob.NONCE_SIZE)
        sealed = hk.header + nonce + hk.aead.encrypt(nonce, plaintext, hk.aad_prefix + parts.serialized)
        shape = (name, key_id, key_spec, number_of_bytes)
        head = self._heads.get(shape)
        if head is None:
            extra = f',"keySpec":{json_text(key_spec)}' if key_spec is not None else f',"numberOfBytes":{n}'
            head = self._head(shape, name, f'{{"keyId":{json_text(key_id)},"encryptionContext":', extra + "}")
        kms._hot_event(head[0] + parts.json + head[1] + hk.resources_tail, hk.column, name, self._caller.principal, t)
        return plaintext, sealed, hk.arn

    def _generate_slow(
        self,
        name: str,
        op: GrantOperation,
        key_id: KeyIdentifier,
        encryption_context: Mapping[str, str] | None,
        number_of_bytes: int | None,
        key_spec: DataKeySpec | str | None,
        grant_tokens: Sequence[str],
    ) -> tuple[bytes, bytes, str]:
        ctx = self._context(name, encryption_context, key_id)
        kms = self._kms
        params = "".join(
            (
                '{"keyId":',
                json_text(key_id if isinstance(key_id, str) else str(key_id)),
                ',"encryptionContext":',
                kms._context_info(ctx)[0],
                "" if key_spec is None else f',"keySpec":{json_text(str(key_spec))}',
                "" if number_of_bytes is None else f',"numberOfBytes":{json_scalar(number_of_bytes)}',
                "}",
            )
        )
        call = Call(name, params, read_only=True)

        def run(call: Call) -> tuple[bytes, bytes, str]:
            epoch = kms._epoch
            n = data_key_length(number_of_bytes, key_spec)
            if grant_tokens:
                check_tokens(grant_tokens)
            key = self._use(key_id, op, ctx, call)
            plaintext = os.urandom(n)
            version = key.current_version
            aead = kms._aead(key, version)
            header = blob.header(key.key_id, version)
            aad = blob.aad(header, key.arn, ctx.serialize())
            nonce = os.urandom(blob.NONCE_SIZE)
            sealed = header + nonce + aead.encrypt(nonce, plaintext, aad)
            if epoch == kms._epoch:  # nothing was dropped during the call: the record is current
                kms._warm(key, key_id)
            return plaintext, sealed, key.arn

        return self._run(call, run, refreshed=True)

    def generate_data_key(
        self,
        *,
        key_id: KeyIdentifier,
        encryption_context: Mapping[str, str] | None = None,
        number_of_bytes: int | None = None,
        key_spec: DataKeySpec | str | None = None,
        grant_tokens: Sequence[str] = (),
    ) -> GenerateDataKeyResponse:
        plaintext, sealed, arn = self._generate(
            "GenerateDataKey",
            GrantOperation.GENERATE_DATA_KEY,
            key_id,
            encryption_context,
            number_of_bytes,
            key_spec,
            grant_tokens,
        )
        return GenerateDataKeyResponse(ciphertext_blob=sealed, plaintext=plaintext, key_id=arn)

    def generate_data_key_without_plaintext(
        self,
        *,
        key_id: KeyIdentifier,
        encryption_context: Mapping[str, str] | None = None,
        number_of_bytes: int | None = None,
        key_spec: DataKeySpec | str | None = None,
        grant_tokens: Sequence[str] = (),
    ) -> GenerateDataKeyWithoutPlaintextResponse:
        _, sealed, arn = self._generate(
            "GenerateDataKeyWithoutPlaintext",
            GrantOperation.GENERATE_DATA_KEY_WITHOUT_PLAINTEXT,
            key_id,
            encryption_context,
            number_of_bytes,
            key_spec,
            grant_tokens,
        )
        return GenerateDataKeyWithoutPlaintextResponse(ciphertext_blob=sealed, key_id=arn)

    def encrypt(
        self,
        *,
        key_id: KeyIdentifier,
        plaintext: bytes,
        encryption_context: Mapping[str, str] | None = None,
        grant_tokens: Sequence[str] = (),
    ) -> EncryptResponse:
        ctx = self._context("Encrypt", encryption_context, key_id)
        call = Call(
            "Encrypt",
            {"keyId": str(key_id), "encryptionContext": ctx.to_dict(), "encryptionAlgorithm": SYMMETRIC_DEFAULT},
            read_only=True,
        )
        kms = self._kms

        def run(call: Call) -> EncryptResponse:
            if not isinstance(plaintext, bytes) or not 1 <= len(plaintext) <= MAX_PLAINTEXT:
                raise ValidationError(f"Plaintext must be 1 to {MAX_PLAINTEXT} bytes")
            check_tokens(grant_tokens)
            key = self._use(key_id, GrantOperation.ENCRYPT, ctx, call)
            version = key.current_version
            sealed = blob.seal(
                kms._aead(key, version),
                key_id=key.key_id,
                version=version,
                key_arn=key.arn,
                plaintext=plaintext,
                context=ctx.serialize(),
            )
            return EncryptResponse(ciphertext_blob=sealed, key_id=key.arn)

        return self._run(call, run)

    def _open(
        self,
        ciphertext_blob: bytes,
        ctx: EncryptionContext,
        key_id: KeyIdentifier | None,
        op: GrantOperation,
        call: Call,
    ) -> tuple[KeyRecord, bytes]:
        kms = self._kms
        if not isinstance(ciphertext_blob, bytes | bytearray | memoryview):
            raise ValidationError(f"CiphertextBlob must be bytes, not {type(ciphertext_blob).__name__}")
        parsed = blob.parse(ciphertext_blob)
        if key_id is not None:
            named = kms._resolve(key_id)
            if named.key_id != parsed.key_id:
                call.arns = (named.arn,)
                # KMS: "The KeyId in a Decrypt request and the SourceKeyId in a ReEncrypt
                # request must identify the same KMS key that was used to encrypt".
                raise IncorrectKeyError(
                    "The key ID in the request does not identify a KMS key that can perform this operation."
                )
        key = kms._load_key(parsed.key_id)
        if key is None:
            tx = kms._store.autocommit()
            if tx.is_deleted(parsed.key_id) is not None or tx.key(parsed.key_id) is not None:
                # A deleted key, or a key of another Region sharing the store.
                raise kms._not_found(parsed.key_id)
            raise InvalidCiphertextError("The ciphertext is invalid, or the encryption context does not match.")
        key = kms._resolve(key.key_id)  # applies the deletion deadline
        call.arns = (key.arn,)
        self._authorize(key, op.value, context=ctx, pairs=kms._context_info(ctx)[1])
        if op is GrantOperation.RE_ENCRYPT_FROM and key.state is KeyState.PENDING_DELETION:
            pass  # KMS key-state table, footnote 10: ReEncrypt from a key pending deletion succeeds
        else:
            require_usable(key)
        if parsed.version > key.current_version:
            raise InvalidCiphertextError("The ciphertext is invalid, or the encryption context does not match.")
        plaintext = blob.open_blob(kms._aead(key, parsed.version), parsed, key_arn=key.arn, context=ctx.serialize())
        return key, plaintext

    def decrypt(
        self,
        *,
        ciphertext_blob: bytes,
        encryption_context: Mapping[str, str] | None = None,
        key_id: KeyIdentifier | None = None,
        grant_tokens: Sequence[str] = (),
    ) -> DecryptResponse:
        kms = self._kms
        with kms._store.lock:
            kms._refresh()
            if type(ciphertext_blob) is bytes and blob.MIN_BLOB <= len(ciphertext_blob) <= blob.MAX_BLOB:
                material = kms._hot_blobs.get(ciphertext_blob[: blob.HEADER_SIZE])
                if material is not None:
                    out = self._decrypt_hot(material, ciphertext_blob, encryption_context, key_id, grant_tokens)
                    if out is not None:
                        return out
            return self._decrypt_slow(ciphertext_blob, encryption_context, key_id, grant_tokens)

    def _decrypt_hot(
        self,
        material: hot.HotMaterial,
        ciphertext_blob: bytes,
        encryption_context: object,
        key_id: object,
        grant_tokens: object,
    ) -> DecryptResponse | None:
        """Decrypt with a hot key's material: ``None`` sends the call through the full path."""
        kms = self._kms
        hk = material.key
        if key_id is not None:
            if type(key_id) is not str:
                return None
            named = kms._hot_refs.get(key_id)
            if named is None or named.key_id != hk.key_id:
                return None  # unknown here, or another key: IncorrectKeyException on the full path
        if grant_tokens and not kms._tokens_ok(grant_tokens):
            return None
        parts = kms._contexts.parts(encryption_context)
        if parts is None:
            return None
        t = kms._now()
        if t >= hk.expires or not self._hot_allowed(hk, GrantOperation.DECRYPT, parts):
            return None
        start = blob.HEADER_SIZE + blob.NONCE_SIZE
        try:
            plaintext = material.aead.decrypt(
                ciphertext_blob[blob.HEADER_SIZE : start],
                ciphertext_blob[start:],
                material.aad_prefix + parts.serialized,
            )
        except InvalidTag:
            return None  # the full path raises InvalidCiphertextError and audits it
        shape = ("Decrypt", key_id)
        head = self._heads.get(shape)
        if head is None:
            after = "}" if key_id is None else f',"keyId":{json_text(str(key_id))}}}'
            head = self._head(
                shape, "Decrypt", '{"encryptionAlgorithm":"SYMMETRIC_DEFAULT","encryptionContext":', after
            )
        kms._hot_event(
            head[0] + parts.json + head[1] + hk.resources_tail, hk.column, "Decrypt", self._caller.principal, t
        )
        return DecryptResponse(key_id=hk.arn, plaintext=plaintext)

    def _decrypt_slow(
        self,
        ciphertext_blob: bytes,
        encryption_context: Mapping[str, str] | None,
        key_id: KeyIdentifier | None,
        grant_tokens: Sequence[str],
    ) -> DecryptResponse:
        ctx = self._context("Decrypt", encryption_context, key_id)
        kms = self._kms
        params = "".join(
            (
                '{"encryptionAlgorithm":"SYMMETRIC_DEFAULT","encryptionContext":',
                kms._context_info(ctx)[0],
                "" if key_id is None else f',"keyId":{json_text(str(key_id))}',
                "}",
            )
        )
        call = Call("Decrypt", params, read_only=True)

        def run(call: Call) -> DecryptResponse:
            epoch = kms._epoch
            if grant_tokens:
                check_tokens(grant_tokens)
            key, plaintext = self._open(ciphertext_blob, ctx, key_id, GrantOperation.DECRYPT, call)
            if epoch == kms._epoch:  # nothing was dropped during the call: the record is current
                parsed = blob.parse(ciphertext_blob)
                kms._warm(key, key_id, parsed.header, parsed.version)
            return DecryptResponse(key_id=key.arn, plaintext=plaintext)

        return self._run(call, run, refreshed=True)

    def re_encrypt(
        self,
        *,
        ciphertext_blob: bytes,
        destination_key_id: KeyIdentifier,
        source_encryption_context: Mapping[str, str] | None = None,
        destination_encryption_context: Mapping[str, str] | None = None,
        source_key_id: KeyIdentifier | None = None,
        grant_tokens: Sequence[str] = (),
    ) -> ReEncryptResponse:
        src_ctx = self._context("ReEncrypt", source_encryption_context, destination_key_id)
        dst_ctx = self._context("ReEncrypt", destination_encryption_context, destination_key_id)
        call = Call(
            "ReEncrypt",
            {
                "sourceKeyId": None if source_key_id is None else str(source_key_id),
                "destinationKeyId": str(destination_key_id),
                "sourceEncryptionContext": src_ctx.to_dict(),
                "destinationEncryptionContext": dst_ctx.to_dict(),
            },
            read_only=True,
        )
        kms = self._kms

        def run(call: Call) -> ReEncryptResponse:
            check_tokens(grant_tokens)
            source, plaintext = self._open(
                ciphertext_blob, src_ctx, source_key_id, GrantOperation.RE_ENCRYPT_FROM, call
            )
            source_arns = call.arns
            dest = self._use(destination_key_id, GrantOperation.RE_ENCRYPT_TO, dst_ctx, call)
            call.arns = (*source_arns, *(a for a in call.arns if a not in source_arns))
            version = dest.current_version
            sealed = blob.seal(
                kms._aead(dest, version),
                key_id=dest.key_id,
                version=version,
                key_arn=dest.arn,
                plaintext=plaintext,
                context=dst_ctx.serialize(),
            )
            return ReEncryptResponse(ciphertext_blob=sealed, source_key_id=source.arn, key_id=dest.arn)

        return self._run(call, run)
