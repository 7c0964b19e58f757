"""Boto3Kms: the adapter's own promises (error translation, pass-through, conversion, no leaks).

The behaviour of KMS itself is in tests/test_conformance_kms.py; here a recording fake
client checks what the adapter sends, and the moto server checks what it receives back.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

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
from ecrcrypt.kms.aws import Boto3Kms


class _Recorder:
    """A stand-in boto3 client that records calls and answers from a script."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._answers = answers

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)

        def call(**kwargs: Any) -> Any:
            self.calls.append((name, kwargs))
            answer = self._answers.get(name, {})
            if isinstance(answer, BaseException):
                raise answer
            return answer

        return call


def _client_error(code: str, message: str, operation: str = "Decrypt") -> Exception:
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


# --------------------------------------------------------------------------- construction


def test_requires_a_kms_client_keyword_only() -> None:
    with pytest.raises(TypeError):
        Boto3Kms(_Recorder({}))  # type: ignore[call-arg]
    with pytest.raises(errors.ValidationError):
        Boto3Kms(client=object())


def test_is_a_kms(kms_client: Any) -> None:
    assert isinstance(Boto3Kms(client=kms_client), Kms)


def test_repr_names_endpoint_not_credentials(kms_client: Any, moto_endpoint: str) -> None:
    text = repr(Boto3Kms(client=kms_client))
    assert moto_endpoint in text
    assert "testing" not in text  # the dummy access key and secret


# --------------------------------------------------------------------------- requests


def test_grant_tokens_are_passed_through_and_empty_fields_omitted() -> None:
    rec = _Recorder(
        {
            "generate_data_key": {"CiphertextBlob": b"c", "Plaintext": b"p" * 32, "KeyId": ARN},
            "decrypt": {"KeyId": ARN, "Plaintext": b"p" * 32},
            "describe_key": {"KeyMetadata": {"KeyId": "k", "Arn": ARN, "KeyState": "Enabled"}},
        }
    )
    kms = Boto3Kms(client=rec)
    kms.generate_data_key(key_id=ARN, encryption_context={"a": "b"}, key_spec=DataKeySpec.AES_256, grant_tokens=["t1"])
    kms.decrypt(ciphertext_blob=b"c", key_id=ARN, grant_tokens=("t1", "t2"))
    kms.describe_key(key_id=ARN)
    assert rec.calls == [
        (
            "generate_data_key",
            {"KeyId": ARN, "EncryptionContext": {"a": "b"}, "KeySpec": "AES_256", "GrantTokens": ["t1"]},
        ),
        ("decrypt", {"CiphertextBlob": b"c", "KeyId": ARN, "GrantTokens": ["t1", "t2"]}),
        ("describe_key", {"KeyId": ARN}),
    ]


def test_create_grant_request_shape() -> None:
    rec = _Recorder({"create_grant": {"GrantToken": "tok", "GrantId": "gid"}})
    resp = Boto3Kms(client=rec).create_grant(
        key_id=ARN,
        grantee_principal="arn:aws:iam::123456789012:role/ecr",
        operations=[GrantOperation.GENERATE_DATA_KEY, "Decrypt"],
        retiring_principal="arn:aws:iam::123456789012:role/ecr",
        constraints=GrantConstraints(encryption_context_subset={"aws:ecr:arn": "arn:x"}),
        grant_tokens=["prev"],
        name="repo-grant",
    )
    assert resp.grant_id == "gid" and resp.grant_token == "tok"
    assert "tok" not in repr(resp)
    assert rec.calls == [
        (
            "create_grant",
            {
                "KeyId": ARN,
                "GranteePrincipal": "arn:aws:iam::123456789012:role/ecr",
                "Operations": ["GenerateDataKey", "Decrypt"],
                "RetiringPrincipal": "arn:aws:iam::123456789012:role/ecr",
                "Constraints": {"EncryptionContextSubset": {"aws:ecr:arn": "arn:x"}},
                "GrantTokens": ["prev"],
                "Name": "repo-grant",
            },
        )
    ]


def test_retire_grant_needs_a_token_or_key_and_id() -> None:
    rec = _Recorder({})
    kms = Boto3Kms(client=rec)
    with pytest.raises(errors.ValidationError):
        kms.retire_grant(grant_id="g")
    kms.retire_grant(grant_token="tok")
    kms.retire_grant(key_id=ARN, grant_id="g")
    assert rec.calls == [("retire_grant", {"GrantToken": "tok"}), ("retire_grant", {"KeyId": ARN, "GrantId": "g"})]


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        ("NotFoundException", errors.NotFoundError),
        ("DisabledException", errors.DisabledError),
        ("KMSInvalidStateException", errors.KmsInvalidStateError),
        ("IncorrectKeyException", errors.IncorrectKeyError),
        ("InvalidCiphertextException", errors.InvalidCiphertextError),
        ("AccessDeniedException", errors.AccessDeniedError),
        ("LimitExceededException", errors.LimitExceededError),
        ("InvalidGrantTokenException", errors.InvalidGrantTokenError),
        ("InvalidGrantIdException", errors.InvalidGrantIdError),
        ("ValidationException", errors.ValidationError),
        ("InvalidArnException", errors.InvalidArnError),
    ],
)
def test_client_error_becomes_the_ecrcrypt_class(code: str, cls: type[errors.EcrCryptError]) -> None:
    original = _client_error(code, "arn:aws:kms:...:key/x is disabled.")
    kms = Boto3Kms(client=_Recorder({"decrypt": original}))
    with pytest.raises(cls) as info:
        kms.decrypt(ciphertext_blob=b"x")
    assert type(info.value) is cls
    assert info.value.code == code
    assert info.value.message == "arn:aws:kms:...:key/x is disabled."
    assert info.value.__cause__ is original


