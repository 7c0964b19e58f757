"""State shared by a registry and its repositories, and the translation of KMS failures (private)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ecrcrypt.arns import AccountId, KeyArn, Region, RepositoryArn, RepositoryName
from ecrcrypt.authz import Decision
from ecrcrypt.config import EncryptionConfiguration, EncryptionType
from ecrcrypt.ecr.audit_events import record_ecr_event
from ecrcrypt.ecr.grant_provider import GrantedClient, GrantPairKeyProvider
from ecrcrypt.ecr.metadata import RepositoryGrant, RepositoryRecord
from ecrcrypt.ecr.metadata_store import MetadataStore
from ecrcrypt.ecr.permissions import EcrAuthorization, RepositoryPolicyCache, decide_ecr, kms_on_behalf
from ecrcrypt.ecr.records import get_tag_mutability
from ecrcrypt.ecr.service_key import SERVICE_KEY_NAMESPACE, ServiceKey
from ecrcrypt.ecr.types import RepositoryDescription
from ecrcrypt.errors import (
    AccessDeniedError,
    DataKeyDecryptionError,
    DisabledError,
    EcrCryptError,
    EcrKmsError,
    KmsError,
    KmsInvalidStateError,
    NotFoundError,
)
from ecrcrypt.keyprovider import KeyProvider
from ecrcrypt.kms import Kms
from ecrcrypt.kms.local.audit import AuditTrail
from ecrcrypt.providers.raw_aes import RawAesKeyProvider
from ecrcrypt.store.protocol import BlobStore

__all__ = ["ECR_ROLE", "GRANT_LABELS", "STORAGE_ROLE", "KmsFactory", "RegistryCore"]

KmsFactory = Callable[[str], Kms]
ECR_ROLE = "ecr"
STORAGE_ROLE = "storage"
#: how errors name each grant
GRANT_LABELS = {ECR_ROLE: "ECR", STORAGE_ROLE: "storage"}


class RegistryCore:
    """Everything a caller-bound :class:`Registry` / :class:`Repository` view shares."""

    def __init__(
        self,
        *,
        account: AccountId,
        region: Region,
        kms_for: KmsFactory,
        store: BlobStore,
        metadata: MetadataStore,
        service_key: ServiceKey,
        audit: AuditTrail | None,
        ecr_principal: str,
        storage_principal: str,
        bucket: str,
        frame_length: int | None,
    ) -> None:
        self.account = account
        self.region = region
        self.kms_for = kms_for
        self.store = store
        self.metadata = metadata
        self.service_key = service_key
        self.audit = audit
        self.ecr_principal = ecr_principal
        self.storage_principal = storage_principal
        self.bucket = bucket
        self.frame_length = frame_length
        self._clients: dict[str, Kms] = {}
        #: resources the registry opened itself (a local KMS), closed with it
        self.closers: list[Callable[[], None]] = []
        #: ``ecr:`` action checks (ecr.permissions); ``None``: open mode, nothing evaluated
        self.authorization: EcrAuthorization | None = None
        self.repository_policies = RepositoryPolicyCache()
        #: (caller, actions, repository) -> the identity policies and repository policy a decision was
        #: made with, and its denial: reused while both are the same compiled objects (see authorize)
        self._decisions: dict[tuple[str, tuple[str, ...], str], tuple[object, object, Decision | None]] = {}

    def authorize(self, caller: str, actions: Sequence[str], repository: str) -> None:
        """Raise ``AccessDeniedError`` (the engine's explanation) unless ``caller`` may take every one of
        ``actions`` on ``repository`` (its identity policies and the repository policy); open mode: nothing."""
        authorization = self.authorization
        if authorization is None:
            return
        policy = self.repository_policies.get(repository, self.metadata.get_repository_policy(repository))
        identity = authorization.identities.identity_policies(caller)
        # Compiled policies are immutable and replaced (new objects) when their text changes, and an
        # ecr: request has no condition keys besides its principal: the same objects decide the same.
        # Every read of a repository asks, so the decision is kept rather than evaluated each time.
        key = (caller, tuple(actions), repository)
        known = self._decisions.get(key)
        if known is not None and known[0] is identity and known[1] is policy:
            denial = known[2]
        else:
            resource = str(self.repository_arn(repository))
            denial = decide_ecr(authorization, caller, actions, resource, policy, identity=identity)
            if len(self._decisions) >= 4096:
                self._decisions.clear()
            self._decisions[key] = (identity, policy, denial)
        if denial is not None:
            raise denial.error()

    def authorize_kms(self, caller: str, action: str, repository: str, key_arn: str | None) -> None:
        """The article's stricter model (``EcrAuthorization.caller_needs_kms``): the caller's own
        ``kms:GenerateDataKey`` (push) or ``kms:Decrypt`` (pull) on a KMS repository's key, through ECR."""
        authorization = self.authorization
        if authorization is None or not authorization.caller_needs_kms or key_arn is None:
            return
        resource = str(self.repository_arn(repository))
        denial = kms_on_behalf(authorization, caller, action, key_arn, resource, str(self.region))
        if denial is not None:
            raise denial.error()

    def client(self, principal: str) -> Kms:
        """One KMS client per principal, created on first use."""
        found = self._clients.get(principal)
        if found is None:
            found = self._clients[principal] = self.kms_for(principal)
        return found

    def principal_for(self, role: str) -> str:
        return self.ecr_principal if role == ECR_ROLE else self.storage_principal

    # -- naming -------------------------------------------------------------------------
    def repository_arn(self, name: str) -> RepositoryArn:
        return RepositoryArn(region=self.region, account=self.account, name=RepositoryName(name))

    def repository_uri(self, name: str) -> str:
        # ECR: repositoryUri = <account>.dkr.ecr.<region>.amazonaws.com/<name>
        return f"{self.account}.dkr.ecr.{self.region}.amazonaws.com/{name}"

    def description(self, record: RepositoryRecord) -> RepositoryDescription:
        etype = EncryptionType(record.encryption_type)
        config = EncryptionConfiguration(encryption_type=etype, kms_key=record.kms_key)
        return RepositoryDescription(
            registry_id=str(self.account),
            repository_name=record.name,
            repository_arn=str(self.repository_arn(record.name)),
            repository_uri=self.repository_uri(record.name),
            created_at=record.created_at,
            encryption_configuration=config,
            image_tag_mutability=get_tag_mutability(self.metadata, record),
        )

    # -- key providers ------------------------------------------------------------------
    def provider_for(self, record: RepositoryRecord) -> KeyProvider:
        """A fresh provider for one object operation (it remembers whose KMS call was refused).

        AES256: the registry's service-managed key. KMS / KMS_DSSE: every data key takes
        a call under the ECR grant *and* one under the storage grant (``ecr.grant_provider``).
        """
        if record.encryption_type == EncryptionType.AES256.value:
            return RawAesKeyProvider(
                key_namespace=SERVICE_KEY_NAMESPACE,
                key_name=f"aes256/{self.account}/{self.region}",
                wrapping_key=self.service_key.material,
            )

        assert record.kms_key is not None
        sides = {}
        for role in (ECR_ROLE, STORAGE_ROLE):
            grant = _grant(record, role)
            principal = self.principal_for(role)
            tokens = (grant.grant_token,) if grant is not None and grant.grant_token else ()
            sides[role] = GrantedClient(role=role, principal=principal, kms=self.client(principal), grant_tokens=tokens)
        return GrantPairKeyProvider(key_arn=record.kms_key, ecr=sides[ECR_ROLE], storage=sides[STORAGE_ROLE])

    @contextmanager
    def kms_errors(self, record: RepositoryRecord, provider: KeyProvider) -> Iterator[None]:
        """Turn a KMS failure on a repository's behalf into ECR's ``KmsException`` naming the cause
        (for a refused call: which grant, from the provider's record of whose call failed)."""
        try:
            yield
        except EcrKmsError:
            raise
        except DataKeyDecryptionError as exc:
            cause = exc.__cause__
            if isinstance(cause, KmsError) and not isinstance(cause, DataKeyDecryptionError):
                raise self._explain(record, _refused(provider), cause) from exc
            raise
        except KmsError as exc:
            raise self._explain(record, _refused(provider), exc) from exc

    def _explain(self, record: RepositoryRecord, role: str | None, exc: KmsError) -> EcrKmsError:
        key = record.kms_key or "?"
        name = record.name
        if isinstance(exc, DisabledError):
            msg = (
                f"KMS key {key} of repository '{name}' is disabled: no push or pull until the key is "
                "re-enabled (EnableKey)"
            )
        elif isinstance(exc, KmsInvalidStateError) and "pending deletion" in str(exc):
            msg = (
                f"KMS key {key} of repository '{name}' is pending deletion: no push or pull; "
                "CancelKeyDeletion (then EnableKey) restores access"
            )
        elif isinstance(exc, NotFoundError):
            msg = (
                f"KMS key {key} of repository '{name}' no longer exists: the repository's data "
                "encrypted under it is unrecoverable"
            )
        elif isinstance(exc, AccessDeniedError):
            msg = self._explain_denied(record, role, exc)
        else:
            msg = f"KMS call for repository '{name}' on key {key} failed: {exc}"
        return EcrKmsError(msg, kms_error=exc.code)

    def _explain_denied(self, record: RepositoryRecord, role: str | None, exc: KmsError) -> str:
        """Name the revoked grant: the refused principal's grant first, then (role unknown) either."""
        key = record.kms_key or "?"
        for r in (role,) if role is not None else (ECR_ROLE, STORAGE_ROLE):
            grant = _grant(record, r)
            if grant is not None and self._grant_state(record, grant) == "missing":
                return (
                    f"the {GRANT_LABELS[r]} grant {grant.grant_id} (grantee {self.principal_for(r)}) of repository "
                    f"'{record.name}' on KMS key {key} was revoked or retired: the repository can no longer be "
                    "pushed to or pulled from; delete it (or migrate from a backup) rather than revoking ECR's grants"
                )
        who = self.principal_for(role) if role is not None else "the registry's service principals"
        label = f" (the {GRANT_LABELS[role]} grant's grantee)" if role is not None else ""
        return f"access to KMS key {key} denied for {who}{label} on behalf of repository '{record.name}': {exc}"

    def _grant_state(self, record: RepositoryRecord, grant: RepositoryGrant | None) -> str:
        """``"present"``, ``"missing"`` or ``"unknown"`` (ListGrants not allowed)."""
        if grant is None or record.kms_key is None:
            return "unknown"
        try:
            found = self.client(self.admin).list_grants(key_id=record.kms_key, grant_id=grant.grant_id)
        except KmsError:
            return "unknown"
        return "present" if any(g.grant_id == grant.grant_id for g in found.grants) else "missing"

    #: the principal used for diagnostics (ListGrants); the registry sets it to its default caller.
    admin: str = ""

    # -- audit ---------------------------------------------------------------------------
    def audit_event(
        self,
        caller: str,
        event_name: str,
        repository_name: str,
        *,
        error: EcrCryptError | None = None,
        **params: Any,
    ) -> None:
        if self.audit is None:
            return

        request = {"repositoryName": repository_name, "registryId": str(self.account)}
        request.update({k: v for k, v in params.items() if v is not None})
        record_ecr_event(
            self.audit,
            caller=caller,
            event_name=event_name,
            region=str(self.region),
            account=str(self.account),
            request_parameters=request,
            resource_arn=str(self.repository_arn(repository_name)),
            error_code=None if error is None else error.code,
            error_message=None if error is None else str(error),
        )


def _refused(provider: KeyProvider) -> str | None:
    refused = getattr(provider, "refused", None)
    return refused if isinstance(refused, str) else None


def _grant(record: RepositoryRecord, role: str) -> RepositoryGrant | None:
    for g in record.grants:
        if g.role == role:
            return g
    return None


def key_region(key_arn: str) -> str:
    return str(KeyArn.parse(key_arn).region)
