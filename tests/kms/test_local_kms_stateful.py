"""Random call sequences against LocalKms, checked against a small reference model.

The model knows key states (and the deletion deadline on an injected clock), the
material version new ciphertexts use (on-demand and automatic rotation), grants
(grantee, operations, constraint), the quotas, and which ciphertexts must decrypt
under which context for which caller; every call's outcome -- success or the exact
exception class -- is predicted by the model before it is made.
"""

from __future__ import annotations

import struct
from typing import Any

import attrs
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule

from ecrcrypt import errors
from ecrcrypt.kms import GrantConstraints, KeyState, KmsQuotas
from ecrcrypt.kms.local.service import LocalKms, ManualClock

ACCOUNT = "111122223333"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
ECR = "ecr.us-east-1.amazonaws.com"
OTHER = "arn:aws:iam::444455556666:role/other"
PER_GRANTEE, PER_KEY = 3, 5
DAY = 86_400

CONTEXTS: list[dict[str, str]] = [
    {},
    {"aws:ecr:arn": "r1"},
    {"aws:ecr:arn": "r2"},
    {"aws:ecr:arn": "r1", "x": "y"},
    {"AWS:ECR:ARN": "r1"},
]
CONSTRAINTS: list[tuple[str, dict[str, str]] | None] = [
    None,
    ("subset", {"aws:ecr:arn": "r1"}),
    ("equals", {"aws:ecr:arn": "r1"}),
    ("subset", {"Aws:Ecr:Arn": "r1"}),  # constraint keys are case-insensitive
]


@attrs.define
class ModelKey:
    arn: str
    state: KeyState = KeyState.ENABLED
    deadline: float | None = None
    deleted: bool = False
    version: int = 0
    rotation_period: int | None = None  # days; None: automatic rotation off
    anchor: float = 0.0  # the next automatic rotation is due at anchor + period


@attrs.frozen
class ModelGrant:
    grant_id: str
    token: str
    key: str
    grantee: str
    operations: frozenset[str]
    constraint: tuple[str, dict[str, str]] | None


@attrs.frozen
class Cipher:
    blob: bytes
    key: str
    context: dict[str, str]
    plaintext: bytes


def _version(blob: bytes) -> int:
    return int(struct.unpack_from(">I", blob, 17)[0])  # blob layout: u8 version, 16-byte key id, u32 material


def _constraint_allows(constraint: tuple[str, dict[str, str]] | None, context: dict[str, str]) -> bool:
    if constraint is None:
        return True
    kind, pairs = constraint
    req = {k.lower(): v for k, v in context.items()}
    want = {k.lower(): v for k, v in pairs.items()}
    if kind == "equals":
        return req == want
    return all(req.get(k) == v for k, v in want.items())