def test_unknown_code_keeps_the_code() -> None:
    kms = Boto3Kms(client=_Recorder({"decrypt": _client_error("KMSBrandNewException", "new")}))
    with pytest.raises(errors.KmsError) as info:
        kms.decrypt(ciphertext_blob=b"x")
    assert type(info.value) is errors.KmsError
    assert info.value.code == "KMSBrandNewException"


def test_other_exceptions_pass_unchanged() -> None:
    boom = RuntimeError("socket closed")
    kms = Boto3Kms(client=_Recorder({"decrypt": boom}))
    with pytest.raises(RuntimeError) as info:
        kms.decrypt(ciphertext_blob=b"x")
    assert info.value is boom


@pytest.mark.moto
def test_botocore_param_validation_becomes_validation_error(kms_client: Any) -> None:
    # botocore enforces `min` constraints client-side: RotationPeriodInDays >= 90.
    kms = Boto3Kms(client=kms_client)
    key = kms.create_key()
    with pytest.raises(errors.ValidationError):
        kms.enable_key_rotation(key_id=key.key_id, rotation_period_in_days=30)


@pytest.mark.moto
def test_real_client_errors_are_translated(kms_client: Any) -> None:
    kms = Boto3Kms(client=kms_client)
    with pytest.raises(errors.NotFoundError) as info:
        kms.describe_key(key_id="alias/does-not-exist")
    assert info.value.code == "NotFoundException"
    assert type(info.value.__cause__).__name__ == "NotFoundException"  # botocore's modelled ClientError


# --------------------------------------------------------------------------- responses


@pytest.mark.moto
def test_responses_are_converted(kms_client: Any) -> None:
    kms = Boto3Kms(client=kms_client)
    meta = kms.create_key(description="layers")
    assert meta.key_state is KeyState.ENABLED
    assert meta.key_manager is KeyManager.CUSTOMER
    assert meta.enabled is True
    assert meta.description == "layers"
    assert isinstance(meta.creation_date, datetime)
    assert meta.arn.endswith(meta.key_id)
    dk = kms.generate_data_key(key_id=meta.key_id, key_spec="AES_256", encryption_context={"k": "v"})
    assert dk.key_id == meta.arn  # KMS returns the key ARN whatever form the request used
    assert len(dk.plaintext) == 32
    assert dk.plaintext.hex() not in repr(dk)
    out = kms.decrypt(ciphertext_blob=dk.ciphertext_blob, encryption_context={"k": "v"})
    assert out.plaintext == dk.plaintext
    assert out.key_id == meta.arn


@pytest.mark.moto
def test_grant_listing_fills_what_moto_omits(kms_client: Any) -> None:
    kms = Boto3Kms(client=kms_client)
    meta = kms.create_key()
    kms.create_grant(
        key_id=meta.key_id,
        grantee_principal="arn:aws:iam::123456789012:role/pusher",
        operations=[GrantOperation.DECRYPT],
        constraints=GrantConstraints(encryption_context_subset={"aws:ecr:arn": "arn:aws:ecr:r"}),
    )
    (grant,) = kms.list_grants(key_id=meta.key_id).grants
    assert grant.operations == (GrantOperation.DECRYPT,)
    assert grant.constraints == GrantConstraints(encryption_context_subset={"aws:ecr:arn": "arn:aws:ecr:r"})
    assert grant.issuing_account == "arn:aws:iam::123456789012:root"
    assert grant.grantee_principal == "arn:aws:iam::123456789012:role/pusher"


@pytest.mark.moto
def test_schedule_deletion_reports_state(kms_client: Any) -> None:
    kms = Boto3Kms(client=kms_client)
    meta = kms.create_key()
    resp = kms.schedule_key_deletion(key_id=meta.key_id, pending_window_in_days=7)
    assert resp.key_state is KeyState.PENDING_DELETION
    assert resp.key_id == meta.arn
    assert resp.pending_window_in_days == 7
    assert kms.cancel_key_deletion(key_id=meta.key_id).key_id == meta.arn
    assert kms.describe_key(key_id=meta.arn).key_state is KeyState.DISABLED


def test_importing_the_adapters_loads_no_boto3() -> None:
    import subprocess
    import sys

    code = (
        "import sys, ecrcrypt, ecrcrypt.kms.aws, ecrcrypt.store.s3, ecrcrypt.store.filesystem; "
        "bad = [m for m in ('boto3', 'botocore') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
