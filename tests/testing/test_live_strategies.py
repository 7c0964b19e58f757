"""Strategies bound to a live world: what they draw exists, and the registry accepts it."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecrcrypt import strategies as es
from ecrcrypt.config import EncryptionType
from ecrcrypt.digest import Digest
from ecrcrypt.ecr.registry import Registry
from ecrcrypt.kms import GrantConstraints, KeyMetadata, KeyState
from ecrcrypt.kms.local.service import LocalKmsClient
from ecrcrypt.testing import memory_world

SHARED = settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SHARED
@given(data=st.data())
def test_live_key_references_name_keys_that_exist(ecrcrypt_kms: LocalKmsClient, data: st.DataObject) -> None:
    ref = data.draw(es.live_key_references(ecrcrypt_kms))
    meta = ecrcrypt_kms.describe_key(key_id=ref)
    assert meta.key_state is KeyState.ENABLED
    assert str(ref) in (meta.key_id, meta.arn) or str(ref).startswith(("alias/", "arn:aws:kms:"))


@SHARED
@given(data=st.data())
def test_every_drawn_configuration_creates_a_repository(ecrcrypt_registry: Registry, data: st.DataObject) -> None:
    repo = data.draw(es.repositories(registry=ecrcrypt_registry))
    description = repo.describe()
    config = description.encryption_configuration
    if config.encryption_type is EncryptionType.AES256:
        assert ecrcrypt_registry.list_repository_grants(repo.name) == []
    else:
        # The key reference was resolved to a key ARN, and the repository holds its two grants.
        assert str(config.kms_key).startswith("arn:aws:kms:us-east-1:111122223333:key/")
        assert len(ecrcrypt_registry.list_repository_grants(repo.name)) == 2
    layer = repo.push_layer(b"payload", digest=Digest.of(b"payload"))
    assert repo.read_layer(layer.digest) == b"payload"


def test_the_unbound_strategy_names_keys_that_do_not_exist() -> None:
    # Why the bound form exists: from_type / encryption_configurations() without kms draws references
    # to nothing; a world without those keys refuses them.
    @settings(max_examples=30)
    @given(es.encryption_configurations())
    def unbound(config: object) -> None:
        with memory_world() as world:
            try:
                world.registry.create_repository("r", encryption_configuration=config)  # type: ignore[arg-type]
            except Exception as exc:
                failures.append(type(exc).__name__)

    failures: list[str] = []
    unbound()
    assert failures and set(failures) <= {"EcrKmsError", "InvalidParameterError"}


@given(es.grant_constraints())
def test_grant_constraints_are_valid_and_round_trip(constraints: GrantConstraints) -> None:
    assert GrantConstraints.from_api(constraints.to_api()) == constraints
    pairs = constraints.encryption_context_subset or constraints.encryption_context_equals
    assert pairs is not None and 1 <= len(pairs) <= 8
    assert constraints.allows(dict(pairs))


@given(es.key_metadata())
def test_key_metadata_is_consistent(meta: KeyMetadata) -> None:
    assert meta.arn.endswith(f":{meta.aws_account_id}:key/{meta.key_id}")
    assert meta.enabled == (meta.key_state is KeyState.ENABLED)
    assert (meta.deletion_date is not None) == (meta.key_state is KeyState.PENDING_DELETION)
    if meta.deletion_date is not None:
        assert 7 <= (meta.deletion_date - meta.creation_date).days <= 30
    assert set(meta.to_api()) >= {"AWSAccountId", "KeyId", "Arn", "KeyState", "Enabled", "KeySpec"}


@given(st.from_type(GrantConstraints), st.from_type(KeyMetadata))
def test_from_type_knows_the_new_types(constraints: GrantConstraints, meta: KeyMetadata) -> None:
    assert isinstance(constraints, GrantConstraints) and isinstance(meta, KeyMetadata)


@SHARED
@given(data=st.data())
def test_live_grants_exist_and_can_be_retired(ecrcrypt_kms: LocalKmsClient, data: st.DataObject) -> None:
    grant = data.draw(es.live_grants(ecrcrypt_kms))
    (listed,) = ecrcrypt_kms.list_grants(key_id=grant.key_id, grant_id=grant.grant_id).grants
    assert listed == grant and grant.operations
    ecrcrypt_kms.revoke_grant(key_id=grant.key_id, grant_id=grant.grant_id)
    assert ecrcrypt_kms.list_grants(key_id=grant.key_id, grant_id=grant.grant_id).grants == ()
