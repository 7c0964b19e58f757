"""An ECR registry (one account + Region): repositories with immutable encryption and their grants.

:class:`Registry` implements CreateRepository, DescribeRepositories and
DeleteRepository with ECR's rules (kms-ecr-semantics.md §3):

* the encryption configuration is fixed at creation -- there is no API to change it;
  "create a new repository and :func:`ecrcrypt.ecr.migration.migrate`";
* a KMS key given as key id, key ARN, alias name or alias ARN is resolved with
  DescribeKey and the repository records the key ARN; no key means the AWS managed
  key ``alias/aws/ecr``, created by KMS on first use;
* creating a KMS repository creates two grants on the key, each constrained to the
  repository (``EncryptionContextSubset {"aws:ecr:arn": <repository ARN>}``, plus its uid): one to
  the ECR service principal, one to the storage service principal; every object's
  data key takes a call under each (``ecr.grant_provider``). Creation is all or nothing;
* deleting retires both grants with the deleting caller's credentials; when that
  fails the repository is deleted anyway and :class:`GrantsNotRetiredError` says so;
* both are crash consistent: each records its intent before its first irreversible
  step, and :meth:`Registry.recover` (run by :meth:`Registry.open`) undoes an interrupted
  creation and finishes an interrupted deletion (``ecr.recovery``). A repository's uid is
  bound into its grants' constraint and its objects' contexts (``ecr.lifecycle``), so no
  grant of an earlier repository of the same name can authorize it.

A registry view is bound to a caller principal (:meth:`Registry.as_caller`): the
identity that calls DescribeKey / CreateGrant / RetireGrant and that the audit trail
records. Service principals' KMS clients come from the ``kms`` factory.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs

from ecrcrypt.arns import AccountId, KeyArn, Region, RepositoryName
from ecrcrypt.config import EncryptionConfiguration
from ecrcrypt.ecr.core import ECR_ROLE, STORAGE_ROLE, KmsFactory, RegistryCore
from ecrcrypt.ecr.crashpoints import crashpoint
from ecrcrypt.ecr.directory import BLOBS, check_caller_identity, create_directory, open_directory
from ecrcrypt.ecr.gc import DEFAULT_GRACE, GarbageReport, collect_garbage
from ecrcrypt.ecr.lifecycle import (
    constrained_arn,
    constrained_uid,
    delete_repository_blobs,
    find_repository_grants,
    grant_constraints,
    planned_grants,
    recovery_ways,
    retirable_key_grants,
    retire_grants,
)
from ecrcrypt.ecr.liveness import ABANDONED, current_owner, owner_alive
from ecrcrypt.ecr.metadata import RegistryMetadata, RepositoryGrant, RepositoryIntent, RepositoryRecord, now
from ecrcrypt.ecr.metadata_store import MetadataStore
from ecrcrypt.ecr.permissions import EcrAuthorization, RepositoryPolicy, check_repository_policy, decide_ecr
from ecrcrypt.ecr.recovery import RecoveryReport, recover, undo_creation
from ecrcrypt.ecr.registry_blobs import check_given_store
from ecrcrypt.ecr.repository import Repository
from ecrcrypt.ecr.service_key import FINGERPRINT as SERVICE_KEY_FINGERPRINT
from ecrcrypt.ecr.service_key import WRAPPED as WRAPPED_SERVICE_KEY
from ecrcrypt.ecr.service_key import ServiceKey
from ecrcrypt.ecr.types import RepositoryDescription
from ecrcrypt.errors import (
    EcrCryptError,
    EcrKmsError,
    GrantsNotRetiredError,
    InvalidParameterError,
    KmsError,
    LimitExceededError,
    RegistryStateError,
    RepositoryAlreadyExistsError,
    RepositoryNotEmptyError,
    RepositoryNotFoundError,
    RepositoryPolicyNotFoundError,
    ValidationError,
)
from ecrcrypt.kms import GrantListEntry, GrantOperation, KeyMetadata, KeyState, Kms, SupportsViaService
from ecrcrypt.kms.local.audit import AuditTrail
from ecrcrypt.store.filesystem import FilesystemBlobStore
from ecrcrypt.store.protocol import BlobStore

__all__ = [
    "AWS_MANAGED_ECR_ALIAS",
    "DEFAULT_ACCOUNT",
    "DEFAULT_REGION",
    "ECR_GRANT_OPERATIONS",
    "STORAGE_GRANT_OPERATIONS",
    "Registry",
    "find_repository_grants",
]

DEFAULT_ACCOUNT = "111122223333"
DEFAULT_REGION = "us-east-1"
# ECR: "If no key is specified, the default AWS managed KMS key for Amazon ECR will be used".
AWS_MANAGED_ECR_ALIAS = "alias/aws/ecr"
# ECR's documented grant: operations ["GenerateDataKey", "Decrypt"] (CloudTrail sample, kms-ecr-semantics §6).
# ECR makes every object's data-key call under it: GenerateDataKeyWithoutPlaintext on push (the page
# ECR's guide links: ECR itself never holds the plaintext), Decrypt on pull, and ReEncrypt (From + To)
# to re-bind a body-first upload's key to the final context. GenerateDataKey stays as documented.
ECR_GRANT_OPERATIONS = (
    GrantOperation.GENERATE_DATA_KEY,
    GrantOperation.GENERATE_DATA_KEY_WITHOUT_PLAINTEXT,
    GrantOperation.DECRYPT,
    GrantOperation.RE_ENCRYPT_FROM,
    GrantOperation.RE_ENCRYPT_TO,
)
# The second grant is undocumented. The storage service only *receives* decrypted data keys (seed:
# "AWS KMS decrypts the encrypted data key and sends the decrypted data key to Amazon S3"), modelled as
# its own Decrypt of the encrypted data key ECR made: Decrypt is all it needs.
STORAGE_GRANT_OPERATIONS = (GrantOperation.DECRYPT,)
_log = logging.getLogger(__name__)
_MAX_DESCRIBE_NAMES = 100  # ECR DescribeRepositories: repositoryNames 1-100
_DEFAULT_PAGE, _MAX_PAGE = 100, 1000  # ECR DescribeRepositories: maxResults 1-1000, default 100


def _note_grants_left(error: BaseException, key_arn: str, grant_ids: tuple[str, ...]) -> None:
    """Attach the ids of grants a failed CreateRepository could not undo to its error
    (as an exception note: the error keeps its type and message)."""
    if grant_ids:
        error.add_note(
            f"grants not retired on {key_arn} (retire or revoke them by hand): grant ids {', '.join(grant_ids)}"
        )


class Registry:
    """A registry: repositories of one account in one Region, bound to one caller."""

    def __init__(
        self,
        *,
        kms: KmsFactory,
        store: BlobStore,
        account: AccountId | str = DEFAULT_ACCOUNT,
        region: Region | str = DEFAULT_REGION,
        metadata: MetadataStore | None = None,
        service_key: ServiceKey | None = None,
        audit: AuditTrail | None = None,
        caller: str | None = None,
        ecr_principal: str | None = None,
        storage_principal: str | None = None,
        bucket: str | None = None,
        frame_length: int | None = None,
        authorization: EcrAuthorization | None = None,
    ) -> None:
        acct = account if isinstance(account, AccountId) else AccountId(account)
        reg = region if isinstance(region, Region) else Region(region)
        if metadata is None:
            metadata = RegistryMetadata()
        metadata.check_identity(account=str(acct), region=str(reg))
        default_caller = caller or f"arn:{reg.partition}:iam::{acct}:root"
        service_key = _service_key(metadata, service_key, lambda: kms(default_caller))
        core = RegistryCore(
            account=acct,
            region=reg,
            kms_for=kms,
            store=store,
            metadata=metadata,
            service_key=service_key,
            audit=audit,
            # ECR's grantee and retiring principal: "ecr.<region>.amazonaws.com" (CloudTrail sample).
            ecr_principal=ecr_principal or f"ecr.{reg}.amazonaws.com",
            # Registry configuration: on AWS the storage side would be an IAM role (issue 5).
            storage_principal=storage_principal or f"s3.{reg}.amazonaws.com",
            # ECR's objects live in "<region>-starport-layer-bucket"-style buckets it manages.
            bucket=bucket or f"{reg}-ecrcrypt-layer-bucket",
            frame_length=frame_length,
        )
        self._caller = default_caller
        core.admin = self._caller
        # ecr: actions are evaluated with ``authorization`` (ecr.permissions); without it, open mode.
        core.authorization = authorization
        self._core = core

    @classmethod
    def create(
        cls,
        directory: str | os.PathLike[str],
        *,
        account: AccountId | str = DEFAULT_ACCOUNT,
        region: Region | str = DEFAULT_REGION,
        kms: KmsFactory | None = None,
        audit: AuditTrail | None = None,
        caller: str | None = None,
        frame_length: int | None = None,
        authorization: EcrAuthorization | None = None,
        open_mode: bool = False,
        store: BlobStore | None = None,
        metadata: str | MetadataStore | None = None,
    ) -> Registry:
        """Create the embedded registry in ``directory`` (missing or empty), then open it.

        The only way a registry directory, its keys and its databases come to exist.
        Idempotent: on a healthy registry of the same account and Region it just opens it
        (so ``create`` at every start is safe); a damaged one is refused as by :meth:`open`,
        and a non-empty folder without a manifest is refused, never filled. With ``kms``
        (a factory for an outside KMS) no local KMS is made. See ``ecr.directory``.
        ``metadata`` (a URL, ``postgresql://…`` or ``sqlite:///…``, or a :class:`MetadataStore`) keeps
        the registry's metadata and its wrapped service key there instead of in ``directory``: made
        if missing, then given to every :meth:`open` (``ecr.metadata_url``, docs/deploy.md).
        """
        root = _directory(directory)
        create_directory(root, account=account, region=region, local_kms=kms is None, metadata=metadata)
        return cls.open(
            root,
            kms=kms,
            account=account,
            region=region,
            audit=audit,
            caller=caller,
            frame_length=frame_length,
            authorization=authorization,
            open_mode=open_mode,
            store=store,
            metadata=metadata,
        )

    @classmethod
    def open(
        cls,
        directory: str | os.PathLike[str],
        *,
        kms: KmsFactory | None = None,
        account: AccountId | str | None = None,
        region: Region | str | None = None,
        audit: AuditTrail | None = None,
        caller: str | None = None,
        frame_length: int | None = None,
        authorization: EcrAuthorization | None = None,
        open_mode: bool = False,
        create: bool = False,
        store: BlobStore | None = None,
        metadata: str | MetadataStore | None = None,
    ) -> Registry:
        """Open the embedded registry in ``directory``: blobs, metadata, service key (and a local KMS).

        Layout (``ecr.directory``): ``manifest.json``, ``blobs/`` (FilesystemBlobStore),
        ``registry.sqlite3``, ``service-key`` and, for a registry created without a ``kms``
        factory, ``kms.sqlite3`` (+ ``.rootkey``) for a :class:`~ecrcrypt.kms.local.service.LocalKms`
        whose audit trail the registry shares. Never creates anything: a missing, empty,
        truncated, damaged or replaced file is refused with ``RegistryStateError`` naming
        it -- restore it from backup. ``create=True`` is :meth:`create` (kept for callers
        that relied on ``open`` creating a new registry).
        With that local KMS, ``ecr:`` actions are evaluated against its IAM (AWS's
        semantics) unless ``open_mode``; with a ``kms`` factory, only when ``authorization``
        says where identity policies come from.
        ``store`` replaces ``blobs/`` (e.g. an S3BlobStore; everything else stays in ``directory``).
        ``metadata``: the URL (or store) of the outside metadata the registry was created with; it
        is opened, never created, and must be that registry's (``RegistryStateError`` otherwise).
        """
        if create:
            return cls.create(
                directory,
                account=DEFAULT_ACCOUNT if account is None else account,
                region=DEFAULT_REGION if region is None else region,
                kms=kms,
                audit=audit,
                caller=caller,
                frame_length=frame_length,
                authorization=authorization,
                open_mode=open_mode,
                store=store,
                metadata=metadata,
            )
        root = _directory(directory)
        opened = open_directory(root, open_local_kms=kms is None, metadata=metadata)
        try:
            check_given_store(root, opened.metadata, store)  # the store the registry records, if it records one
            manifest = opened.manifest
            check_caller_identity(manifest, account=account, region=region)
            if kms is None:
                if opened.local_kms is None:
                    raise ValidationError(f"the registry in {root} was created with an outside KMS: give kms=")
                kms = opened.local_kms.client
                if audit is None:
                    audit = opened.local_kms.audit
            registry = cls(
                kms=kms,
                store=store if store is not None else FilesystemBlobStore(root / BLOBS),
                account=manifest.account,
                region=manifest.region,
                metadata=opened.metadata,
                service_key=opened.service_key,
                audit=audit,
                caller=caller,
                frame_length=frame_length,
                authorization=None if open_mode else _default_authorization(authorization, opened.local_kms),
            )
            registry.recover()  # finish or undo what a killed process left half done
        except BaseException:
            # Nothing opened here may outlive a failed open (SQLite connections, the KMS checkpointer).
            opened.close()
            raise
        if opened.local_kms is not None:
            registry._core.closers.append(opened.local_kms.close)
        return registry

    def __repr__(self) -> str:
        return f"Registry(account={self.account!r}, region={self.region!r}, caller={self._caller!r})"

    # -- identity ------------------------------------------------------------------------
    @property
    def metadata_location(self) -> str:
        """Where the registry's metadata is: a path, ``:memory:`` or a URL without its password."""
        return self._core.metadata.location

    @property
    def account(self) -> str:
        return str(self._core.account)

    @property
    def region(self) -> str:
        return str(self._core.region)

    @property
    def registry_id(self) -> str:
        # ECR: the registry id is the account id.
        return str(self._core.account)

    @property
    def caller(self) -> str:
        return self._caller

    @property
    def ecr_principal(self) -> str:
        return self._core.ecr_principal

    @property
    def storage_principal(self) -> str:
        return self._core.storage_principal

    @property
    def store(self) -> BlobStore:
        return self._core.store

    @property
    def audit(self) -> AuditTrail | None:
        return self._core.audit

    def as_caller(self, principal: str) -> Registry:
        """The same registry, acting for ``principal`` (its KMS client comes from the factory)."""
        if not isinstance(principal, str) or not principal:
            raise ValidationError(f"principal must be a non-empty str, not {type(principal).__name__}")
        return Registry._from_core(self._core, principal)

    @classmethod
    def of(cls, repository: Repository) -> Registry:
        """The registry ``repository`` belongs to, bound to the same caller (used by :func:`migrate`)."""
        return cls._from_core(repository._core, repository.caller)

    @classmethod
    def _from_core(cls, core: RegistryCore, caller: str) -> Registry:
        view = object.__new__(cls)
        view._core = core
        view._caller = caller
        return view

    @contextmanager
    def _audited(self, event_name: str, repository_name: str, **params: Any) -> Iterator[None]:
        try:
            yield
        except EcrCryptError as exc:
            self._core.audit_event(self._caller, event_name, repository_name, error=exc, **params)
            raise
        self._core.audit_event(self._caller, event_name, repository_name, **params)

    def kms(self) -> Kms:
        """The caller's KMS client."""
        return self._core.client(self._caller)

    def _on_behalf(self) -> Kms:
        """The caller's KMS client for the calls ECR makes on its behalf (``kms:ViaService``).

        ECR's DescribeKey and CreateGrant at CreateRepository and its RetireGrant at
        DeleteRepository are the caller's requests made through ECR: a key policy that
        confines a key to ECR (``kms:ViaService = ecr.<region>.amazonaws.com``), such as
        the AWS managed key's, allows them. A client that cannot say so is used as is.
        """
        kms = self.kms()
        if isinstance(kms, SupportsViaService):
            return kms.via_service(f"ecr.{self.region}.amazonaws.com")
        return kms

    def close(self) -> None:
        """Close the metadata database (and the local KMS :meth:`open` created)."""
        self._core.metadata.close()
        for close in self._core.closers:
            close()
        self._core.closers.clear()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- CreateRepository --------------------------------------------------------------
    def create_repository(
        self,
        repository_name: str,
        *,
        encryption_configuration: EncryptionConfiguration | Mapping[str, Any] | None = None,
    ) -> RepositoryDescription:
        """CreateRepository. All or nothing: on any failure no repository and no grant remain.

        Raises ``InvalidParameterError`` for a bad name or configuration,
        ``RepositoryAlreadyExistsError``, and ``EcrKmsError`` (with ``kms_error``) when the
        key is missing, in another Region, disabled, pending deletion, or its grant quota
        is exhausted.
        """
        name = _repository_name(repository_name)
        config = _configuration(encryption_configuration)
        with self._audited("CreateRepository", name, encryptionConfiguration=config.to_api()):
            self._core.authorize(self._caller, ("ecr:CreateRepository",), name)
            return self._create(name, config)

    def _create(self, name: str, config: EncryptionConfiguration) -> RepositoryDescription:
        """Intent, leftover grants retired, grants, record -- in that order, each step recoverable.

        The intent (uid, key, grant names) is durable before the first CreateGrant, so a
        process killed anywhere after it leaves what :meth:`recover` needs to find and
        retire the grants; the repository row replaces the intent in one transaction.
        """
        core = self._core
        if core.metadata.get_repository(name) is not None:
            raise RepositoryAlreadyExistsError(_exists_message(name, self.registry_id))
        key_arn = self._resolve_key(config) if config.uses_kms else None
        uid = uuid.uuid4().hex
        owner = current_owner()
        intent = RepositoryIntent(
            operation="create",
            uid=uid,
            name=name,
            encryption_type=config.encryption_type.value,
            kms_key=key_arn,
            grants=planned_grants(core, uid) if key_arn is not None else (),
            owner=owner,
            started_at=now(),
        )
        self._begin_create(intent)
        crashpoint("create:intent")
        made: list[RepositoryGrant] = []
        try:
            if key_arn is not None:
                self._retire_leftovers(key_arn, name)
                crashpoint("create:leftovers")
                self._create_grants(key_arn, name, intent, made)
            record = RepositoryRecord(
                name=name,
                uid=uid,
                created_at=now(),
                encryption_type=config.encryption_type.value,
                kms_key=key_arn,
                grants=tuple(made),
                binds_uid=True,
            )
            if not core.metadata.finish_create(record, owner):
                raise EcrCryptError(
                    f"the creation of repository '{name}' was undone by a recovery that took this process for "
                    "dead; create it again"
                )
        except BaseException as exc:
            left = self._undo_grants(key_arn, tuple(made)) if key_arn is not None else ()
            # The failure is what the caller must see: the undo never replaces it. A grant the
            # undo could not retire stays under the intent, abandoned: the next recovery retries.
            if key_arn is not None:
                _note_grants_left(exc, key_arn, left)
            if left:
                core.metadata.claim_intent(uid, owner, ABANDONED)
            else:
                core.metadata.end_intent(uid, owner)
            raise
        crashpoint("create:recorded")
        _log.info(
            "created repository %s (%s%s, grants %s)",
            core.repository_arn(name),
            config.encryption_type.value,
            f" with {key_arn}" if key_arn else "",
            ", ".join(g.grant_id for g in made) or "none",
        )
        return core.description(record)

    def _begin_create(self, intent: RepositoryIntent) -> None:
        """Record the creation intent, or raise ``RepositoryAlreadyExistsError`` when the name is held.

        A creation of the same name begun by a process that died is undone first (it never
        returned a repository to anyone); one a live process is running holds the name.
        """
        for _ in range(2):
            held = self._core.metadata.begin_create(intent)
            if held is None:
                return
            if isinstance(held, RepositoryIntent):
                alive = owner_alive(held.owner, age=now() - held.started_at, grace=DEFAULT_GRACE)
                if not alive and undo_creation(self._core, self._caller, held):
                    continue
                raise RepositoryAlreadyExistsError(
                    f"{_exists_message(intent.name, self.registry_id)} (its creation is in progress)"
                )
            break
        raise RepositoryAlreadyExistsError(_exists_message(intent.name, self.registry_id))

    def _retire_leftovers(self, key_arn: str, name: str) -> None:
        """Retire grants on the key still constrained to this repository ARN (ECR's or the storage
        grantee): no repository of this name exists and this creation holds the name, so each is
        an orphan of an earlier repository or one a deletion in progress is retiring anyway.

        A leftover bound to another uid cannot authorize the new repository (its contexts carry
        its own uid): if it resists retirement, :meth:`recover` tries again later. A leftover
        constrained to the ARN alone (made before uids were bound) would authorize it, so
        creation fails closed when such a grant cannot be retired -- or when they cannot be
        listed and none can be ruled out. ECR lists them as itself (ListRetirableGrants: every
        grant ECR made names it as the retiring principal), so the caller needs no kms:ListGrants
        beyond what the user guide asks for.
        """
        arn = str(self._core.repository_arn(name))
        grantees = {self._core.ecr_principal, self._core.storage_principal}
        try:
            found = [
                g
                for g in retirable_key_grants(
                    self._core.client(self._core.ecr_principal), self._core.ecr_principal, key_arn
                )
                if constrained_arn(g) == arn and g.grantee_principal in grantees
            ]
        except KmsError as exc:
            raise EcrKmsError(
                f"cannot create repository '{name}': ListRetirableGrants for {self._core.ecr_principal} failed "
                f"({exc}), so grants on {key_arn} left by an earlier repository of this name cannot be ruled out",
                kms_error=exc.code,
            ) from exc
        outcome = retire_grants(key_arn, (g.grant_id for g in found), recovery_ways(self._core, self._caller))
        unbound = sorted(g.grant_id for g in found if constrained_uid(g) is None and g.grant_id in outcome.left)
        if unbound:
            raise EcrKmsError(
                f"cannot create repository '{name}': grants {', '.join(unbound)} on {key_arn} of an earlier "
                f"repository of this name would authorize it and could not be retired ({outcome.error}); "
                "revoke them (RevokeGrant) and create the repository again",
                kms_error=outcome.error,
            )

    def _resolve_key(self, config: EncryptionConfiguration) -> str:
        ref = AWS_MANAGED_ECR_ALIAS if config.kms_key is None else str(config.kms_key)
        # ECR calls DescribeKey "to validate and retrieve the ARN of the KMS key" (user guide).
        try:
            meta = self._on_behalf().describe_key(key_id=ref)
        except KmsError as exc:
            raise EcrKmsError(f"KMS key {ref!r} cannot be used for encryption: {exc}", kms_error=exc.code) from exc
        _check_usable(meta, ref, self.region)
        return meta.arn

    def _create_grants(self, key_arn: str, name: str, intent: RepositoryIntent, made: list[RepositoryGrant]) -> None:
        """CreateGrant for each grant the intent names, appending each to ``made`` as it exists."""
        kms = self._on_behalf()
        constraints = grant_constraints(self._core.repository_arn(name), intent.uid)
        operations = {ECR_ROLE: ECR_GRANT_OPERATIONS, STORAGE_ROLE: STORAGE_GRANT_OPERATIONS}
        for planned in intent.grants:
            try:
                resp = kms.create_grant(
                    key_id=key_arn,
                    grantee_principal=planned.grantee,
                    operations=operations[planned.role],
                    # ECR's grants name ecr.<region>.amazonaws.com as the retiring principal.
                    retiring_principal=self._core.ecr_principal,
                    constraints=constraints,
                    # The name makes a retry idempotent and lets recovery find the grant.
                    name=planned.name,
                )
            except KmsError as exc:
                if isinstance(exc, LimitExceededError):
                    raise EcrKmsError(
                        f"cannot create repository '{name}': KMS key {key_arn} has reached its grant quota "
                        f"({exc}); each KMS repository holds two grants on its key (one per grantee), so "
                        "with 500 grants per grantee a key encrypts at most 500 repositories. Delete a "
                        "repository on this key or use another key",
                        kms_error=exc.code,
                    ) from exc
                raise EcrKmsError(
                    f"cannot create repository '{name}': CreateGrant on {key_arn} failed: {exc}",
                    kms_error=exc.code,
                ) from exc
            made.append(attrs.evolve(planned, grant_id=resp.grant_id, grant_token=resp.grant_token))
            crashpoint("create:grant")

    def _undo_grants(self, key_arn: str, grants: tuple[RepositoryGrant, ...]) -> tuple[str, ...]:
        """Retire the grants a failed CreateRepository made; the ids of those left.

        Never raises a KMS error: it runs while another error is on its way to the
        caller, and that error, not the undo's, says what went wrong.
        """
        # ECR's own client first (the caller may lack kms:RetireGrant), see lifecycle.recovery_ways.
        ways = recovery_ways(self._core, self._caller)
        return retire_grants(key_arn, (g.grant_id for g in grants), ways).left

    # -- DescribeRepositories ------------------------------------------------------------
    def describe_repositories(self, repository_names: Sequence[str] | None = None) -> list[RepositoryDescription]:
        """All repositories, or the named ones (``RepositoryNotFoundError`` if one is missing)."""
        if repository_names is None:
            records = self._core.metadata.list_repositories()
        elif isinstance(repository_names, str) or not 1 <= len(repository_names) <= _MAX_DESCRIBE_NAMES:
            raise InvalidParameterError(f"repositoryNames must be a list of 1 to {_MAX_DESCRIBE_NAMES} names")
        else:
            records = [self._record(n) for n in repository_names]
        for record in records:
            self._core.authorize(self._caller, ("ecr:DescribeRepositories",), record.name)
        return [self._core.description(r) for r in records]

    def describe_repositories_page(
        self, *, max_results: int = _DEFAULT_PAGE, next_token: str | None = None
    ) -> tuple[list[RepositoryDescription], str | None]:
        """DescribeRepositories with ``maxResults`` (1-1000, default 100) and ``nextToken``.

        The token is opaque to callers (it is the last name of the previous page); an
        unknown token is an ``InvalidParameterError``.
        """
        if not isinstance(max_results, int) or not 1 <= max_results <= _MAX_PAGE:
            raise InvalidParameterError(f"maxResults must be between 1 and {_MAX_PAGE}")
        records = self._core.metadata.list_repositories()
        start = 0
        if next_token is not None:
            names = [r.name for r in records]
            if next_token not in names:
                raise InvalidParameterError("Invalid parameter at 'nextToken': not a token from a previous call")
            start = names.index(next_token) + 1
        page = records[start : start + max_results]
        for record in page:
            self._core.authorize(self._caller, ("ecr:DescribeRepositories",), record.name)
        token = page[-1].name if page and start + max_results < len(records) else None
        return [self._core.description(r) for r in page], token

    def repository(self, repository_name: str) -> Repository:
        """The repository, bound to this registry view's caller."""
        return Repository(self._core, self._record(repository_name), self._caller)

    def _record(self, repository_name: str) -> RepositoryRecord:
        name = _repository_name(repository_name)
        rec = self._core.metadata.get_repository(name)
        if rec is None:
            raise RepositoryNotFoundError(
                f"The repository with name '{name}' does not exist in the registry with id '{self.registry_id}'"
            )
        return rec

    # -- DeleteRepository ----------------------------------------------------------------
    def delete_repository(self, repository_name: str, *, force: bool = False) -> RepositoryDescription:
        """DeleteRepository: objects (with ``force``), metadata, then both grants retired.

        Raises ``RepositoryNotEmptyError`` for a repository with images or layers
        unless ``force``. Retirement uses the *caller's* KMS client (ECR: "the IAM
        principal that deletes the repository must have the kms:RetireGrant
        permission"); when it fails the repository is still deleted and
        :class:`GrantsNotRetiredError` is raised with ECR's exact message.
        """
        name = _repository_name(repository_name)
        if not isinstance(force, bool):
            raise InvalidParameterError(f"Invalid parameter at 'force': a bool, not {type(force).__name__}")
        with self._audited("DeleteRepository", name, force=force):
            self._core.authorize(self._caller, ("ecr:DeleteRepository",), name)
            return self._delete(name, force=force)

    def _delete(self, repository_name: str, *, force: bool) -> RepositoryDescription:
        """Row removed with the intent recorded (one transaction), blobs, grants, intent removed.

        From the first transaction on the repository is gone for every caller; a process
        killed after it leaves the intent, and :meth:`recover` finishes the deletion.
        """
        core = self._core
        rec = self._record(repository_name)
        if core.metadata.count_objects(rec.name) and not force:
            raise RepositoryNotEmptyError(
                f"The repository with name '{rec.name}' in registry with id '{self.registry_id}' cannot be "
                "deleted because it still contains images"
            )
        description = core.description(rec)
        blobs = {o.blob_key for kind in ("layer", "manifest") for o in core.metadata.list_objects(rec.name, kind)}
        owner = current_owner()
        if not core.metadata.begin_delete(rec, RepositoryIntent.deleting(rec, owner=owner, started_at=now())):
            raise RepositoryNotFoundError(
                f"The repository with name '{rec.name}' does not exist in the registry with id '{self.registry_id}'"
            )
        crashpoint("delete:intent")
        try:
            delete_repository_blobs(core, rec.uid, blobs)
            crashpoint("delete:blobs")
            outcome = None
            if rec.kms_key is not None and rec.grants:
                # The deleting caller's credentials (ECR: "the IAM principal that deletes the repository
                # must have the kms:RetireGrant permission").
                grant_ids = (g.grant_id for g in rec.grants)
                outcome = retire_grants(rec.kms_key, grant_ids, (self._on_behalf().retire_grant,), missing_ok=False)
        except BaseException:
            core.metadata.claim_intent(rec.uid, owner, ABANDONED)  # the next recovery finishes it
            raise
        if outcome is not None and outcome.left:
            # Kept, abandoned: the next recovery retires them with ECR's own client.
            core.metadata.claim_intent(rec.uid, owner, ABANDONED)
            _log.warning(
                "deleted repository %s but could not retire grants %s on %s (%s)",
                rec.name,
                ", ".join(outcome.left),
                rec.kms_key,
                outcome.error,
            )
            # ECR's exact message; the KMS error (e.g. the denial naming kms:RetireGrant) is its cause.
            raise GrantsNotRetiredError(
                repository_name=rec.name, kms_key=rec.kms_key or "", grant_ids=outcome.left, kms_error=outcome.error
            ) from outcome.cause
        core.metadata.end_intent(rec.uid, owner)
        crashpoint("delete:done")
        _log.info("deleted repository %s (%d objects removed)", rec.name, len(blobs))
        return description

    # -- repository policies -------------------------------------------------------------
    def set_repository_policy(self, repository_name: str, policy_text: str, *, force: bool = False) -> RepositoryPolicy:
        """SetRepositoryPolicy: ``InvalidParameterError`` for a policy ECR would refuse.

        Without ``force``, a policy that would stop the caller from setting another one is
        refused (ECR: "If the policy you specify will prevent you from setting another
        policy in the future, you must force the SetRepositoryPolicy operation").
        """
        with self._audited("SetRepositoryPolicy", str(repository_name), force=force):
            return self._set_policy(repository_name, policy_text, force=force)

    def _set_policy(self, repository_name: str, policy_text: str, *, force: bool) -> RepositoryPolicy:
        rec = self._record(repository_name)
        self._core.authorize(self._caller, ("ecr:SetRepositoryPolicy",), rec.name)
        compiled = check_repository_policy(policy_text)
        if not force and self._core.authorization is not None:
            resource = str(self._core.repository_arn(rec.name))
            denial = decide_ecr(
                self._core.authorization, self._caller, ("ecr:SetRepositoryPolicy",), resource, compiled
            )
            if denial is not None:
                raise InvalidParameterError(
                    "Invalid parameter at 'PolicyText': the policy would prevent you from setting another policy in "
                    f"the future ({denial.explanation}); use force to set it anyway"
                )
        if not self._core.metadata.set_repository_policy(rec.name, policy_text):
            raise RepositoryNotFoundError(self._not_found_message(rec.name))
        return RepositoryPolicy(registry_id=self.registry_id, repository_name=rec.name, policy_text=policy_text)

    def get_repository_policy(self, repository_name: str) -> RepositoryPolicy:
        """GetRepositoryPolicy: ``RepositoryPolicyNotFoundError`` when the repository has none."""
        with self._audited("GetRepositoryPolicy", str(repository_name)):
            return self._get_policy(repository_name)

    def _get_policy(self, repository_name: str) -> RepositoryPolicy:
        rec = self._record(repository_name)
        self._core.authorize(self._caller, ("ecr:GetRepositoryPolicy",), rec.name)
        text = self._core.metadata.get_repository_policy(rec.name)
        if text is None:
            raise RepositoryPolicyNotFoundError(self._no_policy_message(rec.name))
        return RepositoryPolicy(registry_id=self.registry_id, repository_name=rec.name, policy_text=text)

    def delete_repository_policy(self, repository_name: str) -> RepositoryPolicy:
        """DeleteRepositoryPolicy: the policy that was deleted; ``RepositoryPolicyNotFoundError`` when none."""
        with self._audited("DeleteRepositoryPolicy", str(repository_name)):
            return self._delete_policy(repository_name)

    def _delete_policy(self, repository_name: str) -> RepositoryPolicy:
        rec = self._record(repository_name)
        self._core.authorize(self._caller, ("ecr:DeleteRepositoryPolicy",), rec.name)
        text = self._core.metadata.get_repository_policy(rec.name)
        if text is None or not self._core.metadata.delete_repository_policy(rec.name):
            raise RepositoryPolicyNotFoundError(self._no_policy_message(rec.name))
        return RepositoryPolicy(registry_id=self.registry_id, repository_name=rec.name, policy_text=text)

    def _not_found_message(self, name: str) -> str:
        return f"The repository with name '{name}' does not exist in the registry with id '{self.registry_id}'"

    def _no_policy_message(self, name: str) -> str:
        return (
            f"Repository policy does not exist for the repository with name '{name}' "
            f"in the registry with id '{self.registry_id}'"
        )

    def list_repository_grants(self, repository_name: str) -> list[GrantListEntry]:
        """The grants on the repository's key constrained to it (ListGrants, caller's client)."""
        rec = self._record(repository_name)
        if rec.kms_key is None:
            return []
        return find_repository_grants(self.kms(), rec.kms_key, self._core.repository_arn(rec.name))

    # -- recovery and garbage collection ----------------------------------------------------
    def recover(self, *, grace: float = DEFAULT_GRACE) -> RecoveryReport:
        """Undo interrupted creations, finish interrupted deletions, retire orphan grants and
        collect unreferenced blobs, with the caller's KMS client; report what was done.

        :meth:`open` runs it. Safe at any time and idempotent: work a live process is doing
        (its intent's owner runs on this host, or on another host for less than ``grace``
        seconds) is left alone and reported as ``in_progress``. KMS failures do not raise:
        they are in ``errors``, and what they left undone is retried by the next recovery.
        """
        return recover(self._core, self._caller, grace=grace)

    def collect_garbage(self, *, grace: float = DEFAULT_GRACE, unknown_repositories: bool = False) -> GarbageReport:
        """Delete the blobs of this registry's repositories that no record references (``ecr.gc``).

        A blob a live push is writing or has committed but not yet recorded is kept.
        ``unknown_repositories=True`` also deletes blobs of repositories this registry has
        no trace of, under the account's prefix: only for a store no other registry uses.
        """
        return collect_garbage(self._core, grace=grace, unknown_repositories=unknown_repositories)


def _default_authorization(given: EcrAuthorization | None, local: Any) -> EcrAuthorization | None:
    """``Registry.open``'s ``ecr:`` checks: as given, or against the local KMS's IAM when it opened one."""
    if given is not None or local is None:
        return given
    return EcrAuthorization(identities=local)


def _service_key(metadata: MetadataStore, given: ServiceKey | None, kms: Callable[[], Kms]) -> ServiceKey:
    """The AES256 service key a registry over ``metadata`` uses.

    A database file records the key it goes with: a given key must be that one (its
    fingerprint is recorded on first use), and with no key given the KMS-wrapped key
    recorded there is unwrapped. Only an in-memory registry may make a key of its own.
    """
    if given is None:
        if metadata.recorded(WRAPPED_SERVICE_KEY) is not None:
            return ServiceKey.load_wrapped(metadata, kms())
        if metadata.persistent:
            raise RegistryStateError(
                f"the registry database {metadata.location} records no KMS-wrapped service key and none was given: "
                "for a new registry make one with ServiceKey.create_wrapped(metadata, kms, key_id=...) "
                "(docs/aws.md); otherwise restore the database from backup",
                path=None if metadata.path is None else str(metadata.path),
            )
        given = ServiceKey.generate()
    recorded = metadata.record_once(SERVICE_KEY_FINGERPRINT, given.fingerprint)
    if recorded != given.fingerprint:
        raise RegistryStateError(
            f"the service key given ({given!r}) is not the one the registry database "
            f"{metadata.location} was used with: every AES256 object is encrypted under that one; "
            "restore the right key (or database) from backup",
            path=None if metadata.path is None else str(metadata.path),
        )
    return given


def _directory(value: str | os.PathLike[str]) -> Path:
    if not isinstance(value, str | os.PathLike) or not str(value):
        raise ValidationError(f"directory must be a path (str or os.PathLike), not {type(value).__name__}")
    return Path(value)


def _repository_name(name: str) -> str:
    try:
        return RepositoryName(name).value
    except ValidationError as exc:
        # ECR answers a name outside its pattern with InvalidParameterException.
        raise InvalidParameterError(f"Invalid parameter at 'repositoryName': {exc}") from None


def _configuration(value: EncryptionConfiguration | Mapping[str, Any] | None) -> EncryptionConfiguration:
    if value is None or isinstance(value, EncryptionConfiguration):
        return value or EncryptionConfiguration()
    if not isinstance(value, Mapping):
        raise InvalidParameterError(
            f"Invalid parameter at 'encryptionConfiguration': a mapping or EncryptionConfiguration, not "
            f"{type(value).__name__}"
        )
    try:
        return EncryptionConfiguration.from_api(value)
    except InvalidParameterError:
        raise
    except ValidationError as exc:
        raise InvalidParameterError(f"Invalid parameter at 'encryptionConfiguration': {exc}") from None


def _exists_message(name: str, registry_id: str) -> str:
    return f"The repository with name '{name}' already exists in the registry with id '{registry_id}'"


def _check_usable(meta: KeyMetadata, ref: str, region: str) -> None:
    arn = KeyArn.parse(meta.arn)
    if str(arn.region) != region:
        # ECR: "The key must exist in the same Region as the repository." ECR's regional KMS
        # client cannot see a key of another Region, so KMS answers NotFoundException.
        raise EcrKmsError(
            f"KMS key {meta.arn} is in Region {arn.region}; a repository in {region} needs a key in {region}",
            kms_error="NotFoundException",
        )
    if meta.key_state is KeyState.DISABLED:
        # KMS key-state table: CreateGrant on a Disabled key fails with DisabledException.
        raise EcrKmsError(f"KMS key {meta.arn} is disabled.", kms_error="DisabledException")
    if meta.key_state is KeyState.PENDING_DELETION:
        # KMS: "KMSInvalidStateException: ... is pending deletion" (ecrcrypt's pick, kms.py).
        raise EcrKmsError(f"KMS key {meta.arn} is pending deletion.", kms_error="KMSInvalidStateException")
    if meta.key_state is not KeyState.ENABLED:
        raise EcrKmsError(f"KMS key {meta.arn} is {meta.key_state.value}.", kms_error="KMSInvalidStateException")
