"""Grants to service principals and the ``SourceArn`` constraint, as botocore's current KMS model has them.

CreateGrant: "When you specify a GranteeServicePrincipal, you must also specify a SourceArn
grant constraint"; GrantConstraints.SourceArn "allows the permissions in the grant only when
the request is made on behalf of a specific Amazon Web Services resource ... it does not apply
to RetireGrant operation". The local KMS knows on whose behalf a client calls from
``LocalKms.client(..., source_arn=)`` (``aws:SourceArn``); the hot path, the full path and the
simulator must agree on it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ecrcrypt import errors
from ecrcrypt.kms import GrantConstraints, GrantOperation
from ecrcrypt.kms.local.service import LocalKms, ManualClock

ACCOUNT = "111122223333"
REGION = "us-east-1"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
SERVICE = "ecr.us-east-1.amazonaws.com"
REPO = f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/app"
OTHER_REPO = f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/other"
CONTEXT = {"aws:ecr:arn": REPO}


@pytest.fixture
def kms(clock: ManualClock) -> LocalKms:
    return LocalKms(account=ACCOUNT, region=REGION, clock=clock)


def _grant(kms: LocalKms, key: str, constraints: GrantConstraints, **kw: object) -> str:
    return (
        kms.client(ROOT)
        .create_grant(
            key_id=key,
            grantee_service_principal=SERVICE,
            retiring_service_principal=SERVICE,
            operations=[GrantOperation.GENERATE_DATA_KEY, GrantOperation.DECRYPT, GrantOperation.RETIRE_GRANT],
            constraints=constraints,
            **kw,  # type: ignore[arg-type]
        )
        .grant_id
    )


@pytest.mark.parametrize(
    "constraints",
    [GrantConstraints(source_arn=REPO), GrantConstraints(source_arn=REPO, encryption_context_subset=CONTEXT)],
)
def test_a_source_arn_grant_allows_only_requests_on_behalf_of_its_resource(
    kms: LocalKms, constraints: GrantConstraints
) -> None:
    key = kms.client(ROOT).create_key().arn
    _grant(kms, key, constraints)
    on_behalf = kms.client(SERVICE, source_arn=REPO)
    for _ in range(3):  # the first call takes the full path, the next ones the hot path
        blob = on_behalf.generate_data_key(key_id=key, key_spec="AES_256", encryption_context=CONTEXT).ciphertext_blob
        on_behalf.decrypt(ciphertext_blob=blob, encryption_context=CONTEXT)
    for client in (kms.client(SERVICE), kms.client(SERVICE, source_arn=OTHER_REPO)):
        for _ in range(2):
            with pytest.raises(errors.AccessDeniedError, match="kms:GenerateDataKey"):
                client.generate_data_key(key_id=key, key_spec="AES_256", encryption_context=CONTEXT)
    # The simulator is the same engine: it agrees, naming the grant that decided.
    assert kms.simulate(SERVICE, "kms:GenerateDataKey", key, CONTEXT, source_arn=REPO).allowed
    assert not kms.simulate(SERVICE, "kms:GenerateDataKey", key, CONTEXT).allowed
    assert not kms.simulate(SERVICE, "kms:GenerateDataKey", key, CONTEXT, source_arn=OTHER_REPO).allowed


def test_source_arn_does_not_bind_retire_grant(kms: LocalKms) -> None:
    key = kms.client(ROOT).create_key().arn
    grant_id = _grant(kms, key, GrantConstraints(source_arn=REPO))
    # The retiring service principal retires it without acting for the repository.
    assert [
        g.grant_id for g in kms.client(SERVICE).list_retirable_grants(retiring_service_principal=SERVICE).grants
    ] == [grant_id]
    assert kms.client(SERVICE).list_retirable_grants(retiring_principal=SERVICE).grants == ()
    kms.client(SERVICE).retire_grant(key_id=key, grant_id=grant_id)
    assert kms.client(ROOT).list_grants(key_id=key).grants == ()


def test_a_grant_allowing_create_grant_passes_on_its_source_arn(kms: LocalKms) -> None:
    # "equally strict or stricter": a child of a SourceArn-constrained grant keeps the SourceArn.
    key = kms.client(ROOT).create_key().arn
    kms.client(ROOT).create_grant(
        key_id=key,
        grantee_service_principal=SERVICE,
        retiring_principal=ROOT,
        operations=[GrantOperation.CREATE_GRANT, GrantOperation.DECRYPT],
        constraints=GrantConstraints(source_arn=REPO),
    )
    service = kms.client(SERVICE, source_arn=REPO)
    with pytest.raises(errors.AccessDeniedError):
        service.create_grant(key_id=key, grantee_principal=ROOT, operations=[GrantOperation.DECRYPT])
    child = service.create_grant(
        key_id=key,
        grantee_principal=ROOT,
        operations=[GrantOperation.DECRYPT],
        constraints=GrantConstraints(source_arn=REPO),
    )
    assert child.grant_id


def test_a_store_written_before_service_principal_grants_opens_and_keeps_its_grants(tmp_path: Path) -> None:
    path = tmp_path / "kms.sqlite3"
    with LocalKms(path=path, account=ACCOUNT, region=REGION) as kms:
        key = kms.client(ROOT).create_key().arn
        old = kms.client(ROOT).create_grant(key_id=key, grantee_principal=ROOT, operations=["Decrypt"]).grant_id
    with sqlite3.connect(path) as conn:  # as the previous schema had it
        conn.execute("ALTER TABLE grants DROP COLUMN service_principals")
    with LocalKms(path=path, account=ACCOUNT, region=REGION) as kms:
        (entry,) = kms.client(ROOT).list_grants(key_id=key).grants
        assert (entry.grant_id, entry.grantee_principal, entry.grantee_service_principal) == (old, ROOT, None)
        _grant(kms, key, GrantConstraints(source_arn=REPO))
        assert {g.grantee_service_principal for g in kms.client(ROOT).list_grants(key_id=key).grants} == {
            None,
            SERVICE,
        }
