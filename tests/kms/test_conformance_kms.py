"""One KMS contract, two implementations: LocalKms and Boto3Kms over a moto server.

Every test asserts AWS's behaviour. Where moto 5 does not model it
(../shared/reference/kms-ecr-semantics.md §4.2) the test looks the difference up in
``MOTO_GAPS`` and asserts what moto does instead, so that the table stays true: if
moto starts behaving like AWS, the test fails and the entry must go. Nothing here is
skipped silently and no moto answer is passed off as AWS's.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import attrs
import pytest

from ecrcrypt import errors
from ecrcrypt.kms import (
    DataKeySpec,
    GrantConstraints,
    GrantOperation,
    KeyManager,
    KeyState,
    Kms,
)

ACCOUNT = "123456789012"
REGION = "us-east-1"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
# Another account's role: the default key policy grants nothing to it, so only a grant can
# (in the key's own account, the default policy's "Enable IAM policies" statement would).
PUSHER = "arn:aws:iam::444455556666:role/pusher"


@attrs.frozen
class Gap:
    """How moto differs from AWS for one behaviour: what it raises instead (``None``: it succeeds)."""

    reason: str
    moto_raises: type[BaseException] | None = None


MOTO_GAPS: dict[str, Gap] = {
    "incorrect_key": Gap(
        "moto answers Decrypt with another key's KeyId with AccessDeniedException; AWS: IncorrectKeyException",
        errors.AccessDeniedError,
    ),
    "disabled_key_crypto": Gap("moto does not enforce key states on crypto calls; AWS: DisabledException"),
    "disabled_key_create_grant": Gap("moto allows CreateGrant on a Disabled key; AWS: DisabledException"),
    "pending_deletion_crypto": Gap(
        "moto allows GenerateDataKey/Decrypt on a key pending deletion; AWS: KMSInvalidStateException"
    ),
    "enable_pending_deletion": Gap("moto's EnableKey revives a key pending deletion; AWS: KMSInvalidStateException"),
    "cancel_not_pending": Gap("moto cancels deletion of a key that is not pending deletion; AWS: KMSInvalidState"),
    "schedule_window": Gap("moto accepts PendingWindowInDays outside 7-30; AWS: ValidationException"),
    "reserved_alias": Gap("moto lets a customer create alias/aws/...; AWS rejects the reserved prefix"),
    "aws_managed_ecr_key": Gap(
        "moto knows no alias/aws/ecr (14 other alias/aws/* only); AWS creates the AWS managed key on DescribeKey",
        errors.NotFoundError,
    ),
    "retire_unknown_grant": Gap("moto's RetireGrant of an unknown grant id succeeds; AWS: NotFoundException"),
    "grant_name_idempotency": Gap("moto creates a second grant for a retried Name; AWS returns the first GrantId"),
    "grant_invalid_operations": Gap("moto accepts Sign on a symmetric key and empty Operations; AWS: ValidationError"),
    "grant_enforcement": Gap("moto has no authorization model: grants, constraints and tokens are never evaluated"),
    "grant_quota": Gap("moto has no grant quota; AWS: LimitExceededException at 50,000 grants per key"),
    "list_grants_filter": Gap("moto ignores ListGrants' GranteePrincipal filter and Limit/Marker"),
    "malformed_policy": Gap("moto stores any key policy text; AWS: MalformedPolicyDocumentException"),
    "list_keys_paging": Gap("moto ignores ListKeys' Limit and Marker: one page, never truncated"),
    "list_keys_marker": Gap("moto ignores ListKeys' Marker; AWS: InvalidMarkerException for a marker it did not issue"),
    "service_principal_grants": Gap(
        "moto 5 ignores CreateGrant's GranteeServicePrincipal and RetiringServicePrincipal (botocore's current "
        "model): the grant is stored with neither, and listed without a grantee"
    ),
    "service_principal_grant_rules": Gap(
        "moto 5 checks none of CreateGrant's service principal rules (one grantee form, SourceArn and a retiring "
        "principal with GranteeServicePrincipal, ServicePrincipalType's pattern); AWS: ValidationException"
    ),
    "ambiguous_context": Gap(
        "moto's AAD concatenates context keys and values without lengths, so {'ab':'c'} opens as {'a':'bc'}; "
        "AWS binds the exact pairs"
    ),
}


@attrs.frozen
class Backend:
    name: str
    kms: Kms
    other: Kms | None = None  # a second caller identity (grantee), where the backend can model one

    def differs(self, gap: str) -> Gap | None:
        return MOTO_GAPS[gap] if self.name == "moto" else None


def _local(request: pytest.FixtureRequest) -> Backend:
    try:
        from ecrcrypt.kms.local.service import LocalKms
    except ImportError as exc:
        pytest.skip(
            f"ecrcrypt.kms.local.service is not importable yet ({exc}); the LocalKms half of the suite waits for it"
        )
    service = LocalKms(account=ACCOUNT, region=REGION)
    return Backend("local", service.client(ROOT), service.client(PUSHER))


def _moto(request: pytest.FixtureRequest) -> Backend:
    from ecrcrypt.kms.aws import Boto3Kms

    return Backend("moto", Boto3Kms(client=request.getfixturevalue("kms_client")))


@pytest.fixture(params=[pytest.param("local"), pytest.param("moto", marks=pytest.mark.moto)])
def backend(request: pytest.FixtureRequest) -> Backend:
    return {"local": _local, "moto": _moto}[request.param](request)


@pytest.fixture
def kms(backend: Backend) -> Kms:
    return backend.kms


def aws_behaviour(
    backend: Backend, gap: str | None, expected: type[BaseException], call: Callable[[], Any]
) -> BaseException | None:
    """Assert ``call`` fails as on AWS, or (moto) as ``MOTO_GAPS[gap]`` documents."""
    difference = backend.differs(gap) if gap else None
    if difference is not None:
        if difference.moto_raises is None:
            call()  # moto succeeds where AWS fails
            return None
        with pytest.raises(difference.moto_raises):
            call()
        return None
    with pytest.raises(expected) as info:
        call()
    assert type(info.value) is expected or issubclass(type(info.value), expected)
    return info.value


def _alias_arn(key_arn: str, alias: str) -> str:
    prefix = key_arn.split(":key/")[0]
    return f"{prefix}:{alias}"


# --------------------------------------------------------------------------- keys and aliases


def test_create_and_describe_by_all_four_key_forms(kms: Kms) -> None:
    meta = kms.create_key(description="layers")
    assert meta.key_state is KeyState.ENABLED
    assert meta.key_manager is KeyManager.CUSTOMER
    assert meta.arn == f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{meta.key_id}"
    kms.create_alias(alias_name="alias/team-layers", target_key_id=meta.key_id)
    forms = [meta.key_id, meta.arn, "alias/team-layers", _alias_arn(meta.arn, "alias/team-layers")]
    for form in forms:
        described = kms.describe_key(key_id=form)
        assert (described.key_id, described.arn) == (meta.key_id, meta.arn), form
        assert kms.generate_data_key(key_id=form, key_spec="AES_256").key_id == meta.arn, form


@pytest.mark.parametrize("missing", ["alias/nope", "1234abcd-12ab-34cd-56ef-1234567890ab"])
def test_describe_unknown_key_or_alias(kms: Kms, missing: str) -> None:
    with pytest.raises(errors.NotFoundError):
        kms.describe_key(key_id=missing)


def test_aliases_lifecycle(backend: Backend, kms: Kms) -> None:
    a = kms.create_key()
    b = kms.create_key()
    kms.create_alias(alias_name="alias/app", target_key_id=a.key_id)
    with pytest.raises(errors.AlreadyExistsError):
        kms.create_alias(alias_name="alias/app", target_key_id=b.key_id)
    names = {e.alias_name: e for e in kms.list_aliases().aliases}
    assert "alias/app" in names
    assert names["alias/app"].alias_arn == _alias_arn(a.arn, "alias/app")
    kms.update_alias(alias_name="alias/app", target_key_id=b.key_id)
    assert kms.describe_key(key_id="alias/app").arn == b.arn
    kms.delete_alias(alias_name="alias/app")
    with pytest.raises(errors.NotFoundError):
        kms.describe_key(key_id="alias/app")


def test_reserved_alias_prefix_is_rejected(backend: Backend, kms: Kms) -> None:
    key = kms.create_key()
    # KMS CreateAlias: "The alias name cannot begin with alias/aws/. The alias/aws/ prefix is reserved
    # for Amazon Web Services managed keys."
    aws_behaviour(
        backend,
        "reserved_alias",
        errors.InvalidAliasNameError,
        lambda: kms.create_alias(alias_name="alias/aws/mine", target_key_id=key.key_id),
    )


def test_aws_managed_ecr_key_is_created_on_describe(backend: Backend, kms: Kms) -> None:
    # KMS DescribeKey: "AWS services use DescribeKey to create AWS managed keys from a predefined
    # AWS alias with no key ID."
    if backend.differs("aws_managed_ecr_key"):
        aws_behaviour(
            backend, "aws_managed_ecr_key", errors.NotFoundError, lambda: kms.describe_key(key_id="alias/aws/ecr")
        )
        return
    first = kms.describe_key(key_id="alias/aws/ecr")
    assert first.key_manager is KeyManager.AWS
    assert first.key_state is KeyState.ENABLED
    assert kms.describe_key(key_id="alias/aws/ecr").arn == first.arn  # created once


# --------------------------------------------------------------------------- data keys and context


CONTEXT = {"aws:ecr:arn": f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/app", "aws:s3:arn": "arn:aws:s3:::b/p/sha256:00"}


@pytest.mark.parametrize(
    ("spec", "nbytes", "length"), [("AES_256", None, 32), (DataKeySpec.AES_128, None, 16), (None, 64, 64), (None, 1, 1)]
)
def test_generate_data_key_sizes(kms: Kms, spec: Any, nbytes: int | None, length: int) -> None:
    key = kms.create_key()
    dk = kms.generate_data_key(key_id=key.key_id, key_spec=spec, number_of_bytes=nbytes)
    assert len(dk.plaintext) == length
    assert dk.key_id == key.arn
    assert kms.decrypt(ciphertext_blob=dk.ciphertext_blob).plaintext == dk.plaintext


@pytest.mark.parametrize(("spec", "nbytes"), [(None, None), ("AES_256", 32)])
def test_generate_data_key_needs_exactly_one_size(kms: Kms, spec: Any, nbytes: int | None) -> None:
    # KMS: "You must specify either the KeySpec or the NumberOfBytes parameter (but not both)".
    key = kms.create_key()
    with pytest.raises(errors.ValidationError):
        kms.generate_data_key(key_id=key.key_id, key_spec=spec, number_of_bytes=nbytes)


def test_context_binding(kms: Kms) -> None:
    key = kms.create_key()
    dk = kms.generate_data_key(key_id=key.key_id, key_spec="AES_256", encryption_context=CONTEXT)
    reordered = dict(reversed(list(CONTEXT.items())))
    assert kms.decrypt(ciphertext_blob=dk.ciphertext_blob, encryption_context=reordered).plaintext == dk.plaintext
    wrong_contexts: list[dict[str, str] | None] = [
        None,
        {},
        {k: v for k, v in CONTEXT.items() if k != "aws:s3:arn"},  # subset
        {**CONTEXT, "extra": "x"},  # superset
        {**CONTEXT, "aws:s3:arn": "arn:aws:s3:::b/p/sha256:01"},  # other value
        {k.upper(): v for k, v in CONTEXT.items()},  # KMS: "a case-sensitive exact match"
    ]
    for wrong in wrong_contexts:
        with pytest.raises(errors.InvalidCiphertextError) as info:
            kms.decrypt(ciphertext_blob=dk.ciphertext_blob, encryption_context=wrong)
        assert type(info.value) is errors.InvalidCiphertextError, wrong


def test_context_pairs_are_bound_exactly(backend: Backend, kms: Kms) -> None:
    key = kms.create_key()
    blob = kms.encrypt(key_id=key.key_id, plaintext=b"k" * 32, encryption_context={"ab": "c"}).ciphertext_blob
    aws_behaviour(
        backend,
        "ambiguous_context",
        errors.InvalidCiphertextError,
        lambda: kms.decrypt(ciphertext_blob=blob, encryption_context={"a": "bc"}),
    )


def test_decrypt_with_another_keys_id_is_incorrect_key(backend: Backend, kms: Kms) -> None:
    a, b = kms.create_key(), kms.create_key()
    blob = kms.generate_data_key(key_id=a.key_id, key_spec="AES_256").ciphertext_blob
    assert kms.decrypt(ciphertext_blob=blob, key_id=a.arn).key_id == a.arn
    aws_behaviour(
        backend, "incorrect_key", errors.IncorrectKeyError, lambda: kms.decrypt(ciphertext_blob=blob, key_id=b.key_id)
    )


def test_encrypt_limits_and_reencrypt(kms: Kms) -> None:
    a, b = kms.create_key(), kms.create_key()
    with pytest.raises(errors.ValidationError):
        kms.encrypt(key_id=a.key_id, plaintext=b"x" * 4097)  # KMS PlaintextType: at most 4096 bytes
    blob = kms.encrypt(key_id=a.key_id, plaintext=b"secret", encryption_context={"k": "1"}).ciphertext_blob
    moved = kms.re_encrypt(
        ciphertext_blob=blob,
        destination_key_id=b.arn,
        source_encryption_context={"k": "1"},
        destination_encryption_context={"k": "2"},
    )
    assert (moved.source_key_id, moved.key_id) == (a.arn, b.arn)
    out = kms.decrypt(ciphertext_blob=moved.ciphertext_blob, encryption_context={"k": "2"})
    assert (out.plaintext, out.key_id) == (b"secret", b.arn)


def test_data_keys_never_reach_a_repr(kms: Kms) -> None:
    key = kms.create_key()
    dk = kms.generate_data_key(key_id=key.key_id, key_spec="AES_256")
    out = kms.decrypt(ciphertext_blob=dk.ciphertext_blob)
    for text in (repr(dk), str(dk), repr(out)):
        assert dk.plaintext.hex() not in text
        assert repr(dk.plaintext) not in text


def test_rotation_keeps_old_ciphertexts_readable(kms: Kms) -> None:
    # KMS: "AWS KMS saves all previous versions of the cryptographic material in perpetuity".
    key = kms.create_key()
    old = kms.generate_data_key(key_id=key.arn, key_spec="AES_256", encryption_context=CONTEXT)
    assert kms.get_key_rotation_status(key_id=key.arn).key_rotation_enabled is False
    kms.enable_key_rotation(key_id=key.arn)
    assert kms.get_key_rotation_status(key_id=key.arn).key_rotation_enabled is True
    assert kms.rotate_key_on_demand(key_id=key.arn).key_id == key.arn
    new = kms.generate_data_key(key_id=key.arn, key_spec="AES_256", encryption_context=CONTEXT)
    for dk in (old, new):
        out = kms.decrypt(ciphertext_blob=dk.ciphertext_blob, encryption_context=CONTEXT)
        assert (out.plaintext, out.key_id) == (dk.plaintext, key.arn)


# --------------------------------------------------------------------------- grants


def _grant(kms: Kms, key_arn: str, **kw: Any) -> Any:
    return kms.create_grant(
        key_id=key_arn,
        grantee_principal=kw.pop("grantee", PUSHER),
        operations=kw.pop("operations", [GrantOperation.GENERATE_DATA_KEY, GrantOperation.DECRYPT]),
        retiring_principal=kw.pop("retiring", ROOT),
        constraints=kw.pop(
            "constraints", GrantConstraints(encryption_context_subset={"aws:ecr:arn": CONTEXT["aws:ecr:arn"]})
        ),
        **kw,
    )


def test_grants_create_list_retire_revoke(kms: Kms) -> None:
    key = kms.create_key()
    g1 = _grant(kms, key.arn)
    g2 = _grant(kms, key.arn)
    g3 = _grant(kms, key.arn)
    listed = {g.grant_id: g for g in kms.list_grants(key_id=key.arn).grants}
    assert set(listed) == {g1.grant_id, g2.grant_id, g3.grant_id}
    entry = listed[g1.grant_id]
    assert entry.key_id == key.arn
    assert entry.grantee_principal == PUSHER
    assert entry.retiring_principal == ROOT
    assert set(entry.operations) == {GrantOperation.GENERATE_DATA_KEY, GrantOperation.DECRYPT}
    assert entry.constraints == GrantConstraints(encryption_context_subset={"aws:ecr:arn": CONTEXT["aws:ecr:arn"]})
    assert [g.grant_id for g in kms.list_grants(key_id=key.arn, grant_id=g2.grant_id).grants] == [g2.grant_id]

    kms.retire_grant(grant_token=g1.grant_token)
    kms.retire_grant(key_id=key.arn, grant_id=g2.grant_id)
    kms.revoke_grant(key_id=key.arn, grant_id=g3.grant_id)
    assert kms.list_grants(key_id=key.arn).grants == ()


def test_revoke_unknown_grant(kms: Kms) -> None:
    key = kms.create_key()
    with pytest.raises(errors.NotFoundError):
        kms.revoke_grant(key_id=key.arn, grant_id="0" * 64)


def test_retire_unknown_grant(backend: Backend, kms: Kms) -> None:
    key = kms.create_key()
    aws_behaviour(
        backend,
        "retire_unknown_grant",
        errors.NotFoundError,
        lambda: kms.retire_grant(key_id=key.arn, grant_id="0" * 64),
    )


def test_grant_name_makes_retries_idempotent(backend: Backend, kms: Kms) -> None:
    # KMS CreateGrant Name: "When this value is present, you can retry this request without
    # creating duplicate grants ... returns the original GrantId".
    key = kms.create_key()
    first = _grant(kms, key.arn, name="repo-app")
    again = _grant(kms, key.arn, name="repo-app")
    if backend.differs("grant_name_idempotency"):
        assert again.grant_id != first.grant_id
        assert len(kms.list_grants(key_id=key.arn).grants) == 2
        return
    assert again.grant_id == first.grant_id
    assert len(kms.list_grants(key_id=key.arn).grants) == 1


@pytest.mark.parametrize("operations", [[], ["Sign"], ["Encapsulate"], ["Decapsulate"]])
def test_grant_operations_must_suit_a_symmetric_key(backend: Backend, kms: Kms, operations: list[str]) -> None:
    key = kms.create_key()
    aws_behaviour(
        backend,
        "grant_invalid_operations",
        errors.ValidationError,
        lambda: _grant(kms, key.arn, operations=operations),
    )


def test_list_grants_filters_by_grantee(backend: Backend, kms: Kms) -> None:
    key = kms.create_key()
    _grant(kms, key.arn, grantee=PUSHER)
    _grant(kms, key.arn, grantee=f"arn:aws:iam::{ACCOUNT}:role/storage")
    found = kms.list_grants(key_id=key.arn, grantee_principal=PUSHER).grants
    if backend.differs("list_grants_filter"):
        assert len(found) == 2
        return
    assert [g.grantee_principal for g in found] == [PUSHER]


def test_grant_authorizes_the_grantee_within_its_constraint(backend: Backend, kms: Kms) -> None:
    if (gap := backend.differs("grant_enforcement")) is not None:
        pytest.skip(f"MOTO_GAPS['grant_enforcement']: {gap.reason}")
    assert backend.other is not None
    pusher = backend.other
    key = kms.create_key()
    with pytest.raises(errors.AccessDeniedError):
        pusher.generate_data_key(key_id=key.arn, key_spec="AES_256", encryption_context=CONTEXT)
    grant = _grant(kms, key.arn)
    dk = pusher.generate_data_key(
        key_id=key.arn, key_spec="AES_256", encryption_context=CONTEXT, grant_tokens=[grant.grant_token]
    )
    assert pusher.decrypt(ciphertext_blob=dk.ciphertext_blob, encryption_context=CONTEXT).plaintext == dk.plaintext
    other_repo = {**CONTEXT, "aws:ecr:arn": f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/other"}
    with pytest.raises(errors.AccessDeniedError):
        pusher.generate_data_key(key_id=key.arn, key_spec="AES_256", encryption_context=other_repo)
    kms.revoke_grant(key_id=key.arn, grant_id=grant.grant_id)
    with pytest.raises(errors.AccessDeniedError):
        pusher.decrypt(ciphertext_blob=dk.ciphertext_blob, encryption_context=CONTEXT)


def test_grant_quota_is_limit_exceeded_and_creates_nothing(backend: Backend) -> None:
    # KMS quotas: "Each customer managed key can have up to 50,000 grants ... After you reach the
    # quota, you can create new grants on the KMS key only when an active grant is retired or
    # revoked." The local model makes the quota a parameter, so a small one stands in for 50,000.
    if (gap := backend.differs("grant_quota")) is not None:
        pytest.skip(f"MOTO_GAPS['grant_quota']: {gap.reason} (and 50,000 grants do not fit in a test)")
    from ecrcrypt.kms import KmsQuotas
    from ecrcrypt.kms.local.service import LocalKms

    service = LocalKms(
        account=ACCOUNT, region=REGION, quotas=KmsQuotas(grants_per_key=3, grants_per_grantee_per_key=None)
    )
    kms = service.client(ROOT)
    key = kms.create_key()
    grants = [_grant(kms, key.arn) for _ in range(3)]
    with pytest.raises(errors.LimitExceededError):
        _grant(kms, key.arn)
    assert len(kms.list_grants(key_id=key.arn).grants) == 3
    kms.retire_grant(grant_token=grants[0].grant_token)
    _grant(kms, key.arn)  # a retired grant frees its slot
    assert len(kms.list_grants(key_id=key.arn).grants) == 3


# --------------------------------------------------------------------------- key states


def test_disabled_key(backend: Backend, kms: Kms) -> None:
    key = kms.create_key()
    blob = kms.generate_data_key(key_id=key.arn, key_spec="AES_256").ciphertext_blob
    kms.disable_key(key_id=key.arn)
    meta = kms.describe_key(key_id=key.arn)  # DescribeKey works in every key state
    assert (meta.key_state, meta.enabled) == (KeyState.DISABLED, False)
    aws_behaviour(
        backend,
        "disabled_key_crypto",
        errors.DisabledError,
        lambda: kms.generate_data_key(key_id=key.arn, key_spec="AES_256"),
    )
    aws_behaviour(backend, "disabled_key_crypto", errors.DisabledError, lambda: kms.decrypt(ciphertext_blob=blob))
    aws_behaviour(backend, "disabled_key_create_grant", errors.DisabledError, lambda: _grant(kms, key.arn))
    kms.list_grants(key_id=key.arn)  # ListGrants works in every key state
    kms.enable_key(key_id=key.arn)
    assert kms.decrypt(ciphertext_blob=blob).key_id == key.arn


def test_pending_deletion_and_cancel(backend: Backend, kms: Kms) -> None:
    key = kms.create_key()
    blob = kms.generate_data_key(key_id=key.arn, key_spec="AES_256").ciphertext_blob
    resp = kms.schedule_key_deletion(key_id=key.arn, pending_window_in_days=7)
    assert resp.key_state is KeyState.PENDING_DELETION
    meta = kms.describe_key(key_id=key.arn)
    assert meta.key_state is KeyState.PENDING_DELETION
    assert meta.deletion_date is not None
    aws_behaviour(
        backend, "pending_deletion_crypto", errors.KmsInvalidStateError, lambda: kms.decrypt(ciphertext_blob=blob)
    )
    # KMS: "When this operation succeeds, the key state of the KMS key is Disabled."
    kms.cancel_key_deletion(key_id=key.arn)
    assert kms.describe_key(key_id=key.arn).key_state is KeyState.DISABLED
    aws_behaviour(
        backend, "cancel_not_pending", errors.KmsInvalidStateError, lambda: kms.cancel_key_deletion(key_id=key.arn)
    )


def test_enable_key_pending_deletion_fails(backend: Backend, kms: Kms) -> None:
    key = kms.create_key()
    kms.schedule_key_deletion(key_id=key.arn, pending_window_in_days=30)
    aws_behaviour(
        backend, "enable_pending_deletion", errors.KmsInvalidStateError, lambda: kms.enable_key(key_id=key.arn)
    )


@pytest.mark.parametrize("days", [6, 31])
def test_deletion_window_is_7_to_30_days(backend: Backend, kms: Kms, days: int) -> None:
    key = kms.create_key()
    aws_behaviour(
        backend,
        "schedule_window",
        errors.ValidationError,
        lambda: kms.schedule_key_deletion(key_id=key.arn, pending_window_in_days=days),
    )


def test_moto_gap_table_is_consulted() -> None:
    """Every MOTO_GAPS entry is used by a test in this module (no stale documentation)."""
    import inspect
    import sys

    source = inspect.getsource(sys.modules[__name__])
    unused = [name for name in MOTO_GAPS if source.count(f'"{name}"') < 2]
    assert unused == []


# --------------------------------------------------------------------------- key policies and ListKeys

_ROOT_ALL = {"Sid": "Enable IAM User Permissions", "Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:*"}


def _policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{**s, "Resource": "*"} for s in statements]})


def test_default_key_policy_enables_iam_for_the_account(kms: Kms) -> None:
    key = kms.create_key()
    statements = json.loads(kms.get_key_policy(key_id=key.key_id))["Statement"]
    assert any(s["Principal"] == {"AWS": ROOT} and s["Action"] == "kms:*" for s in statements)
    assert kms.list_key_policies(key_id=key.key_id).policy_names == ("default",)


def test_key_policy_round_trip(kms: Kms) -> None:
    first = _policy(_ROOT_ALL)
    key = kms.create_key(policy=first)
    assert json.loads(kms.get_key_policy(key_id=key.arn)) == json.loads(first)
    second = _policy(
        _ROOT_ALL, {"Sid": "Deny pusher", "Effect": "Deny", "Principal": {"AWS": PUSHER}, "Action": "kms:*"}
    )
    kms.put_key_policy(key_id=key.arn, policy=second)
    assert json.loads(kms.get_key_policy(key_id=key.key_id)) == json.loads(second)


def test_malformed_key_policy_is_refused(backend: Backend, kms: Kms) -> None:
    aws_behaviour(
        backend, "malformed_policy", errors.MalformedPolicyDocumentError, lambda: kms.create_key(policy="not json")
    )


def test_list_keys_pages(backend: Backend, kms: Kms) -> None:
    made = {kms.create_key().arn for _ in range(3)}
    seen: set[str] = set()
    marker = None
    while True:
        page = kms.list_keys(limit=2, marker=marker)
        if backend.differs("list_keys_paging"):
            assert len(page.keys) >= 3 and not page.truncated
        else:
            assert len(page.keys) <= 2
        seen |= {k.key_arn for k in page.keys}
        if not page.truncated:
            break
        marker = page.next_marker
    assert made <= seen


def test_list_keys_refuses_a_bad_marker(backend: Backend, kms: Kms) -> None:
    kms.create_key()
    aws_behaviour(backend, "list_keys_marker", errors.InvalidMarkerError, lambda: kms.list_keys(marker="garbage"))


@pytest.mark.parametrize("length", [0, 2049])
def test_a_key_id_outside_1_to_2048_characters_is_a_validation_error(kms: Kms, length: int) -> None:
    with pytest.raises(errors.ValidationError) as refused:
        kms.describe_key(key_id="k" * length)
    assert not isinstance(refused.value, errors.NotFoundError)


# --------------------------------------------------------------------------- grants to service principals
SERVICE = "ecr.us-east-1.amazonaws.com"
SOURCE = f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/app"


def _service_grant(kms: Kms, key_arn: str, **kw: Any) -> Any:
    return kms.create_grant(
        key_id=key_arn,
        grantee_service_principal=kw.pop("grantee_service", SERVICE),
        operations=[GrantOperation.GENERATE_DATA_KEY, GrantOperation.DECRYPT],
        retiring_service_principal=kw.pop("retiring_service", SERVICE),
        constraints=kw.pop("constraints", GrantConstraints(source_arn=SOURCE)),
        **kw,
    )


def test_a_grant_to_a_service_principal_is_listed_as_one(backend: Backend, kms: Kms) -> None:
    # botocore's current KMS model: CreateGrant's GranteeServicePrincipal / RetiringServicePrincipal,
    # GrantListEntry's members of the same names, GrantConstraints.SourceArn.
    key = kms.create_key()
    made = _service_grant(kms, key.arn)
    (entry,) = kms.list_grants(key_id=key.arn).grants
    assert entry.grant_id == made.grant_id and entry.constraints == GrantConstraints(source_arn=SOURCE)
    if backend.differs("service_principal_grants"):
        assert (entry.grantee_principal, entry.grantee_service_principal) == (None, None)
        return
    assert (entry.grantee_principal, entry.grantee_service_principal) == (None, SERVICE)
    assert (entry.retiring_principal, entry.retiring_service_principal) == (None, SERVICE)
    api = entry.to_api()
    assert api["GranteeServicePrincipal"] == SERVICE and "GranteePrincipal" not in api
    assert api["Constraints"] == {"SourceArn": SOURCE}
    # The filters name the form the grant was made with.
    assert kms.list_grants(key_id=key.arn, grantee_principal=SERVICE).grants == ()
    assert [g.grant_id for g in kms.list_grants(key_id=key.arn, grantee_service_principal=SERVICE).grants] == [
        made.grant_id
    ]
    kms.revoke_grant(key_id=key.arn, grant_id=made.grant_id)


@pytest.mark.parametrize(
    "bad",
    [
        {"grantee_principal": PUSHER},  # both grantee forms
        {"constraints": GrantConstraints(encryption_context_subset={"aws:ecr:arn": SOURCE})},  # no SourceArn
        {"retiring_service": None},  # no retiring principal
        {"grantee_service": "not-a-service-principal"},  # ServicePrincipalType's pattern
        {"grantee_service": "ecr." + "a" * 120 + ".amazonaws.com"},  # over 128 characters
        {"retiring_service": "ecr.amazonaws.com", "retiring_principal": ROOT},  # both retiring forms
    ],
)
def test_service_principal_grants_follow_the_models_rules(backend: Backend, kms: Kms, bad: dict[str, Any]) -> None:
    key = kms.create_key()
    aws_behaviour(
        backend,
        "service_principal_grant_rules",
        errors.ValidationError,
        lambda: _service_grant(kms, key.arn, **bad),
    )


@pytest.mark.parametrize(
    "source", ["arn:aws:ecr:us-east-1:12345:repository/x", "arn:aws:ecr:us-east-1:123456789012:", "x" * 20, "a" * 513]
)
def test_a_source_arn_constraint_is_an_arn_of_an_account(source: str) -> None:
    # GrantConstraintSourceArnType: 20-512, ^arn:aws[a-z0-9-]*:[a-z0-9-]+:[a-z0-9-]*:[0-9]{12}:.+$
    with pytest.raises(errors.ValidationError, match="SourceArn"):
        GrantConstraints(source_arn=source)
    assert GrantConstraints(source_arn=SOURCE).source_arn == SOURCE
