"""The KMS side of a repository's life: its grants' names and constraints, finding and retiring them.

Every step here may run twice -- once by the process that began an operation and again
by recovery after that process died -- so each is written to be repeated: grants are
found by what identifies them on the key (their ``Name``, derived from the repository's
uid, and their constraint), and a grant KMS no longer knows counts as retired.

Identity: a repository created by this version binds its **uid** into every encryption
context and into its grants' ``EncryptionContextSubset`` next to ``aws:ecr:arn``. The
ARN names the repository by name only, so a grant of a deleted repository would
otherwise authorize a later repository of the same name; with the uid in the
constraint KMS refuses it whatever happened to the old grant.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import attrs

from ecrcrypt.arns import RepositoryArn
from ecrcrypt.context import ECR_ARN_KEY
from ecrcrypt.ecr.codec import REPOSITORY_UID_KEY
from ecrcrypt.ecr.core import ECR_ROLE, STORAGE_ROLE, RegistryCore
from ecrcrypt.ecr.crashpoints import crashpoint
from ecrcrypt.ecr.metadata import RepositoryGrant
from ecrcrypt.errors import KmsError, NotFoundError
from ecrcrypt.kms import GrantConstraints, GrantListEntry, Kms

__all__ = [
    "Retirement",
    "constrained_arn",
    "constrained_uid",
    "delete_repository_blobs",
    "find_repository_grants",
    "grant_constraints",
    "grant_name",
    "grants_of_uid",
    "list_key_grants",
    "retirable_key_grants",
    "planned_grants",
    "recovery_ways",
    "retire_grants",
]


def grant_name(uid: str, role: str) -> str:
    """The CreateGrant ``Name`` of a repository's grant: KMS returns the same grant for a retry
    with the same name and parameters, and recovery finds the grant by it on the key."""
    return f"ecrcrypt-{uid}-{role}"


def planned_grants(core: RegistryCore, uid: str) -> tuple[RepositoryGrant, ...]:
    """The grants a creation will make, named but without ids (a creation intent holds these)."""
    return tuple(
        RepositoryGrant(role=role, grant_id="", grantee=core.principal_for(role), name=grant_name(uid, role))
        for role in (ECR_ROLE, STORAGE_ROLE)
    )


def grant_constraints(arn: RepositoryArn | str, uid: str | None) -> GrantConstraints:
    subset = {ECR_ARN_KEY: str(arn)}
    if uid is not None:
        subset[REPOSITORY_UID_KEY] = uid
    return GrantConstraints(encryption_context_subset=subset)


def _subset(grant: GrantListEntry) -> dict[str, str]:
    c = grant.constraints
    if c is None:
        return {}
    return dict(c.encryption_context_subset or c.encryption_context_equals or {})


def constrained_arn(grant: GrantListEntry) -> str | None:
    """The repository ARN a grant is constrained to, if any."""
    return _subset(grant).get(ECR_ARN_KEY)


def constrained_uid(grant: GrantListEntry) -> str | None:
    """The repository uid a grant is constrained to (``None`` for a grant that predates uids)."""
    return _subset(grant).get(REPOSITORY_UID_KEY)


def list_key_grants(kms: Kms, key_id: str) -> list[GrantListEntry]:
    """Every grant on ``key_id`` (ListGrants, all pages)."""
    found: list[GrantListEntry] = []
    marker: str | None = None
    while True:
        page = kms.list_grants(key_id=key_id, limit=100, marker=marker)
        found.extend(page.grants)
        if not page.truncated or not page.next_marker:
            return found
        marker = page.next_marker


def retirable_key_grants(kms: Kms, retiring_principal: str, key_arn: str) -> list[GrantListEntry]:
    """The grants on ``key_arn`` that ``retiring_principal`` may retire (ListRetirableGrants, all pages).

    ``kms`` is the retiring principal's own client: KMS lets a principal list the grants it may
    retire (ListRetirableGrants), so ECR finds the grants it made without the caller's kms:ListGrants.
    """
    found: list[GrantListEntry] = []
    marker: str | None = None
    while True:
        page = kms.list_retirable_grants(retiring_principal=retiring_principal, limit=100, marker=marker)
        found.extend(g for g in page.grants if g.key_id == key_arn)
        if not page.truncated or not page.next_marker:
            return found
        marker = page.next_marker


def find_repository_grants(kms: Kms, key_id: str, repository_arn: str | RepositoryArn) -> list[GrantListEntry]:
    """ListGrants on ``key_id`` filtered by the repository ARN in the grant constraint.

    The manual procedure after :class:`GrantsNotRetiredError` (ECR user guide): find
    the grants whose ``EncryptionContextSubset`` names the repository, then
    ``retire_grant(key_id=<key ARN>, grant_id=...)`` each.
    """
    target = str(repository_arn)
    return [g for g in list_key_grants(kms, key_id) if constrained_arn(g) == target]


@attrs.frozen(kw_only=True)
class Retirement:
    retired: tuple[str, ...]
    left: tuple[str, ...]
    #: the KMS error code of the first failure
    error: str | None = None
    #: the first failure itself (its message says why, e.g. which permission was missing)
    cause: KmsError | None = attrs.field(default=None, eq=False, repr=False)


def retire_grants(
    key_arn: str, grant_ids: Iterable[str], ways: Iterable[Callable[..., None]], *, missing_ok: bool = True
) -> Retirement:
    """Retire each grant by the first of ``ways`` (``retire_grant`` / ``revoke_grant`` of some
    client) that works; never raises a KMS error. With ``missing_ok`` a grant KMS does not know
    counts as retired (an earlier attempt, or a person, retired it); without, as a failure (ECR's
    DeleteRepository reports a grant revoked beforehand as not retired).
    """
    ways = tuple(ways)
    retired: list[str] = []
    left: list[str] = []
    error: str | None = None
    cause: KmsError | None = None
    for grant_id in dict.fromkeys(g for g in grant_ids if g):
        for undo in ways:
            try:
                undo(key_id=key_arn, grant_id=grant_id)
            except NotFoundError as exc:
                if not missing_ok:
                    error, cause = error or exc.code, cause or exc
                    continue
            except KmsError as exc:
                error, cause = error or exc.code, cause or exc
                continue
            retired.append(grant_id)
            crashpoint("grant:retired")
            break
        else:
            left.append(grant_id)
    return Retirement(retired=tuple(retired), left=tuple(left), error=error, cause=cause)


def recovery_ways(core: RegistryCore, caller: str) -> tuple[Callable[..., None], ...]:
    """How recovery retires a grant: ECR's own client first (every grant names ECR's service
    principal as its retiring principal, KMS RetireGrant: "the retiring principal ... can
    retire the grant"), then the caller's RetireGrant, then a key administrator's RevokeGrant."""
    ecr, kms = core.client(core.ecr_principal), core.client(caller)
    return (ecr.retire_grant, kms.retire_grant, kms.revoke_grant)


def grants_of_uid(kms: Kms, key_arn: str, uid: str, names: Iterable[str]) -> list[GrantListEntry]:
    """Grants on the key made for the repository ``uid``: by name, or by the uid in the constraint."""
    wanted = {n for n in names if n}
    return [g for g in list_key_grants(kms, key_arn) if g.name in wanted or constrained_uid(g) == uid]


def delete_repository_blobs(core: RegistryCore, uid: str, known: Iterable[str] = ()) -> tuple[str, ...]:
    """Delete ``known`` blob keys and every blob under the repository's prefix (``<account>/<uid>/``),
    including one committed by a process that died before recording it."""
    keys = set(known)
    keys.update(core.store.list(f"{core.account}/{uid}/"))
    for key in sorted(keys):
        crashpoint("delete:blob")
        core.store.delete(key)
    return tuple(sorted(keys))
