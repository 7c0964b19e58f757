"""The public Hypothesis strategies: every value is valid, round-trips, and from_type finds them."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecrcrypt import strategies as es
from ecrcrypt.arns import (
    AccountId,
    AliasArn,
    AliasName,
    KeyArn,
    KeyId,
    Partition,
    Region,
    RepositoryArn,
    RepositoryName,
    S3BucketName,
    S3ObjectArn,
    parse_key_reference,
)
from ecrcrypt.config import EncryptionConfiguration, EncryptionType
from ecrcrypt.context import ECR_ARN_KEY, MAX_SERIALIZED_CONTEXT, S3_ARN_KEY, EncryptionContext
from ecrcrypt.digest import Digest
from ecrcrypt.keyprovider import EncryptedDataKey

# ECR's own pattern (botocore ecr service model, repositoryName), restated here so the
# strategy is checked against the service's rule rather than against the class it feeds.
ECR_NAME_SERVICE = re.compile(r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*")


@given(es.regions())
def test_regions(region: Region) -> None:
    assert Region(str(region)) == region
    assert str(region.partition) in {"aws", "aws-cn", "aws-us-gov"}


@given(es.partitions())
def test_partitions(partition: Partition) -> None:
    assert Partition(str(partition)) == partition


@given(es.account_ids())
def test_account_ids(account: AccountId) -> None:
    assert len(str(account)) == 12 and str(account).isdigit()
    assert AccountId(str(account)) == account


@given(es.repository_names())
def test_repository_names_follow_ecr(name: RepositoryName) -> None:
    text = str(name)
    assert 2 <= len(text) <= 256
    assert ECR_NAME_SERVICE.fullmatch(text)
    assert RepositoryName(text) == name


def test_repository_names_cover_namespaces_separators_and_length_bounds() -> None:
    seen: set[str] = set()

    @settings(max_examples=300, database=None, derandomize=True)
    @given(es.repository_names())
    def collect(name: RepositoryName) -> None:
        text = str(name)
        if "/" in text:
            seen.add("namespace")
        for sep in ("__", "-", ".", "_"):
            if sep in text:
                seen.add(sep)
        if len(text) in (2, 256):
            seen.add(f"len{len(text)}")

    collect()
    assert {"namespace", "__", "-", ".", "len256"} <= seen


@given(es.repository_arns())
def test_repository_arns_round_trip(arn: RepositoryArn) -> None:
    assert RepositoryArn.parse(str(arn)) == arn
    assert arn.partition == arn.region.partition


@given(es.key_ids())
def test_key_ids(key_id: KeyId) -> None:
    assert KeyId(str(key_id)) == key_id
    assert parse_key_reference(str(key_id)) == key_id


@given(es.key_arns())
def test_key_arns_round_trip(arn: KeyArn) -> None:
    assert KeyArn.parse(str(arn)) == arn
    assert parse_key_reference(str(arn)) == arn


@given(es.alias_names())
def test_alias_names(alias: AliasName) -> None:
    assert AliasName(str(alias)) == alias
    assert 7 <= len(str(alias)) <= 256


@given(es.alias_names(allow_aws_managed=False))
def test_alias_names_can_exclude_aws_managed(alias: AliasName) -> None:
    assert not alias.is_aws_managed


@given(es.alias_arns())
def test_alias_arns_round_trip(arn: AliasArn) -> None:
    assert AliasArn.parse(str(arn)) == arn
    assert parse_key_reference(str(arn)) == arn


@given(es.key_references())
def test_key_references_round_trip(ref: KeyId | KeyArn | AliasName | AliasArn) -> None:
    assert parse_key_reference(str(ref)) == ref


@given(es.bucket_names())
def test_bucket_names(bucket: S3BucketName) -> None:
    text = str(bucket)
    assert 3 <= len(text) <= 63
    assert ".." not in text and not text.startswith("xn--") and not text.endswith("-s3alias")
    assert S3BucketName(text) == bucket


@given(es.s3_object_arns())
def test_s3_object_arns_round_trip(arn: S3ObjectArn) -> None:
    assert S3ObjectArn.parse(str(arn)) == arn
    assert 1 <= len(arn.key.encode()) <= 1024


@given(es.digests())
def test_digests_round_trip(digest: Digest) -> None:
    assert Digest.parse(str(digest)) == digest


@given(es.encryption_contexts())
def test_encryption_contexts_serialize_and_round_trip(context: EncryptionContext) -> None:
    data = context.serialize()
    assert len(data) <= MAX_SERIALIZED_CONTEXT
    assert EncryptionContext.deserialize(data) == context
    assert not any(k.startswith("aws-crypto-") for k in context)


def test_encryption_contexts_reach_non_bmp_and_the_size_bound() -> None:
    seen: set[str] = set()

    @settings(max_examples=300, database=None, derandomize=True)
    @given(es.encryption_contexts())
    def collect(context: EncryptionContext) -> None:
        text = "".join(k + v for k, v in context.items())
        if any(ord(c) > 0xFFFF for c in text):
            seen.add("non-bmp")
        if len(context) == 0:
            seen.add("empty")
        if len(context.serialize()) > 16_000:
            seen.add("large")

    collect()
    assert seen == {"non-bmp", "empty", "large"}


@given(es.encryption_contexts(min_pairs=3, max_pairs=5))
def test_encryption_contexts_honour_pair_bounds(context: EncryptionContext) -> None:
    assert 3 <= len(context) <= 5
    assert len(context.serialize()) <= MAX_SERIALIZED_CONTEXT


@given(es.encryption_contexts(allow_reserved=True, min_pairs=1))
def test_encryption_contexts_allow_reserved_still_valid(context: EncryptionContext) -> None:
    assert EncryptionContext.deserialize(context.serialize()) == context


@given(es.ecr_object_contexts())
def test_ecr_object_contexts(context: EncryptionContext) -> None:
    assert set(context) == {S3_ARN_KEY, ECR_ARN_KEY}
    repository = RepositoryArn.parse(context[ECR_ARN_KEY])
    obj = S3ObjectArn.parse(context[S3_ARN_KEY])
    assert obj.partition == repository.partition
    assert re.search(r"sha256:[0-9a-f]{64}$", obj.key)
    assert EncryptionContext.deserialize(context.serialize()) == context


@given(es.encryption_configurations())
def test_encryption_configurations_round_trip_through_the_api(config: EncryptionConfiguration) -> None:
    assert EncryptionConfiguration.from_api(config.to_api()) == config
    if config.encryption_type is EncryptionType.AES256:
        assert config.kms_key is None


@given(es.encrypted_data_keys())
def test_encrypted_data_keys_are_valid(edk: EncryptedDataKey) -> None:
    assert EncryptedDataKey(provider_id=edk.provider_id, provider_info=edk.provider_info, ciphertext=edk.ciphertext)
    if edk.provider_id == "aws-kms":
        KeyArn.parse(edk.provider_info.decode())


@given(es.data_keys())
def test_data_keys_are_aes256(key: bytes) -> None:
    assert isinstance(key, bytes) and len(key) == 32


@given(es.data_keys(16))
def test_data_keys_length(key: bytes) -> None:
    assert len(key) == 16


@pytest.mark.parametrize("frame", [1, 2, 64, 4096])
def test_plaintext_lengths_hit_every_boundary(frame: int) -> None:
    seen: set[int] = set()

    @settings(max_examples=400, database=None, derandomize=True)
    @given(es.plaintext_lengths(frame_length=frame, max_frames=3))
    def collect(n: int) -> None:
        assert 0 <= n <= 3 * frame + 1
        seen.add(n)

    collect()
    expected = {0, 1, frame - 1, frame, frame + 1, 2 * frame - 1, 2 * frame, 2 * frame + 1, 3 * frame}
    assert expected <= seen


@given(es.plaintexts(frame_length=128, max_frames=3))
def test_plaintexts_stay_within_frames(data: bytes) -> None:
    assert isinstance(data, bytes) and len(data) <= 3 * 128 + 1


@given(st.data())
def test_plaintexts_large_frames_are_cheap(data: st.DataObject) -> None:
    # 4 x 64 KiB plaintexts must not exhaust Hypothesis's buffer (content comes from a seed).
    value = data.draw(es.plaintexts(frame_length=65536, max_frames=4))
    assert len(value) <= 4 * 65536 + 1


def test_plaintexts_reject_bad_arguments() -> None:
    with pytest.raises(ValueError):
        es.plaintext_lengths(frame_length=0)
    with pytest.raises(ValueError):
        es.plaintext_lengths(frame_length=16, max_frames=0)


@given(es.chunk_sizes(frame_length=100, max_size=1000))
def test_chunk_sizes_are_positive_and_bounded(size: int) -> None:
    assert 1 <= size <= 1000


@given(st.data(), es.plaintexts(frame_length=64, max_frames=4))
def test_chunked_concatenates_back(data: st.DataObject, plaintext: bytes) -> None:
    chunks = data.draw(es.chunked(plaintext, frame_length=64))
    assert b"".join(chunks) == plaintext
    assert all(isinstance(c, bytes) for c in chunks)


@given(st.data(), st.binary(max_size=300))
def test_chunked_without_empty_chunks(data: st.DataObject, plaintext: bytes) -> None:
    chunks = data.draw(es.chunked(plaintext, allow_empty=False))
    assert b"".join(chunks) == plaintext
    assert all(chunks)


VALUE_TYPES = [
    Partition,
    Region,
    AccountId,
    RepositoryName,
    RepositoryArn,
    KeyId,
    KeyArn,
    AliasName,
    AliasArn,
    S3BucketName,
    S3ObjectArn,
    Digest,
    EncryptionContext,
    EncryptionConfiguration,
    EncryptedDataKey,
]


@pytest.mark.parametrize("cls", VALUE_TYPES, ids=lambda c: c.__name__)
def test_from_type_finds_registered_strategies(cls: type) -> None:
    @settings(max_examples=20, database=None)
    @given(st.from_type(cls))
    def check(value: object) -> None:
        assert type(value) is cls
        parse = getattr(cls, "parse", None)
        if parse is not None:
            assert parse(str(value)) == value

    check()


def test_from_type_key_reference_union() -> None:
    @settings(max_examples=30, database=None)
    @given(st.from_type(KeyId | KeyArn | AliasName | AliasArn))  # type: ignore[arg-type]
    def check(ref: object) -> None:
        assert parse_key_reference(str(ref)) == ref

    check()


def test_entry_point_is_declared() -> None:
    points = importlib.metadata.entry_points(group="hypothesis")
    assert any(p.value == "ecrcrypt.strategies:_hypothesis_setup_hook" for p in points)


def test_entry_point_registers_in_a_fresh_interpreter() -> None:
    # What a user gets: only Hypothesis is imported, the plugin does the rest.
    code = (
        "from hypothesis import strategies as st\n"
        "from ecrcrypt.arns import RepositoryArn\n"
        "import warnings; warnings.simplefilter('ignore')\n"
        "arn = st.from_type(RepositoryArn).example()\n"
        "print(type(arn).__name__, RepositoryArn.parse(str(arn)) == arn)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "RepositoryArn True"


def test_importing_strategies_before_hypothesis_works() -> None:
    # Importing this module first makes Hypothesis run its entry points while the module
    # is half-initialized; the hook must cope and from_type must still work afterwards.
    code = (
        "import ecrcrypt.strategies\n"
        "import warnings; warnings.simplefilter('ignore')\n"
        "from hypothesis import strategies as st\n"
        "from ecrcrypt.arns import KeyArn\n"
        "print(type(st.from_type(KeyArn).example()).__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "KeyArn"
