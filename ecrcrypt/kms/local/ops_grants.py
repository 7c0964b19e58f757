"""The local KMS's grant operations (private).

Grants are how ECR's service principal gets to use a customer's key: created with
quotas and idempotent retries, listed by key or by retiring principal, retired or
revoked. Grant-only writes go through :meth:`KmsCore._grant_write`, which keeps
the key's cached grant index current instead of dropping every cache.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from ecrcrypt.authz import ContextValue, Reason
from ecrcrypt.errors import (
    InvalidGrantIdError,
    InvalidGrantTokenError,
    InvalidMarkerError,
    LimitExceededError,
    NotFoundError,
    ValidationError,
)
from ecrcrypt.kms import (
    CreateGrantResponse,
    GrantConstraints,
    GrantOperation,
    KeyIdentifier,
    KeyManager,
    ListGrantsResponse,
)
from ecrcrypt.kms.local.access import account_denied, child_grant_allowed, decide, denied, request_context
from ecrcrypt.kms.local.client import ClientBase
from ecrcrypt.kms.local.events import Call
from ecrcrypt.kms.local.params import (
    GRANT_ID,
    GRANT_NAME,
    check_limit,
    check_operations,
    check_principal,
    check_service_principal,
    check_tokens,
    decode_marker,
    encode_marker,
    new_token,
    token_grant_id,
)
from ecrcrypt.kms.local.rules import require_usable
from ecrcrypt.kms.local.state import GrantChanges
from ecrcrypt.kms.local.store import GrantRecord, Tx


def _grant_principals(
    grantee: str | None,
    grantee_service: str | None,
    retiring: str | None,
    retiring_service: str | None,
    constraints: GrantConstraints | None,
) -> tuple[str, str | None]:
    """CreateGrant's principals as botocore's current model words the rules: ``(grantee, retiring)``.

    "You must specify either GranteePrincipal or GranteeServicePrincipal, but not both";
    "either RetiringPrincipal or RetiringServicePrincipal, but not both"; "When you specify a
    GranteeServicePrincipal, you must also specify a SourceArn grant constraint. In addition,
    you must specify either a RetiringPrincipal or a RetiringServicePrincipal."
    """
    if constraints is not None and not isinstance(constraints, GrantConstraints):
        raise ValidationError("Constraints must be a GrantConstraints")
    if (grantee is None) == (grantee_service is None):
        raise ValidationError("You must specify either GranteePrincipal or GranteeServicePrincipal, but not both")
    if retiring is not None and retiring_service is not None:
        raise ValidationError("You can specify either RetiringPrincipal or RetiringServicePrincipal, but not both")
    if grantee_service is not None:
        name = check_service_principal(grantee_service, "GranteeServicePrincipal")
        if constraints is None or constraints.source_arn is None:
            raise ValidationError("A grant to a GranteeServicePrincipal needs a SourceArn grant constraint")
        if retiring is None and retiring_service is None:
            raise ValidationError(
                "A grant to a GranteeServicePrincipal needs a RetiringPrincipal or a RetiringServicePrincipal"
            )
    else:
        name = check_principal(grantee, "GranteePrincipal")
    if retiring_service is not None:
        return name, check_service_principal(retiring_service, "RetiringServicePrincipal")
    return name, None if retiring is None else check_principal(retiring, "RetiringPrincipal")


class GrantOps(ClientBase):
    """CreateGrant, ListGrants, ListRetirableGrants, RetireGrant and RevokeGrant."""

    # -- grants -------------------------------------------------------------------------
    def create_grant(
        self,
        *,
        key_id: KeyIdentifier,
        grantee_principal: str | None = None,
        operations: Sequence[GrantOperation | str],
        retiring_principal: str | None = None,
        constraints: GrantConstraints | None = None,
        grant_tokens: Sequence[str] = (),
        name: str | None = None,
        grantee_service_principal: str | None = None,
        retiring_service_principal: str | None = None,
    ) -> CreateGrantResponse:
        params: dict[str, Any] = {
            "keyId": str(key_id),
            "operations": [str(op) for op in operations] if not isinstance(operations, str) else operations,
        }
        for field, value in (
            ("granteePrincipal", grantee_principal),
            ("granteeServicePrincipal", grantee_service_principal),
            ("retiringPrincipal", retiring_principal),
            ("retiringServicePrincipal", retiring_service_principal),
        ):
            if value is not None:
                params[field] = value
        if constraints is not None and isinstance(constraints, GrantConstraints):
            api = constraints.to_api()
            params["constraints"] = {k[0].lower() + k[1:]: v for k, v in api.items()}
        if name is not None:
            params["name"] = name
        call = Call("CreateGrant", params, read_only=False)
        kms = self._kms
        caller = self._caller

        def run(call: Call) -> CreateGrantResponse:
            grantee, retiring = _grant_principals(
                grantee_principal,
                grantee_service_principal,
                retiring_principal,
                retiring_service_principal,
                constraints,
            )
            ops = check_operations(operations)
            if name is not None and (not isinstance(name, str) or GRANT_NAME.fullmatch(name) is None):
                raise ValidationError("Name must match ^[a-zA-Z0-9:/_-]+$ and be 1 to 256 characters")
            check_tokens(grant_tokens)
            key = kms._resolve(key_id, aliases=False)
            call.arns = (key.arn,)
            extra: dict[str, ContextValue] = {
                "kms:GrantOperations": sorted(op.value for op in ops),
                "kms:GranteePrincipal": grantee,
            }
            if retiring is not None:
                extra["kms:RetiringPrincipal"] = retiring
            decision = decide(kms, caller, key, "CreateGrant", request_context(caller, "CreateGrant", None, extra))
            if not decision.allowed:
                # KMS: a grant allowing CreateGrant lets its grantee create grants with a subset of its
                # operations and equally strict or stricter constraints -- never past an explicit deny.
                parents = [
                    g
                    for grantee_arn in {caller.principal, caller.parsed.policy_arn}
                    for g in kms._grants_of(key.key_id).of(grantee_arn)
                    if GrantOperation.CREATE_GRANT in g.operations
                ]
                if decision.reason is Reason.EXPLICIT_DENY or not any(
                    child_grant_allowed(p, ops, constraints) for p in parents
                ):
                    raise denied(decision)
            require_usable(key)  # KMS: CreateGrant fails on a Disabled / PendingDeletion key
            with kms._grant_write() as (tx, changes):
                current = tx.key(key.key_id)
                if current is None:
                    raise kms._not_found(key.key_id)
                require_usable(current)
                if name is not None:
                    # KMS: a retry with identical parameters, Name included, returns the
                    # original GrantId and creates no new grant (each call: a new token).
                    for g in tx.grants_named(key.key_id, name):
                        if (
                            g.name == name
                            and g.grantee == grantee
                            and g.retiring == retiring
                            and g.grantee_is_service == (grantee_service_principal is not None)
                            and g.retiring_is_service == (retiring_service_principal is not None)
                            and g.operations == ops
                            and g.constraints == constraints
                        ):
                            call.response = {"grantId": g.grant_id, "keyId": key.arn}
                            kms._record(caller, call, tx)
                            return CreateGrantResponse(grant_id=g.grant_id, grant_token=new_token(g.grant_id))
                if current.manager is KeyManager.CUSTOMER:
                    # The quotas apply to customer managed keys only (KMS: "This quota does
                    # not apply to AWS managed keys"). See docs/kms-model.md for the 500.
                    per_grantee = kms.quotas.grants_per_grantee_per_key
                    if per_grantee is not None and tx.count_grants(key.key_id, grantee) >= per_grantee:
                        raise LimitExceededError(
                            f"The grant quota of {per_grantee} grants for grantee principal {grantee} "
                            f"on {key.arn} has been reached."
                        )
                    per_key = kms.quotas.grants_per_key
                    if per_key is not None and tx.count_grants(key.key_id) >= per_key:
                        raise LimitExceededError(f"The grant quota of {per_key} grants on {key.arn} has been reached.")
                grant_id = secrets.token_hex(32)
                tx.insert_grant(
                    grant_id=grant_id,
                    key_id=key.key_id,
                    name=name,
                    grantee=grantee,
                    retiring=retiring,
                    issuing_account=kms.account,
                    operations=ops,
                    constraints=constraints,
                    created=kms._now(),
                    grantee_is_service=grantee_service_principal is not None,
                    retiring_is_service=retiring_service_principal is not None,
                )
                added = tx.grant(grant_id)  # the row as every reader decodes it
                assert added is not None
                changes.added(added)
                call.response = {"grantId": grant_id, "keyId": key.arn}
                kms._record(caller, call, tx)
            return CreateGrantResponse(grant_id=grant_id, grant_token=new_token(grant_id))

        return self._run(call, run)

    def list_grants(
        self,
        *,
        key_id: KeyIdentifier,
        grant_id: str | None = None,
        grantee_principal: str | None = None,
        limit: int | None = None,
        marker: str | None = None,
        grantee_service_principal: str | None = None,
    ) -> ListGrantsResponse:
        call = Call(
            "ListGrants",
            {
                "keyId": str(key_id),
                "grantId": grant_id,
                "granteePrincipal": grantee_principal,
                "granteeServicePrincipal": grantee_service_principal,
                "limit": limit,
            },
            read_only=True,
        )
        kms = self._kms

        def run(call: Call) -> ListGrantsResponse:
            n = check_limit(limit)
            if grantee_service_principal is not None:
                check_service_principal(grantee_service_principal, "GranteeServicePrincipal")
            after = decode_marker("grant", marker)
            after_seq = int(after) if after is not None and after.isdigit() else -1
            if after is not None and after_seq < 0:
                raise InvalidMarkerError(f"The marker {marker!r} is not valid")
            # KMS: ListGrants succeeds in every key state.
            key = kms._resolve(key_id, aliases=False)
            call.arns = (key.arn,)
            self._authorize(key, "ListGrants")
            matches = [
                g
                for g in kms._grants_of(key.key_id).all
                if g.seq > after_seq
                and (grant_id is None or g.grant_id == grant_id)
                and (grantee_principal is None or (g.grantee == grantee_principal and not g.grantee_is_service))
                and (
                    grantee_service_principal is None
                    or (g.grantee == grantee_service_principal and g.grantee_is_service)
                )
            ]
            page = matches[:n]
            truncated = len(matches) > n
            return ListGrantsResponse(
                grants=tuple(kms._grant_entry(g) for g in page),
                next_marker=encode_marker("grant", str(page[-1].seq)) if truncated else None,
                truncated=truncated,
            )

        return self._run(call, run)

    def list_retirable_grants(
        self,
        *,
        retiring_principal: str | None = None,
        limit: int | None = None,
        marker: str | None = None,
        retiring_service_principal: str | None = None,
    ) -> ListGrantsResponse:
        given = {"retiringPrincipal": retiring_principal, "retiringServicePrincipal": retiring_service_principal}
        call = Call("ListRetirableGrants", {**given, "limit": limit}, read_only=True)
        kms = self._kms
        caller = self._caller

        def run(call: Call) -> ListGrantsResponse:
            if (retiring_principal is None) == (retiring_service_principal is None):
                raise ValidationError("Specify either RetiringPrincipal or RetiringServicePrincipal, but not both")
            if retiring_service_principal is not None:
                principal = check_service_principal(retiring_service_principal, "RetiringServicePrincipal")
            else:
                principal = check_principal(retiring_principal, "RetiringPrincipal")
            n = check_limit(limit)
            after = decode_marker("grant", marker)
            after_seq = int(after) if after is not None and after.isdigit() else -1
            if after is not None and after_seq < 0:
                raise InvalidMarkerError(f"The marker {marker!r} is not valid")
            # KMS: authorized by an IAM policy in the caller's account; the retiring principal
            # itself may always list what it may retire (unless explicitly denied).
            decision = decide(kms, caller, None, "ListRetirableGrants")
            if decision.reason is Reason.EXPLICIT_DENY:
                raise denied(decision)
            if caller.principal != principal:
                if caller.account != kms.account:
                    raise account_denied(caller, "ListRetirableGrants", kms.account)
                if not decision.allowed:
                    raise denied(decision)
            found: list[GrantRecord] = []
            seq = after_seq
            tx = kms._store.autocommit()
            as_service = retiring_service_principal is not None
            while len(found) <= n:
                batch = tx.grants_retirable_by(principal, seq, n + 1)
                if not batch:
                    break
                seq = batch[-1].seq
                found += [
                    g for g in batch if g.retiring_is_service == as_service and kms._load_key(g.key_id) is not None
                ]
            page = found[:n]
            truncated = len(found) > n
            return ListGrantsResponse(
                grants=tuple(kms._grant_entry(g) for g in page),
                next_marker=encode_marker("grant", str(page[-1].seq)) if truncated else None,
                truncated=truncated,
            )

        return self._run(call, run)

    def retire_grant(
        self, *, grant_token: str | None = None, key_id: KeyIdentifier | None = None, grant_id: str | None = None
    ) -> None:
        # KMS CloudTrail: RetireGrant has requestParameters null, additionalEventData.grantId.
        call = Call("RetireGrant", None, read_only=False)
        kms = self._kms

        def run(call: Call) -> None:
            if grant_token is not None:
                if key_id is not None or grant_id is not None:
                    raise ValidationError("Identify the grant by GrantToken, or by KeyId and GrantId, not both")
                gid = token_grant_id(grant_token)
                with kms._grant_write() as (tx, changes):
                    grant = tx.grant(gid)
                    if grant is None:
                        raise InvalidGrantTokenError("The grant token is invalid.")
                    self._retire(tx, grant, call, changes)
                return
            if key_id is None or grant_id is None:
                raise ValidationError("RetireGrant needs a GrantToken, or a KeyId and a GrantId")
            if not isinstance(grant_id, str) or GRANT_ID.fullmatch(grant_id) is None:
                raise InvalidGrantIdError(f"Invalid grant ID {grant_id!r}")
            key = kms._resolve(key_id, aliases=False)
            call.arns = (key.arn,)
            call.extra = {"grantId": grant_id}
            with kms._grant_write() as (tx, changes):
                grant = tx.grant(grant_id)
                if grant is None or grant.key_id != key.key_id:
                    raise NotFoundError(f"Grant ID {grant_id} not found for {key.arn}")
                self._retire(tx, grant, call, changes)

        self._run(call, run)

    def _retire(self, tx: Tx, grant: GrantRecord, call: Call, changes: GrantChanges) -> None:
        kms = self._kms
        caller = self._caller
        key = tx.key(grant.key_id)
        arn = kms._key_arn(grant.key_id)
        call.arns = (arn,)
        call.extra = {"grantId": grant.grant_id}
        # KMS RetireGrant: the grant's retiring principal, its grantee when the grant allows
        # RetireGrant, or a principal of the key's account whose IAM policy allows kms:RetireGrant
        # ("not effective in a key policy") -- and an explicit deny blocks every one of them.
        names = {caller.principal, caller.parsed.policy_arn}
        named = grant.retiring in names or (grant.grantee in names and GrantOperation.RETIRE_GRANT in grant.operations)
        if key is None:  # the key is gone: only the principals the grant names
            if not named:
                raise account_denied(caller, "RetireGrant", kms.account)
        else:
            decision = decide(kms, caller, key, "RetireGrant")
            if decision.reason is Reason.EXPLICIT_DENY or not (named or decision.allowed):
                raise denied(decision)
        tx.delete_grant(grant.grant_id)
        changes.removed(grant)
        kms._record(caller, call, tx)

    def revoke_grant(self, *, key_id: KeyIdentifier, grant_id: str) -> None:
        call = Call("RevokeGrant", {"keyId": str(key_id), "grantId": grant_id}, read_only=False)
        kms = self._kms

        def run(call: Call) -> None:
            if not isinstance(grant_id, str) or GRANT_ID.fullmatch(grant_id) is None:
                raise InvalidGrantIdError(f"Invalid grant ID {grant_id!r}")
            key = kms._resolve(key_id, aliases=False)
            call.arns = (key.arn,)
            self._authorize(key, "RevokeGrant")
            with kms._grant_write() as (tx, changes):
                grant = tx.grant(grant_id)
                if grant is None or grant.key_id != key.key_id:
                    raise NotFoundError(f"Grant ID {grant_id} not found for {key.arn}")
                # ECR: "When you revoke a grant ... the change occurs immediately" (we
                # model no eventual-consistency delay).
                tx.delete_grant(grant_id)
                changes.removed(grant)
                kms._record(self._caller, call, tx)

        self._run(call, run)
