"""Value objects: validation at construction, parse/format round trips, clear errors."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecrcrypt.arns import (
    AccountId,
    AliasArn,
    AliasName,
    KeyArn,
    KeyId,
    Region,
    RepositoryArn,
    RepositoryName,
    S3BucketName,
    S3ObjectArn,
    parse_key_reference,
)
from ecrcrypt.config import EncryptionConfiguration, EncryptionType
from ecrcrypt.context import EncryptionContext
from ecrcrypt.digest import Digest
from ecrcrypt.errors import (
    AccessDeniedError,
    DisabledError,
    EcrCryptError,
    GrantsNotRetiredError,
    InvalidAliasNameError,
    InvalidArnError,
    InvalidCiphertextError,
    InvalidParameterError,
    KmsError,
    MessageFormatError,
    NotFoundError,
    ValidationError,
    error_for_code,
)

KEY_UUID = "1234abcd-12ab-34cd-56ef-1234567890ab"


@pytest.mark.parametrize(
    "name",
    ["ab", "a1", "my-repo", "a--b", "a---b", "a__b", "a.b", "team/app", "team/sub/app-1", "0abc", "a" * 256],
)
def test_repository_names_ecr_accepts(name: str) -> None:
    assert str(RepositoryName(name)) == name


@pytest.mark.parametrize(
    "name",
    ["a", "A", "My-Repo", "a..b", "a_.b", "a___b", "a//b", "/ab", "ab/", "-ab", "ab-", "a b", "a" * 257, ""],
)
def test_repository_names_ecr_rejects(name: str) -> None:
    with pytest.raises(ValidationError, match="RepositoryName"):
        RepositoryName(name)


def test_repository_arn_round_trip_and_uri() -> None:
    text = "arn:aws:ecr:us-west-2:123456789012:repository/team/app"
    arn = RepositoryArn.parse(text)
    assert str(arn) == text
    assert arn.name == RepositoryName("team/app")
    assert arn.uri == "123456789012.dkr.ecr.us-west-2.amazonaws.com/team/app"
    gov = RepositoryArn(region=Region("us-gov-west-1"), account=AccountId("123456789012"), name=RepositoryName("ab"))
    assert str(gov).startswith("arn:aws-us-gov:ecr:us-gov-west-1:")


@pytest.mark.parametrize(
    "text",
    [
        "arn:aws:ecr:us-west-2:123456789012:repo/app",
        "arn:aws:ecr:us-west-2:12345678901:repository/app",
        "arn:aws:kms:us-west-2:123456789012:repository/app",
        "arn:aws:ecr::123456789012:repository/app",
        "arn:aws:ecr:us-west-2:123456789012:repository/A",
        "not-an-arn",
    ],
)
def test_repository_arn_rejects(text: str) -> None:
    with pytest.raises(InvalidArnError):
        RepositoryArn.parse(text)


def test_key_references_all_four_forms() -> None:
    arn = f"arn:aws:kms:eu-west-1:111122223333:key/{KEY_UUID}"
    assert parse_key_reference(KEY_UUID) == KeyId(KEY_UUID)
    assert parse_key_reference(arn) == KeyArn.parse(arn)
    assert parse_key_reference("alias/my-key") == AliasName("alias/my-key")
    alias_arn = parse_key_reference("arn:aws:kms:eu-west-1:111122223333:alias/my-key")
    assert isinstance(alias_arn, AliasArn)
    assert alias_arn.alias == AliasName("alias/my-key")
    assert str(alias_arn) == "arn:aws:kms:eu-west-1:111122223333:alias/my-key"
    assert parse_key_reference("mrk-" + "a" * 32) == KeyId("mrk-" + "a" * 32)
    assert AliasName("alias/aws/ecr").is_aws_managed
    assert not AliasName("alias/awsecr").is_aws_managed


@pytest.mark.parametrize("text", ["", "key", "alias/", "alias/has space", "1234", KEY_UUID.upper()])
def test_key_reference_rejects(text: str) -> None:
    with pytest.raises(ValidationError):
        parse_key_reference(text)


def test_alias_name_errors_carry_kms_code() -> None:
    with pytest.raises(InvalidAliasNameError) as info:
        AliasName("alias/bad name")
    assert info.value.code == "InvalidAliasNameException"
    with pytest.raises(InvalidAliasNameError):
        AliasName("alias/" + "a" * 251)


@pytest.mark.parametrize("bucket", ["abc", "my.bucket-1", "a" * 63])
def test_bucket_names_accept(bucket: str) -> None:
    assert str(S3BucketName(bucket)) == bucket


@pytest.mark.parametrize(
    "bucket", ["ab", "a" * 64, "My-Bucket", "a..b", "192.168.1.1", "-abc", "xn--abc", "abc-s3alias"]
)
def test_bucket_names_reject(bucket: str) -> None:
    with pytest.raises(ValidationError, match="S3BucketName"):
        S3BucketName(bucket)


def test_s3_object_arn_round_trip() -> None:
    text = "arn:aws:s3:::my-bucket/some/prefix/sha256:" + "0" * 64
    arn = S3ObjectArn.parse(text)
    assert str(arn) == text
    assert arn.key == "some/prefix/sha256:" + "0" * 64
    with pytest.raises(InvalidArnError):
        S3ObjectArn.parse("arn:aws:s3:us-east-1::my-bucket/x")


def test_digest() -> None:
    d = Digest.of(b"")
    assert str(d) == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert Digest.parse(str(d)) == d
    for bad in ["sha256:abc", "md5:" + "0" * 64, "sha256:" + "G" * 64, "0" * 64]:
        with pytest.raises(ValidationError):
            Digest.parse(bad)


# --------------------------------------------------------------------------- encryption context


def test_context_serialization_is_the_esdk_layout() -> None:
    ctx = EncryptionContext({"b": "2", "a": "1"})
    assert ctx.serialize() == b"\x00\x02" + b"\x00\x01a\x00\x011" + b"\x00\x01b\x00\x012"
    assert EncryptionContext().serialize() == b""
    assert EncryptionContext({}).serialize() == b""


def test_context_sorts_by_utf8_bytes_not_code_points() -> None:
    # U+FF5E (3 UTF-8 bytes EF BD 9E) sorts before U+10000 (F0 90 80 80) in UTF-8 order,
    # but after it in UTF-16 order: the ESDK sorts the encoded bytes.
    ctx = EncryptionContext({"\U00010000": "x", "\uff5e": "y"})
    assert list(ctx) == ["\uff5e", "\U00010000"]


def test_ecr_context_has_exactly_the_two_keys() -> None:
    repo = "arn:aws:ecr:us-east-1:123456789012:repository/app"
    ctx = EncryptionContext.for_ecr_object(
        bucket="us-east-1-starport-layer-bucket", prefix="/abc/", digest="sha256:" + "f" * 64, repository=repo
    )
    assert dict(ctx) == {
        "aws:ecr:arn": repo,
        "aws:s3:arn": "arn:aws:s3:::us-east-1-starport-layer-bucket/abc/sha256:" + "f" * 64,
    }
    # aws:ecr:arn (0x65) sorts before aws:s3:arn (0x73)
    assert ctx.serialize().startswith(b"\x00\x02\x00\x0baws:ecr:arn")
    no_prefix = EncryptionContext.for_ecr_object(bucket="abc", prefix="", digest="sha256:" + "f" * 64, repository=repo)
    assert no_prefix["aws:s3:arn"] == "arn:aws:s3:::abc/sha256:" + "f" * 64


def test_context_rejects_bad_input_with_field_named() -> None:
    with pytest.raises(ValidationError, match="key"):
        EncryptionContext({"\ud800": "x"})
    with pytest.raises(ValidationError, match="value"):
        EncryptionContext({"k": 1})  # type: ignore[dict-item]
    with pytest.raises(ValidationError, match="65535"):
        EncryptionContext({f"k{i}": "v" * 1000 for i in range(70)})


def test_context_deserialize_is_liberal_but_strict_on_structure() -> None:
    unsorted = b"\x00\x02\x00\x01b\x00\x012\x00\x01a\x00\x011"
    assert EncryptionContext.deserialize(unsorted) == {"a": "1", "b": "2"}
    for bad in [
        b"\x00",
        b"\x00\x00",
        b"\x00\x01\x00\x05ab",
        b"\x00\x02\x00\x01a\x00\x011\x00\x01a\x00\x012",
        b"\x00\x01\x00\x01a\x00\x011extra",
        b"\x00\x01\x00\x01\xff\x00\x011",
    ]:
        with pytest.raises(MessageFormatError):
            EncryptionContext.deserialize(bad)


def test_context_is_an_immutable_mapping() -> None:
    ctx = EncryptionContext({"a": "1"})
    assert ctx == {"a": "1"} and ctx != {"a": "1", "b": "2"} and ctx != {"A": "1"}
    assert hash(ctx) == hash(EncryptionContext({"a": "1"}))
    with pytest.raises(TypeError):
        ctx["b"] = "2"  # type: ignore[index]
    assert ctx.union({"b": "2"}) == {"a": "1", "b": "2"}
    with pytest.raises(ValidationError):
        ctx.union({"a": "other"})
    assert ctx.union({"b": "2"}).is_superset_of(ctx)


@given(st.dictionaries(st.text(max_size=20), st.text(max_size=40), max_size=8))
def test_context_round_trips(pairs: dict[str, str]) -> None:
    try:
        ctx = EncryptionContext(pairs)
    except ValidationError:
        return  # lone surrogates: rejected with a clear error, tested above
    assert EncryptionContext.deserialize(ctx.serialize()) == ctx
    assert dict(ctx) == pairs


# --------------------------------------------------------------------------- configuration


def test_configuration_rules() -> None:
    assert EncryptionConfiguration().encryption_type is EncryptionType.AES256
    kms = EncryptionConfiguration.from_api({"encryptionType": "KMS", "kmsKey": "alias/my-key"})
    assert kms.kms_key == AliasName("alias/my-key")
    assert kms.to_api() == {"encryptionType": "KMS", "kmsKey": "alias/my-key"}
    assert EncryptionConfiguration.from_api({"encryptionType": "KMS"}).kms_key is None
    with pytest.raises(InvalidParameterError, match="kmsKey"):
        EncryptionConfiguration(encryption_type=EncryptionType.AES256, kms_key=KEY_UUID)
    with pytest.raises(InvalidParameterError, match="encryptionType"):
        EncryptionConfiguration.from_api({"encryptionType": "FOO"})
    with pytest.raises(InvalidParameterError):
        EncryptionConfiguration.from_api({"encryptionType": "KMS", "kmsKey": "nonsense key"})
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        kms.encryption_type = EncryptionType.AES256  # type: ignore[misc]


# --------------------------------------------------------------------------- errors


def test_errors_carry_codes_and_refine_builtins() -> None:
    assert issubclass(ValidationError, ValueError) and issubclass(NotFoundError, LookupError)
    assert issubclass(AccessDeniedError, PermissionError)
    assert NotFoundError.code == "NotFoundException"
    err = error_for_code("DisabledException", "arn:aws:kms:us-east-1:111122223333:key/x is disabled.")
    assert type(err) is DisabledError and err.code == "DisabledException"
    assert type(error_for_code("InvalidCiphertextException", "m")) is InvalidCiphertextError
    odd = error_for_code("SomethingNewException", "m")
    assert type(odd) is KmsError and odd.code == "SomethingNewException"
    assert isinstance(odd, EcrCryptError)


def test_grants_not_retired_message_is_ecrs() -> None:
    err = GrantsNotRetiredError(repository_name="app", kms_key="arn:aws:kms:us-east-1:111122223333:key/k")
    assert str(err) == (
        "The repository [app] has been deleted successfully but the grants created by the kmsKey "
        "[arn:aws:kms:us-east-1:111122223333:key/k] failed to be retired"
    )
    assert err.code == "KmsException"


def test_arn_parts_must_be_values_not_strings() -> None:
    with pytest.raises(ValidationError, match=r"RepositoryArn\.region must be a Region"):
        RepositoryArn(region="us-east-1", account=AccountId("123456789012"), name=RepositoryName("ab"))  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"KeyArn\.key_id must be a KeyId"):
        KeyArn(region=Region("us-east-1"), account=AccountId("123456789012"), key_id=KEY_UUID)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"S3ObjectArn\.bucket"):
        S3ObjectArn(bucket="abc", key="k")  # type: ignore[arg-type]


@pytest.mark.parametrize("pairs", ["k=v", [("k", "v")], 7, b"kv"])
def test_an_encryption_context_from_a_non_mapping_is_a_validation_error(pairs: object) -> None:
    # Found by fuzzing (fuzz/corpus/api_shapes/crash-cda94847...): a decoded JSON request's str made the
    # constructor raise AttributeError.
    with pytest.raises(ValidationError, match="mapping of str to str"):
        EncryptionContext(pairs)  # type: ignore[arg-type]


@pytest.mark.parametrize("kms_key", [5, 1.5, ["alias/ecr"], {"id": "x"}, True])
def test_a_kms_key_that_is_not_a_str_or_key_reference_is_refused(kms_key: object) -> None:
    # Found by fuzzing (fuzz/api_shapes): kmsKey 5 was accepted and came back from to_api as "5".
    with pytest.raises(InvalidParameterError, match="kmsKey must be a str"):
        EncryptionConfiguration.from_api({"encryptionType": "KMS", "kmsKey": kms_key})
    key = KeyArn.parse("arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab")
    assert EncryptionConfiguration(encryption_type="KMS", kms_key=key).kms_key == key


@pytest.mark.parametrize("data", ["AES256", ["encryptionType"], 3])
def test_an_encryption_configuration_that_is_not_a_mapping_is_refused(data: object) -> None:
    # Found with fuzz/api_shapes: a list naming the field raised TypeError.
    with pytest.raises(InvalidParameterError, match="must be a mapping"):
        EncryptionConfiguration.from_api(data)  # type: ignore[arg-type]