class LocalKmsMachine(RuleBasedStateMachine):
    keys = Bundle("keys")
    ciphers = Bundle("ciphers")
    grants = Bundle("grants")

    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock()
        self.kms = LocalKms(
            account=ACCOUNT,
            clock=self.clock,
            quotas=KmsQuotas(grants_per_grantee_per_key=PER_GRANTEE, grants_per_key=PER_KEY),
        )
        self.admin = self.kms.client(ROOT)
        self.model: dict[str, ModelKey] = {}
        self.model_grants: dict[str, ModelGrant] = {}

    # -- model helpers ------------------------------------------------------------------
    def now(self) -> float:
        return self.clock().timestamp()

    def live(self, arn: str) -> ModelKey | None:
        k = self.model[arn]
        if k.deleted:
            return None
        if k.deadline is not None and k.deadline <= self.now():
            k.deleted = True
            for gid in [g for g, v in self.model_grants.items() if v.key == arn]:
                del self.model_grants[gid]
            return None
        if k.state is KeyState.ENABLED and k.rotation_period is not None:
            # KMS: an Enabled key rotates on its date (missed dates: one rotation, same schedule).
            period = k.rotation_period * DAY
            if k.anchor + period <= self.now():
                k.version += 1
                k.anchor += (self.now() - k.anchor) // period * period
        return k

    def expect(self, expected: type[BaseException] | None, call: Any) -> Any:
        if expected is None:
            return call()
        try:
            call()
        except errors.EcrCryptError as exc:
            # A denial by the policy engine is an AccessDeniedError subclass carrying its decision.
            got = errors.AccessDeniedError if isinstance(exc, errors.PolicyAccessDeniedError) else type(exc)
            assert got is expected, f"expected {expected.__name__}, got {type(exc).__name__}: {exc}"
            return None
        raise AssertionError(f"expected {expected.__name__}, the call succeeded")

    @staticmethod
    def usable_error(k: ModelKey) -> type[BaseException] | None:
        if k.state is KeyState.DISABLED:
            return errors.DisabledError
        if k.state is KeyState.PENDING_DELETION:
            return errors.KmsInvalidStateError
        return None

    # -- rules ----------------------------------------------------------------------------
    @rule(target=keys)
    def create_key(self) -> str:
        arn = self.admin.create_key().arn
        self.model[arn] = ModelKey(arn)
        return arn

    @rule(key=keys)
    def disable(self, key: str) -> None:
        k = self.live(key)
        err = errors.NotFoundError if k is None else errors.KmsInvalidStateError if k.deadline else None
        self.expect(err, lambda: self.admin.disable_key(key_id=key))
        if err is None and k is not None:
            k.state = KeyState.DISABLED

    @rule(key=keys)
    def enable(self, key: str) -> None:
        k = self.live(key)
        err = errors.NotFoundError if k is None else errors.KmsInvalidStateError if k.deadline else None
        self.expect(err, lambda: self.admin.enable_key(key_id=key))
        if err is None and k is not None:
            k.state = KeyState.ENABLED

    @rule(key=keys, days=st.integers(min_value=5, max_value=32))
    def schedule_deletion(self, key: str, days: int) -> None:
        k = self.live(key)
        if not 7 <= days <= 30:
            err: type[BaseException] | None = errors.ValidationError
        else:
            err = errors.NotFoundError if k is None else errors.KmsInvalidStateError if k.deadline else None
        self.expect(err, lambda: self.admin.schedule_key_deletion(key_id=key, pending_window_in_days=days))
        if err is None and k is not None:
            k.state = KeyState.PENDING_DELETION
            k.deadline = self.now() + days * DAY

    @rule(key=keys)
    def cancel_deletion(self, key: str) -> None:
        k = self.live(key)
        err = errors.NotFoundError if k is None else None if k.deadline else errors.KmsInvalidStateError
        self.expect(err, lambda: self.admin.cancel_key_deletion(key_id=key))
        if err is None and k is not None:
            k.state, k.deadline = KeyState.DISABLED, None

    @rule(key=keys)
    def rotate(self, key: str) -> None:
        k = self.live(key)
        err = errors.NotFoundError if k is None else self.usable_error(k)
        self.expect(err, lambda: self.admin.rotate_key_on_demand(key_id=key))
        if err is None and k is not None:
            k.version += 1

    @rule(key=keys, period=st.sampled_from([90, 120, None]))
    def set_automatic_rotation(self, key: str, period: int | None) -> None:
        k = self.live(key)
        err = errors.NotFoundError if k is None else self.usable_error(k)
        if period is None:
            self.expect(err, lambda: self.admin.disable_key_rotation(key_id=key))
        else:
            self.expect(err, lambda: self.admin.enable_key_rotation(key_id=key, rotation_period_in_days=period))
        if err is None and k is not None:
            if k.rotation_period is None:
                k.anchor = self.now()
            k.rotation_period = period

    @rule(days=st.integers(min_value=1, max_value=20))
    def advance_clock(self, days: int) -> None:
        self.clock.advance(days=days)

    @rule(days=st.sampled_from([45, 90]))
    def advance_a_season(self, days: int) -> None:
        self.clock.advance(days=days)

    @rule(target=ciphers, key=keys, ctx=st.sampled_from(CONTEXTS), data=st.binary(min_size=1, max_size=16))
    def encrypt(self, key: str, ctx: dict[str, str], data: bytes) -> Cipher | None:
        k = self.live(key)
        err = errors.NotFoundError if k is None else self.usable_error(k)
        if err is not None:
            self.expect(err, lambda: self.admin.encrypt(key_id=key, plaintext=data, encryption_context=ctx))
            return None
        blob = self.admin.encrypt(key_id=key, plaintext=data, encryption_context=ctx).ciphertext_blob
        assert k is not None and _version(blob) == k.version
        return Cipher(blob, key, ctx, data)

    @rule(
        cipher=ciphers,
        ctx=st.sampled_from(CONTEXTS),
        who=st.sampled_from([ROOT, ECR, OTHER]),
    )
    def decrypt(self, cipher: Cipher | None, ctx: dict[str, str], who: str) -> None:
        if cipher is None:
            return
        k = self.live(cipher.key)
        if k is None:
            err: type[BaseException] | None = errors.NotFoundError
        elif who != ROOT and not any(
            g.key == cipher.key
            and g.grantee == who
            and "Decrypt" in g.operations
            and _constraint_allows(g.constraint, ctx)
            for g in self.model_grants.values()
        ):
            err = errors.AccessDeniedError
        else:
            err = self.usable_error(k)
            if err is None and ctx != cipher.context:
                err = errors.InvalidCiphertextError
        client = self.kms.client(who)
        result = self.expect(err, lambda: client.decrypt(ciphertext_blob=cipher.blob, encryption_context=ctx))
        if err is None:
            assert result.plaintext == cipher.plaintext and result.key_id == cipher.key

    @rule(
        target=grants,
        key=keys,
        grantee=st.sampled_from([ECR, OTHER]),
        ops=st.sets(st.sampled_from(["Decrypt", "Encrypt", "GenerateDataKey", "RetireGrant"]), min_size=1),
        constraint=st.sampled_from(CONSTRAINTS),
    )
    def create_grant(
        self, key: str, grantee: str, ops: set[str], constraint: tuple[str, dict[str, str]] | None
    ) -> ModelGrant | None:
        k = self.live(key)
        on_key = [g for g in self.model_grants.values() if g.key == key]
        if k is None:
            err: type[BaseException] | None = errors.NotFoundError
        else:
            err = self.usable_error(k)
            if err is None and (sum(g.grantee == grantee for g in on_key) >= PER_GRANTEE or len(on_key) >= PER_KEY):
                err = errors.LimitExceededError
        constraints = None
        if constraint is not None:
            kind, pairs = constraint
            constraints = GrantConstraints(
                encryption_context_subset=pairs if kind == "subset" else None,
                encryption_context_equals=pairs if kind == "equals" else None,
            )

        def call() -> Any:
            return self.admin.create_grant(
                key_id=key, grantee_principal=grantee, operations=sorted(ops), constraints=constraints
            )

        if err is not None:
            self.expect(err, call)
            return None
        resp = call()
        grant = ModelGrant(resp.grant_id, resp.grant_token, key, grantee, frozenset(ops), constraint)
        self.model_grants[resp.grant_id] = grant
        return grant

    @rule(grant=consumes(grants), how=st.sampled_from(["retire-token", "retire-id", "revoke", "grantee"]))
    def end_grant(self, grant: ModelGrant | None, how: str) -> None:
        if grant is None:
            return
        k = self.live(grant.key)
        alive = grant.grant_id in self.model_grants
        if how == "retire-token":
            err: type[BaseException] | None = None if alive else errors.InvalidGrantTokenError
            self.expect(err, lambda: self.admin.retire_grant(grant_token=grant.token))
        elif how == "grantee":
            err = None if alive else errors.InvalidGrantTokenError
            if alive and "RetireGrant" not in grant.operations:
                err = errors.AccessDeniedError
            self.expect(err, lambda: self.kms.client(grant.grantee).retire_grant(grant_token=grant.token))
        else:
            err = errors.NotFoundError if k is None or not alive else None
            if how == "revoke":
                self.expect(err, lambda: self.admin.revoke_grant(key_id=grant.key, grant_id=grant.grant_id))
            else:
                self.expect(err, lambda: self.admin.retire_grant(key_id=grant.key, grant_id=grant.grant_id))
        if err is None:
            del self.model_grants[grant.grant_id]

    # -- invariants ---------------------------------------------------------------------
    @invariant()
    def states_and_grants_agree(self) -> None:
        for arn in self.model:
            k = self.live(arn)
            if k is None:
                continue
            meta = self.admin.describe_key(key_id=arn)
            assert meta.key_state is k.state
            status = self.admin.get_key_rotation_status(key_id=arn)
            rotating = k.rotation_period is not None and k.state is not KeyState.PENDING_DELETION
            assert status.key_rotation_enabled is rotating
            if rotating:
                assert k.rotation_period is not None and status.next_rotation_date is not None
                assert status.next_rotation_date.timestamp() == k.anchor + k.rotation_period * DAY
            listed = {g.grant_id for g in self.admin.list_grants(key_id=arn, limit=100).grants}
            assert listed == {g for g, v in self.model_grants.items() if v.key == arn}


LocalKmsMachine.TestCase.settings = settings(max_examples=80, stateful_step_count=40, deadline=None)
TestLocalKmsStateful = LocalKmsMachine.TestCase
