"""Random access: plaintext ranges read only the header, the final frame and the covering frames."""

from __future__ import annotations

import io
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecrcrypt import DecryptPolicy, encrypt
from ecrcrypt.errors import (
    AuthenticationError,
    EncryptionContextMismatchError,
    MessageFormatError,
    MessageLimitError,
    ValidationError,
)
from ecrcrypt.format import frames as _frames
from ecrcrypt.providers.raw_aes import RawAesKeyProvider
from ecrcrypt.streams.ranges import FileRangeSource, RandomAccessSource, decrypt_range

PROVIDER = RawAesKeyProvider(key_namespace="ecrcrypt-test", key_name="k", wrapping_key=os.urandom(32))
CTX = {"aws:ecr:arn": "arn:aws:ecr:us-east-1:123456789012:repository/app"}
F = 64


class Recording:
    """A random-access source over bytes that records every read."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.reads: list[tuple[int, int]] = []

    def size(self) -> int:
        return len(self.data)

    def read_at(self, offset: int, length: int) -> bytes:
        self.reads.append((offset, length))
        return self.data[offset : offset + length]


def _message(length: int) -> tuple[bytes, bytes]:
    plaintext = os.urandom(length)
    return plaintext, encrypt(plaintext, provider=PROVIDER, context=CTX, frame_length=F)


def test_recording_is_a_random_access_source() -> None:
    assert isinstance(Recording(b""), RandomAccessSource)


@pytest.mark.parametrize("length", [0, 1, F, F + 1, 3 * F, 3 * F + 17])
def test_every_range_on_a_grid(length: int) -> None:
    plaintext, ct = _message(length)
    points = sorted({0, 1, F - 1, F, F + 1, 2 * F, length - 1, length, length + 1, length + 100} - {-1})
    for offset in points:
        for size in (0, 1, F - 1, F, F + 1, 2 * F + 3, length + 200):
            got = decrypt_range(Recording(ct), offset, size, provider=PROVIDER, context=CTX)
            assert got == plaintext[offset : offset + size], (offset, size)


@given(st.data())
def test_ranges_property(data: st.DataObject) -> None:
    length = data.draw(st.integers(0, 6 * F))
    plaintext, ct = _message(length)
    offset = data.draw(st.integers(0, length + 5))
    size = data.draw(st.integers(0, length + 5))
    assert (
        decrypt_range(Recording(ct), offset, size, provider=PROVIDER, context=CTX) == plaintext[offset : offset + size]
    )


def test_reads_only_what_is_needed() -> None:
    plaintext, ct = _message(20 * F + 5)
    body_len = _frames.body_length(len(plaintext), F)
    header_len = len(ct) - body_len
    source = Recording(ct)
    assert decrypt_range(source, 10 * F + 3, 5, provider=PROVIDER, context=CTX) == plaintext[10 * F + 3 : 10 * F + 8]
    step = F + 32
    # Header (one block, capped at the object size), final frame, frame 11 only.
    assert source.reads[0][0] == 0
    assert (header_len + 20 * step, 5 + 40) in source.reads
    assert (header_len + 10 * step, step) in source.reads
    assert sum(n for off, n in source.reads[1:]) == 45 + step


def _tamper(ct: bytes, plaintext_len: int, frame_index: int) -> bytes:
    header_len = len(ct) - _frames.body_length(plaintext_len, F)
    bad = bytearray(ct)
    bad[header_len + frame_index * (F + 32) + 20] ^= 1
    return bytes(bad)


def test_tampered_frames_in_and_out_of_the_range() -> None:
    plaintext, ct = _message(5 * F + 9)
    bad = _tamper(ct, len(plaintext), 2)
    with pytest.raises(AuthenticationError):
        decrypt_range(Recording(bad), 2 * F + 1, 3, provider=PROVIDER, context=CTX)
    # Frames outside the range are not read, hence not checked...
    assert decrypt_range(Recording(bad), 0, F, provider=PROVIDER, context=CTX) == plaintext[:F]
    # ...except the final frame, always verified.
    bad_final = _tamper(ct, len(plaintext), 5)
    with pytest.raises(AuthenticationError):
        decrypt_range(Recording(bad_final), 0, 1, provider=PROVIDER, context=CTX)
    bad_header = bytearray(ct)
    bad_header[10] ^= 1
    with pytest.raises(AuthenticationError):
        decrypt_range(Recording(bytes(bad_header)), 0, 1, provider=PROVIDER, context=CTX)


def test_truncated_or_extended_messages_are_detected() -> None:
    plaintext, ct = _message(3 * F + 10)
    header_len = len(ct) - _frames.body_length(len(plaintext), F)
    for cut in (1, 10, 50, F + 32, F + 32 + 50):
        with pytest.raises(AuthenticationError):
            decrypt_range(Recording(ct[:-cut]), 0, 1, provider=PROVIDER, context=CTX)
    # Dropping whole trailing frames gives a well-formed size: the final-frame check catches it.
    without_last_regular = ct[: header_len + 2 * (F + 32)] + ct[header_len + 3 * (F + 32) :]
    with pytest.raises(AuthenticationError):
        decrypt_range(Recording(without_last_regular), 0, 1, provider=PROVIDER, context=CTX)
    with pytest.raises(AuthenticationError):
        decrypt_range(Recording(ct + b"\x00"), 0, 1, provider=PROVIDER, context=CTX)


def test_context_policy_and_arguments() -> None:
    _, ct = _message(2 * F)
    with pytest.raises(EncryptionContextMismatchError):
        decrypt_range(Recording(ct), 0, 1, provider=PROVIDER, context={"aws:ecr:arn": "other"})
    with pytest.raises(MessageLimitError):
        decrypt_range(Recording(ct), 0, 1, provider=PROVIDER, context=CTX, policy=DecryptPolicy(max_body_size=F))
    for offset, length in ((-1, 1), (0, -1)):
        with pytest.raises(ValidationError):
            decrypt_range(Recording(ct), offset, length, provider=PROVIDER, context=CTX)


def test_non_framed_or_signed_messages_are_refused() -> None:
    esdk = pytest.importorskip("aws_encryption_sdk")
    from aws_encryption_sdk.identifiers import CommitmentPolicy, EncryptionKeyType, WrappingAlgorithm
    from aws_encryption_sdk.internal.crypto.wrapping_keys import WrappingKey
    from aws_encryption_sdk.key_providers.raw import RawMasterKey

    key = os.urandom(32)
    theirs = RawMasterKey(
        provider_id="ns",
        key_id=b"k",
        wrapping_key=WrappingKey(
            wrapping_algorithm=WrappingAlgorithm.AES_256_GCM_IV12_TAG16_NO_PADDING,
            wrapping_key=key,
            wrapping_key_type=EncryptionKeyType.SYMMETRIC,
        ),
    )
    ours = RawAesKeyProvider(key_namespace="ns", key_name="k", wrapping_key=key)
    client = esdk.EncryptionSDKClient(commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
    for kwargs in ({}, {"frame_length": 0}):
        ct, _ = client.encrypt(source=b"x" * 100, key_provider=theirs, encryption_context=CTX, **kwargs)
        with pytest.raises(MessageFormatError):
            decrypt_range(Recording(ct), 0, 1, provider=ours, context=CTX)


def test_file_range_source(tmp_path: object) -> None:
    plaintext, ct = _message(4 * F + 3)
    source = FileRangeSource(io.BytesIO(ct))
    assert source.size() == len(ct)
    assert decrypt_range(source, F - 2, F + 4, provider=PROVIDER, context=CTX) == plaintext[F - 2 : 2 * F + 2]
