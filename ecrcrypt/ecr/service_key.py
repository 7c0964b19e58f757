"""The service-managed wrapping key of AES256 repositories.

ECR's AES256 setting is SSE-S3: "Amazon S3-managed encryption keys", no KMS calls
and no grants. ecrcrypt models it with one registry-held AES-256 wrapping key used
through the ESDK raw AES keyring, so that the objects are still ESDK messages with
one data key each. It never reaches a repr or a log, and it is never created in
place of one that went missing: every AES256 object would silently become
undecryptable under a new key.

Where it lives:

* the embedded registry directory: a 0600 file, ``service-key``, made by the
  registry's create path only (:meth:`ServiceKey.create`), read by :meth:`ServiceKey.load`;
* on a server (AWS): in the registry's metadata database, **wrapped under a KMS key**
  (:meth:`ServiceKey.create_wrapped` once, :meth:`ServiceKey.load_wrapped` at every
  start): GenerateDataKey makes it, Decrypt unwraps it, both under an encryption
  context naming the registry, so no plaintext key file sits on the server and the
  key survives a restart with the metadata;
* in memory only (:meth:`ServiceKey.generate`), for tests and throw-away registries.

Its *fingerprint* (an HMAC of a label under the key, ``ecrcrypt._keyfile``) is what the
manifest and the metadata record of it: enough to tell a replaced key, nothing about it.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from ecrcrypt._keyfile import create_key_file, key_fingerprint, read_key_file
from ecrcrypt.ecr.metadata_store import MetadataStore
from ecrcrypt.errors import EcrKmsError, InvalidCiphertextError, KmsError, RegistryStateError, ValidationError
from ecrcrypt.kms import Kms

__all__ = ["SERVICE_KEY_NAMESPACE", "ServiceKey", "service_key_context"]

SERVICE_KEY_NAMESPACE = "ecrcrypt-service-managed"
_KEY_BYTES = 32
_PURPOSE = "service-key"
# Keys of the metadata's registry table.
FINGERPRINT, WRAPPED, WRAPPING_KEY = "service_key.fingerprint", "service_key.wrapped", "service_key.kms_key"


def service_key_context(metadata: MetadataStore) -> dict[str, str]:
    """The KMS encryption context the wrapped service key is bound to: it names the registry.

    A wrapped key copied into another registry's metadata does not open there (KMS
    Decrypt fails on any other context), and CloudTrail shows whose key was unwrapped.
    """
    account, region, store = (metadata.recorded(k) for k in ("account", "region", "store_id"))
    if not (account and region and store):
        raise RegistryStateError(
            f"the registry database {metadata.location} records no registry identity: it was not "
            "made by RegistryMetadata.create (or it was replaced); restore it from backup",
            path=None if metadata.path is None else str(metadata.path),
        )
    return {"ecrcrypt:registry": f"{account}/{region}/{store}", "ecrcrypt:purpose": "aes256-service-key"}


class ServiceKey:
    """A 256-bit wrapping key: loaded from a file or the metadata, created only on purpose."""

    __slots__ = ("_key", "_source")

    def __init__(self, key: bytes, *, path: Path | None = None, source: str | None = None) -> None:
        if not isinstance(key, bytes) or len(key) != _KEY_BYTES:
            raise ValidationError("the service-managed key must be 32 bytes")
        self._key = key
        self._source = str(path) if path is not None else source

    @classmethod
    def generate(cls) -> ServiceKey:
        """A new key held in memory only (lost with the process: tests, throw-away registries)."""
        return cls(os.urandom(_KEY_BYTES))

    # -- a key file (the embedded registry directory) ---------------------------------------
    @classmethod
    def create(cls, path: str | os.PathLike[str]) -> ServiceKey:
        """Create the key file ``path`` (0600); an existing file is loaded, never replaced."""
        target = Path(path)
        create_key_file(target, _KEY_BYTES)
        return cls.load(target)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ServiceKey:
        """The key in ``path``; ``RegistryStateError`` naming the file when it is missing or damaged."""
        target = Path(path)
        try:
            data = read_key_file(target)
        except FileNotFoundError:
            raise RegistryStateError(
                f"the service key file {target} is missing: restore it from backup. Every AES256 object of "
                "the registry is encrypted under it, so ecrcrypt does not make a new one",
                path=str(target),
            ) from None
        except OSError as exc:
            raise RegistryStateError(
                f"the service key file {target} cannot be read ({exc.strerror or exc}): restore it from backup",
                path=str(target),
            ) from None
        if len(data) != _KEY_BYTES:
            raise RegistryStateError(
                f"the service key file {target} is damaged or truncated ({len(data)} bytes; the key is "
                f"{_KEY_BYTES}): restore it from backup",
                path=str(target),
            )
        return cls(data, path=target)

    # -- wrapped under a KMS key, in the metadata (servers) ---------------------------------
    @classmethod
    def create_wrapped(cls, metadata: MetadataStore, kms: Kms, *, key_id: str) -> ServiceKey:
        """Make the registry's service key with KMS GenerateDataKey under ``key_id`` and record
        it, wrapped, in ``metadata``. Idempotent: a key already recorded there is loaded (with
        :meth:`load_wrapped`), never replaced -- concurrent creators agree on the first one."""
        if not isinstance(key_id, str) or not key_id:
            raise ValidationError("key_id must be a KMS key id, key ARN, alias name or alias ARN (a str)")
        if metadata.recorded(WRAPPED) is None:
            if metadata.list_repositories() or metadata.list_intents():
                # Repositories without a key means the key's rows went missing (a restore, a hand
                # edit): a new key would silently stand in for the one their images need.
                raise RegistryStateError(
                    f"the registry database {metadata.location} holds repositories but no KMS-wrapped service "
                    "key: its service key records were lost; restore the database from a backup that has them "
                    "(a new key would not decrypt the AES256 images already stored)",
                    path=None if metadata.path is None else str(metadata.path),
                )
            context = service_key_context(metadata)
            try:
                made = kms.generate_data_key(key_id=key_id, encryption_context=context, number_of_bytes=_KEY_BYTES)
            except KmsError as exc:
                raise EcrKmsError(
                    f"cannot create the registry's service key under KMS key {key_id}: {exc}", kms_error=exc.code
                ) from exc
            ours = base64.b64encode(made.ciphertext_blob).decode()
            # One transaction: a racing creator's records and ours never mix.
            found = metadata.record_once_many(
                {WRAPPING_KEY: made.key_id, WRAPPED: ours, FINGERPRINT: key_fingerprint(made.plaintext, _PURPOSE)}
            )
            if found[WRAPPED] is None:
                raise RegistryStateError(
                    f"the registry database {metadata.location} records a service key kept in a file, "
                    "not one wrapped under KMS: open the registry with that file",
                    path=None if metadata.path is None else str(metadata.path),
                )
            if found[WRAPPED] == ours:
                return cls(made.plaintext, source=f"KMS-wrapped in {metadata.location}")
        return cls.load_wrapped(metadata, kms)

    @classmethod
    def load_wrapped(cls, metadata: MetadataStore, kms: Kms) -> ServiceKey:
        """The service key recorded wrapped in ``metadata``, unwrapped with KMS Decrypt.

        ``RegistryStateError`` when the metadata holds none (not created, or replaced);
        ``EcrKmsError`` (with ``kms_error``) when KMS refuses to unwrap it.
        """
        wrapped, wrapping_key = metadata.recorded(WRAPPED), metadata.recorded(WRAPPING_KEY)
        where = metadata.location
        if wrapped is None or wrapping_key is None:
            raise RegistryStateError(
                f"the registry database {where} holds no KMS-wrapped service key: for a new registry make "
                "one with ServiceKey.create_wrapped; otherwise restore the database from backup",
                path=None if metadata.path is None else str(metadata.path),
            )
        try:
            blob = base64.b64decode(wrapped, validate=True)
        except ValueError:
            raise RegistryStateError(
                f"the wrapped service key recorded in {where} is damaged: restore the database from backup",
                path=None if metadata.path is None else str(metadata.path),
            ) from None
        try:
            opened = kms.decrypt(
                ciphertext_blob=blob, key_id=wrapping_key, encryption_context=service_key_context(metadata)
            )
        except (KmsError, InvalidCiphertextError) as exc:  # KMS answers another context InvalidCiphertextException
            raise EcrKmsError(
                f"cannot unwrap the registry's service key (recorded in {where}) with KMS key {wrapping_key}: {exc}",
                kms_error=exc.code,
            ) from exc
        key = cls(opened.plaintext, source=f"KMS-wrapped in {where}")
        expected = metadata.recorded(FINGERPRINT)
        if expected is not None and expected != key.fingerprint:
            raise RegistryStateError(
                f"the service key unwrapped from {where} is not the one recorded there: restore the database "
                "from backup",
                path=None if metadata.path is None else str(metadata.path),
            )
        return key

    @property
    def material(self) -> bytes:
        return self._key

    @property
    def fingerprint(self) -> str:
        """An identifier of the key that reveals nothing about it (HMAC of a label under the key)."""
        return key_fingerprint(self._key, _PURPOSE)

    def __reduce__(self) -> str | tuple[object, ...]:
        # Pickling would copy the key material into whatever holds the pickle.
        raise TypeError("ServiceKey holds key material and cannot be pickled or copied")

    def __repr__(self) -> str:
        return f"ServiceKey(source={self._source!r})"
