"""The local KMS's key-policy operations and ListKeys (private).

A key policy is stored as written and compiled once per write (the service caches
the compiled form until its next state change); a document is refused at write
time with KMS's codes -- ``MalformedPolicyDocumentException`` for the grammar or a
policy that would lock its writer out, ``LimitExceededException`` past 32 KB --
so that every stored policy can be evaluated. Parameter bounds follow botocore's
KMS model (``PolicyNameType``: ``[\\w]+``, 1-128; ``LimitType``: 1-1000; ``MarkerType``: 1-1024).
"""

from __future__ import annotations

import re

from ecrcrypt.errors import NotFoundError, UnsupportedOperationError, ValidationError
from ecrcrypt.kms import KeyIdentifier, KeyListEntry, KeyManager, ListKeyPoliciesResponse, ListKeysResponse
from ecrcrypt.kms.local import policy_store
from ecrcrypt.kms.local.access import authorize_account, check_key_policy, check_lockout
from ecrcrypt.kms.local.client import ClientBase
from ecrcrypt.kms.local.events import Call
from ecrcrypt.kms.local.params import decode_marker, encode_marker

_POLICY_NAME = re.compile(r"\w{1,128}")
DEFAULT_POLICY_NAME = "default"
_DEFAULT_LIMIT, _MAX_LIMIT = 100, 1000


def _limit(limit: int | None) -> int:
    if limit is None:
        return _DEFAULT_LIMIT
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= _MAX_LIMIT:
        raise ValidationError(f"Limit must be between 1 and {_MAX_LIMIT}")
    return limit


def _policy_name(name: object) -> str:
    if not isinstance(name, str) or _POLICY_NAME.fullmatch(name) is None:
        raise ValidationError("PolicyName must be 1 to 128 word characters ([\\w]+)")
    return name


class PolicyOps(ClientBase):
    """ListKeys, GetKeyPolicy, PutKeyPolicy and ListKeyPolicies."""

    def list_keys(self, *, limit: int | None = None, marker: str | None = None) -> ListKeysResponse:
        call = Call("ListKeys", {"limit": limit, "marker": marker}, read_only=True)
        kms = self._kms

        def run(call: Call) -> ListKeysResponse:
            n = _limit(limit)
            after = decode_marker("key", marker)
            authorize_account(kms, self._caller, "ListKeys", kms.account)
            rows = kms._store.conn.execute(
                "SELECT key_id, arn FROM keys WHERE account = ? AND region = ? AND key_id > ? ORDER BY key_id LIMIT ?",
                (kms.account, kms.region, after or "", n + 1),
            ).fetchall()
            page = rows[:n]
            truncated = len(rows) > n
            return ListKeysResponse(
                keys=tuple(KeyListEntry(key_id=str(r[0]), key_arn=str(r[1])) for r in page),
                next_marker=encode_marker("key", str(page[-1][0])) if truncated else None,
                truncated=truncated,
            )

        return self._run(call, run)

    def get_key_policy(self, *, key_id: KeyIdentifier, policy_name: str = DEFAULT_POLICY_NAME) -> str:
        call = Call("GetKeyPolicy", {"keyId": str(key_id), "policyName": policy_name}, read_only=True)
        kms = self._kms

        def run(call: Call) -> str:
            name = _policy_name(policy_name)
            key = kms._resolve(key_id, aliases=False)
            call.arns = (key.arn,)
            self._authorize(key, "GetKeyPolicy")
            if name != DEFAULT_POLICY_NAME:
                raise NotFoundError(f"No such policy exists: {name} on {key.arn}")
            return policy_store.key_policy_document(kms._store.conn, key)

        return self._run(call, run)

    def put_key_policy(
        self,
        *,
        key_id: KeyIdentifier,
        policy: str,
        policy_name: str = DEFAULT_POLICY_NAME,
        bypass_policy_lockout_safety_check: bool = False,
    ) -> None:
        params: dict[str, object] = {"keyId": str(key_id), "policyName": policy_name, "policy": policy}
        if bypass_policy_lockout_safety_check:
            params["bypassPolicyLockoutSafetyCheck"] = True
        call = Call("PutKeyPolicy", params, read_only=False)
        kms = self._kms

        def run(call: Call) -> None:
            name = _policy_name(policy_name)
            key = kms._resolve(key_id, aliases=False)
            call.arns = (key.arn,)
            self._authorize(key, "PutKeyPolicy")
            if key.manager is KeyManager.AWS:
                # KMS: the policy of an AWS managed key is the service's, and cannot be changed.
                raise UnsupportedOperationError(f"{key.arn} is an AWS managed key: its key policy cannot be changed.")
            if name != DEFAULT_POLICY_NAME:
                raise ValidationError(f"PolicyName must be {DEFAULT_POLICY_NAME!r} (the only key policy a key has)")
            compiled = check_key_policy(policy)
            if not bypass_policy_lockout_safety_check:
                check_lockout(kms, self._caller, key.arn, compiled)
            with kms._store.write() as tx:
                if tx.key(key.key_id) is None:
                    raise kms._not_found(key.key_id)
                policy_store.put_key_policy(tx.conn, key.key_id, policy)
                kms._record(self._caller, call, tx)
                kms._after_write(tx)

        self._run(call, run)

    def list_key_policies(
        self, *, key_id: KeyIdentifier, limit: int | None = None, marker: str | None = None
    ) -> ListKeyPoliciesResponse:
        call = Call("ListKeyPolicies", {"keyId": str(key_id), "limit": limit}, read_only=True)
        kms = self._kms

        def run(call: Call) -> ListKeyPoliciesResponse:
            _limit(limit)
            after = decode_marker("policy", marker)
            key = kms._resolve(key_id, aliases=False)
            call.arns = (key.arn,)
            self._authorize(key, "ListKeyPolicies")
            names = () if after is not None and after >= DEFAULT_POLICY_NAME else (DEFAULT_POLICY_NAME,)
            return ListKeyPoliciesResponse(policy_names=names)

        return self._run(call, run)
