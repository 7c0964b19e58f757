"""One-shot messages: layout, round trips, tampering, malicious headers, policy."""

from __future__ import annotations

import io
import os
import struct
import tracemalloc
from collections.abc import Callable, Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecrcrypt import DEFAULT_FRAME_LENGTH, DecryptPolicy, decrypt, encrypt
from ecrcrypt.context import EncryptionContext
from ecrcrypt.errors import (
    AuthenticationError,
    CommitmentPolicyError,
    DataKeyDecryptionError,
    EncryptionContextMismatchError,
    InvalidCiphertextError,
    MessageFormatError,
    MessageLimitError,
    UnsupportedAlgorithmError,
    ValidationError,
)
from ecrcrypt.format import frames as _frames
from ecrcrypt.format.header import header_length_v2
from ecrcrypt.format.suites import SUITES, Kdf, Signature, suite_for_id
from ecrcrypt.keyprovider import DataKey, EncryptedDataKey
from ecrcrypt.providers.raw_aes import RawAesKeyProvider
from ecrcrypt.strategies import encryption_contexts, plaintexts

KEY = bytes(range(32))
PROVIDER = RawAesKeyProvider(key_namespace="ecrcrypt-test", key_name="wrapping-key", wrapping_key=KEY)
CTX = {"aws:ecr:arn": "arn:aws:ecr:us-east-1:123456789012:repository/app", "aws:s3:arn": "arn:aws:s3:::b/k"}
F = 64


def _msg(plaintext: bytes, frame_length: int = F, context: dict[str, str] | None = None) -> bytes:
    return encrypt(plaintext, provider=PROVIDER, context=CTX if context is None else context, frame_length=frame_length)


# ------------------------------------------------------------------------------ suites / frames


def test_the_eleven_suites() -> None:
    assert sorted(SUITES) == [0x0014, 0x0046, 0x0078, 0x0114, 0x0146, 0x0178, 0x0214, 0x0346, 0x0378, 0x0478, 0x0578]
    assert {s.id for s in SUITES.values() if s.message_version == 2} == {0x0478, 0x0578}
    assert all(s.committing == (s.message_version == 2) for s in SUITES.values())
    assert SUITES[0x0578].signature is Signature.ECDSA_P384_SHA384
    assert SUITES[0x0214].signature is Signature.ECDSA_P256_SHA256
    assert SUITES[0x0046].kdf is Kdf.IDENTITY and SUITES[0x0046].key_length == 24
    with pytest.raises(UnsupportedAlgorithmError):
        suite_for_id(0x0478, message_version=1)
    with pytest.raises(UnsupportedAlgorithmError):
        suite_for_id(0x0000, message_version=2)


@given(st.integers(0, 10_000), st.sampled_from([16, 64, 100, 4096]))
def test_body_length_is_invertible(length: int, frame_length: int) -> None:
    body = _frames.body_length(length, frame_length)
    assert _frames.plaintext_length(body, frame_length) == length


def test_frame_counts_end_with_a_full_final_frame() -> None:
    assert _frames.frame_counts(0, 64) == (0, 0)
    assert _frames.frame_counts(64, 64) == (0, 64)
    assert _frames.frame_counts(128, 64) == (1, 64)
    assert _frames.frame_counts(129, 64) == (2, 1)
    # Another SDK's empty final frame after a full frame still has a unique reading.
    assert _frames.plaintext_length(64 + 32 + 40, 64) == 64
    with pytest.raises(MessageFormatError):
        _frames.split_body(39, 64)
    with pytest.raises(MessageFormatError):
        _frames.split_body(40 + 65, 64)


# ------------------------------------------------------------------------------ layout


def test_header_layout_is_esdk_v2_0478_framed() -> None:
    ct = _msg(b"hello", frame_length=4096)
    ec = EncryptionContext(CTX).serialize()
    assert ct[0] == 2 and ct[1:3] == b"\x04\x78"
    assert struct.unpack_from(">H", ct, 35)[0] == len(ec)
    assert ct[37 : 37 + len(ec)] == ec
    pos = 37 + len(ec)
    assert struct.unpack_from(">H", ct, pos)[0] == 1  # one EDK
    pos += 2
    (pid_len,) = struct.unpack_from(">H", ct, pos)
    assert ct[pos + 2 : pos + 2 + pid_len] == b"ecrcrypt-test"
    pos += 2 + pid_len
    (info_len,) = struct.unpack_from(">H", ct, pos)
    info = ct[pos + 2 : pos + 2 + info_len]
    assert info[:-20] == b"wrapping-key" and info[-20:-12] == struct.pack(">II", 128, 12)
    pos += 2 + info_len
    (ct_len,) = struct.unpack_from(">H", ct, pos)
    assert ct_len == 48
    pos += 2 + ct_len
    assert ct[pos] == 2 and struct.unpack_from(">I", ct, pos + 1)[0] == 4096
    header_end = pos + 5 + 32 + 16
    edk = EncryptedDataKey(provider_id="ecrcrypt-test", provider_info=info, ciphertext=b"x" * 48)
    assert header_length_v2(EncryptionContext(CTX), [edk]) == header_end
    # Final frame: marker, seq 1, IV = 0^8 || 1, length 5, 5 + 16 bytes.
    assert ct[header_end : header_end + 24] == b"\xff" * 4 + b"\x00\x00\x00\x01" + bytes(8) + b"\x00\x00\x00\x01" + (
        b"\x00\x00\x00\x05"
    )
    assert len(ct) == header_end + 40 + 5


def test_default_frame_length() -> None:
    assert DEFAULT_FRAME_LENGTH % 16 == 0 and DEFAULT_FRAME_LENGTH <= 2**31 - 1


@pytest.mark.parametrize("frame_length", [0, 15, 17, 100, 2**31, -16])
def test_frame_length_is_validated_on_encrypt(frame_length: int) -> None:
    with pytest.raises(ValidationError):
        _msg(b"x", frame_length=frame_length)


def test_reserved_context_keys_are_refused_on_encrypt() -> None:
    with pytest.raises(ValidationError):
        _msg(b"x", context={"aws-crypto-public-key": "x"})


# ------------------------------------------------------------------------------ round trips


@given(plaintexts(frame_length=F, max_frames=4), encryption_contexts(max_pairs=4))
def test_round_trip(plaintext: bytes, context: EncryptionContext) -> None:
    ct = _msg(plaintext, context=dict(context))
    assert len(ct) == header_length_v2(context, [_edk_of(ct, context)]) + _frames.body_length(len(plaintext), F)
    assert decrypt(ct, provider=PROVIDER, context=context) == plaintext
    assert decrypt(ct, provider=PROVIDER, context=None) == plaintext


def _edk_of(ct: bytes, context: EncryptionContext) -> EncryptedDataKey:
    policy = DecryptPolicy()
    return policy.parse_header(io.BytesIO(ct).read).encrypted_data_keys[0]


def test_round_trip_of_bytearray_and_memoryview() -> None:
    data = os.urandom(3 * F + 7)
    for value in (bytearray(data), memoryview(data)):
        assert decrypt(_msg(value), provider=PROVIDER, context=CTX) == data  # type: ignore[arg-type]


def test_message_ids_and_data_keys_are_fresh() -> None:
    a, b = _msg(b"same"), _msg(b"same")
    assert a[3:35] != b[3:35] and a != b


# ------------------------------------------------------------------------------ tampering


def _fields(ct: bytes) -> list[tuple[str, int, int]]:
    """(name, start, end) of every header field of a one-EDK v2 message."""
    (ec_len,) = struct.unpack_from(">H", ct, 35)
    pos = 37 + ec_len
    out = [("version", 0, 1), ("suite", 1, 3), ("message id", 3, 35), ("context", 35, pos), ("edks", pos, 0)]
    pos += 2
    for _ in range(3):
        (n,) = struct.unpack_from(">H", ct, pos)
        pos += 2 + n
    out[-1] = ("edks", out[-1][1], pos)
    out += [("content type", pos, pos + 1), ("frame length", pos + 1, pos + 5)]
    out += [("commit key", pos + 5, pos + 37), ("header tag", pos + 37, pos + 53), ("body", pos + 53, len(ct))]
    return out


# Each header field fails in a way decided here; the body always fails opaquely.
EXPECTED_FLIP: dict[str, tuple[type[Exception], ...]] = {
    "version": (UnsupportedAlgorithmError,),
    # 0x0478 -> 0x0578 names the signed suite, whose context lacks the public key.
    "suite": (UnsupportedAlgorithmError, MessageFormatError),
    "message id": (AuthenticationError,),
    # A context flip changes a key or value (mismatch), breaks the structure (format),
    # or alters the length prefix (format or a mismatch/limit further on).
    "context": (EncryptionContextMismatchError, MessageFormatError, MessageLimitError),
    "edks": (DataKeyDecryptionError, MessageFormatError, MessageLimitError, AuthenticationError),
    "content type": (MessageFormatError,),
    "frame length": (AuthenticationError, MessageLimitError, MessageFormatError),
    "commit key": (AuthenticationError,),
    "header tag": (AuthenticationError,),
    "body": (AuthenticationError,),
}


def test_every_single_bit_flip_fails() -> None:
    ct = _msg(os.urandom(F + 10))
    fields = _fields(ct)
    assert fields[-1][2] - fields[-1][1] == (F + 32) + (10 + 40)
    for name, start, end in fields:
        allowed = EXPECTED_FLIP[name]
        for i in range(start, end):
            for bit in range(8):
                bad = bytearray(ct)
                bad[i] ^= 1 << bit
                with pytest.raises(InvalidCiphertextError) as info:
                    decrypt(bytes(bad), provider=PROVIDER, context=CTX)
                assert type(info.value) in allowed, (name, i, bit, info.value)


def test_every_truncation_fails() -> None:
    ct = _msg(os.urandom(2 * F + 3))
    header_end = _fields(ct)[-1][1]
    for n in range(len(ct)):
        with pytest.raises(InvalidCiphertextError) as info:
            decrypt(ct[:n], provider=PROVIDER, context=CTX)
        # The header is unreadable before its end (format); after it, the body is cut (opaque).
        assert type(info.value) is (MessageFormatError if n < header_end else AuthenticationError), n


def _split_frames(ct: bytes, frame_length: int = F) -> tuple[bytes, list[bytes], bytes]:
    header_end = _fields(ct)[-1][1]
    body = ct[header_end:]
    step = frame_length + 32
    regular, _ = _frames.split_body(len(body), frame_length)
    frames = [body[i * step : (i + 1) * step] for i in range(regular)]
    return ct[:header_end], frames, body[regular * step :]


def test_frame_swap_duplicate_drop_and_trailing_bytes_fail() -> None:
    ct = _msg(os.urandom(3 * F + 5))
    head, frames, final = _split_frames(ct)
    assert len(frames) == 3
    cases = {
        "swap": head + frames[1] + frames[0] + frames[2] + final,
        "duplicate": head + frames[0] + frames[0] + frames[1] + frames[2] + final,
        "drop": head + frames[0] + frames[2] + final,
        "drop final": head + b"".join(frames),
        "trailing": ct + b"\x00",
        "two finals": ct + final,
        "splice from another message": head
        + _split_frames(_msg(os.urandom(3 * F + 5)))[1][0]
        + ct[len(head) + F + 32 :],
    }
    for name, bad in cases.items():
        with pytest.raises(AuthenticationError):
            decrypt(bad, provider=PROVIDER, context=CTX)
        assert name


# ------------------------------------------------------------------------------ context and keys


class SpyProvider:
    def __init__(self) -> None:
        self.calls = 0

    def generate_data_key(self, context: EncryptionContext, *, length: int = 32) -> DataKey:
        raise AssertionError("not used")

    def encrypt_data_key(self, plaintext_key: bytes, context: EncryptionContext) -> tuple[EncryptedDataKey, ...]:
        raise AssertionError("not used")

    def decrypt_data_key(self, encrypted_data_keys: Sequence[EncryptedDataKey], context: EncryptionContext) -> bytes:
        self.calls += 1
        return PROVIDER.decrypt_data_key(encrypted_data_keys, context)


def test_context_is_compared_before_the_provider_is_called() -> None:
    ct = _msg(b"data")
    spy = SpyProvider()
    other = dict(CTX, **{"aws:s3:arn": "arn:aws:s3:::b/other"})
    with pytest.raises(EncryptionContextMismatchError):
        decrypt(ct, provider=spy, context=other)
    missing = {"aws:ecr:arn": CTX["aws:ecr:arn"]}
    with pytest.raises(EncryptionContextMismatchError):
        decrypt(ct, provider=spy, context=missing)
    assert spy.calls == 0
    assert decrypt(ct, provider=spy, context=CTX) == b"data"
    assert spy.calls == 1


def test_extra_expected_pairs_are_required_context() -> None:
    # Pairs the header does not store are the ESDK's required context: they reach the
    # provider (raw AES: AAD) and the header tag, so an unexpected one fails there.
    ct = _msg(b"data")
    with pytest.raises(DataKeyDecryptionError):
        decrypt(ct, provider=PROVIDER, context=dict(CTX, extra="1"))


def test_wrong_wrapping_key_or_identity_fails() -> None:
    ct = _msg(b"data")
    for provider in (
        RawAesKeyProvider(key_namespace="ecrcrypt-test", key_name="wrapping-key", wrapping_key=os.urandom(32)),
        RawAesKeyProvider(key_namespace="other", key_name="wrapping-key", wrapping_key=KEY),
        RawAesKeyProvider(key_namespace="ecrcrypt-test", key_name="other", wrapping_key=KEY),
    ):
        with pytest.raises(DataKeyDecryptionError):
            decrypt(ct, provider=provider, context=CTX)


# ------------------------------------------------------------------------------ malicious headers


class CountingReader(io.RawIOBase):
    """A source that records the largest read and the total bytes handed out."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)
        self.largest = 0
        self.total = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        self.largest = max(self.largest, n)
        data = self._data.read(n)
        self.total += len(data)
        return data


def _v2_header(
    *,
    suite: int = 0x0478,
    ec: bytes = b"",
    edk_count: int = 1,
    edks: bytes | None = None,
    content: int = 2,
    frame: int = 4096,
) -> bytes:
    if edks is None:
        edks = b"\x00\x01p\x00\x01i\x00\x01c"
    return (
        b"\x02" + suite.to_bytes(2, "big") + bytes(32) + len(ec).to_bytes(2, "big") + ec
        + edk_count.to_bytes(2, "big") + edks + bytes([content]) + frame.to_bytes(4, "big") + bytes(32 + 16)
    )  # fmt: skip


MALICIOUS = {
    "unknown version": (b"\x03" + bytes(100), UnsupportedAlgorithmError),
    "version 0": (b"\x00" + bytes(100), UnsupportedAlgorithmError),
    "unknown suite": (_v2_header(suite=0x0479), UnsupportedAlgorithmError),
    "reserved suite": (_v2_header(suite=0x0000), UnsupportedAlgorithmError),
    "v1 suite in a v2 header": (_v2_header(suite=0x0178), UnsupportedAlgorithmError),
    "v1 without opt-in": (b"\x01\x80\x01\x78" + bytes(100), CommitmentPolicyError),
    "frame length 0": (_v2_header(frame=0), MessageFormatError),
    "frame length over the bound": (_v2_header(frame=2**32 - 1), MessageLimitError),
    "non-framed with a frame length": (_v2_header(content=1, frame=16), MessageFormatError),
    "unknown content type": (_v2_header(content=3), MessageFormatError),
    "no EDK": (_v2_header(edk_count=0, edks=b""), MessageFormatError),
    "65535 EDKs": (_v2_header(edk_count=65535), MessageLimitError),
    "EDK claims 65535 bytes": (_v2_header(edks=b"\xff\xff" + b"x" * 10), MessageFormatError),
    "context claims 65535 bytes": (b"\x02\x04\x78" + bytes(32) + b"\xff\xff" + b"\x00\x01", MessageFormatError),
    "context count 0": (_v2_header(ec=b"\x00\x00"), MessageFormatError),
    "truncated": (b"\x02\x04", MessageFormatError),
    "empty": (b"", MessageFormatError),
}


@pytest.mark.parametrize("name", list(MALICIOUS))
def test_malicious_header(name: str) -> None:
    data, error = MALICIOUS[name]
    source = CountingReader(data)
    tracemalloc.start()
    try:
        with pytest.raises(error) as info:
            DecryptPolicy().parse_header(source.read)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert type(info.value) is error
    assert source.largest <= 0xFFFF
    assert peak < 512 * 1024, peak  # nothing near what the length fields claim
    if name == "65535 EDKs":
        assert source.total == 35 + 2 + 2  # stopped at the count, no EDK read


def test_header_size_cap_stops_reading() -> None:
    edk = b"\x00\x01p" + b"\xff\xff" + bytes(65535) + b"\x00\x01c"
    data = _v2_header(edk_count=4, edks=edk * 4)
    source = CountingReader(data)
    with pytest.raises(MessageLimitError):
        DecryptPolicy(max_header_size=100_000).parse_header(source.read)
    assert source.total < 100_000


def test_malicious_message_fails_in_decrypt_without_calling_the_provider() -> None:
    spy = SpyProvider()
    for data, error in MALICIOUS.values():
        with pytest.raises(error):
            decrypt(data, provider=spy, context=None)
    assert spy.calls == 0


def test_max_body_size_and_edk_policy() -> None:
    ct = _msg(os.urandom(3 * F))
    with pytest.raises(MessageLimitError):
        decrypt(ct, provider=PROVIDER, context=CTX, policy=DecryptPolicy(max_body_size=3 * F - 1))
    assert len(decrypt(ct, provider=PROVIDER, context=CTX, policy=DecryptPolicy(max_body_size=3 * F))) == 3 * F
    with pytest.raises(MessageLimitError):
        decrypt(ct, provider=PROVIDER, context=CTX, policy=DecryptPolicy(max_frame_length=F - 16))


@pytest.mark.parametrize(
    "kwargs",
    [{"max_encrypted_data_keys": 0}, {"max_header_size": -1}, {"max_frame_length": 0}, {"max_body_size": -1}],
)
def test_policy_is_validated(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValidationError):
        DecryptPolicy(**kwargs)  # type: ignore[arg-type]


def test_key_commitment_is_checked_even_when_the_header_tag_verifies() -> None:
    import attrs

    from ecrcrypt.format.message import Sealer

    data_key = os.urandom(32)
    context = EncryptionContext(CTX)
    edks = PROVIDER.encrypt_data_key(data_key, context)
    sealer = Sealer.for_data_key(data_key, F)
    forged = attrs.evolve(sealer, commit_key=os.urandom(32))
    # The forged header is correctly tagged with the content key; only the commit key is wrong.
    body = b"\xff\xff\xff\xff" + struct.pack(">I", 1) + bytes(8) + struct.pack(">II", 1, 0)
    body += sealer.aead.encrypt(bytes(8) + struct.pack(">I", 1), b"", _frames.FrameAad(sealer.message_id).final(1, 0))
    assert decrypt(sealer.header(context, edks) + body, provider=PROVIDER, context=CTX) == b""
    with pytest.raises(AuthenticationError):
        decrypt(forged.header(context, edks) + body, provider=PROVIDER, context=CTX)


def _handmade(
    *, ec_bytes: bytes, iv_of: Callable[[int], bytes], plaintext: bytes, frame_length: int = F
) -> tuple[bytes, bytes]:
    """A message built field by field: raw EC bytes as given, frame IVs from ``iv_of(seq)``."""
    from ecrcrypt.format.message import Sealer

    data_key = os.urandom(32)
    context = EncryptionContext.deserialize(ec_bytes)
    (edk,) = PROVIDER.encrypt_data_key(data_key, context)
    sealer = Sealer.for_data_key(data_key, frame_length)
    pid = edk.provider_id.encode()
    body = b"\x02\x04\x78" + sealer.message_id + struct.pack(">H", len(ec_bytes)) + ec_bytes + b"\x00\x01"
    for field in (pid, edk.provider_info, edk.ciphertext):
        body += struct.pack(">H", len(field)) + field
    body += b"\x02" + struct.pack(">I", frame_length) + sealer.commit_key
    message = body + sealer.aead.encrypt(bytes(12), b"", body)
    aad = _frames.FrameAad(sealer.message_id)
    regular, final = _frames.frame_counts(len(plaintext), frame_length)
    for seq in range(1, regular + 1):
        iv = iv_of(seq)
        chunk = plaintext[(seq - 1) * frame_length : seq * frame_length]
        message += struct.pack(">I", seq) + iv + sealer.aead.encrypt(iv, chunk, aad.regular(seq, frame_length))
    seq = regular + 1
    iv = iv_of(seq)
    message += b"\xff\xff\xff\xff" + struct.pack(">I", seq) + iv + struct.pack(">I", final)
    message += sealer.aead.encrypt(iv, plaintext[regular * frame_length :], aad.final(seq, final))
    return message, ec_bytes


def _all_readers(message: bytes, context: dict[str, str]) -> list[bytes]:
    from ecrcrypt.streams import DecryptingReader, iter_decrypt
    from ecrcrypt.streams.ranges import decrypt_range

    class Source:
        def size(self) -> int:
            return len(message)

        def read_at(self, offset: int, length: int) -> bytes:
            return message[offset : offset + length]

    return [
        decrypt(message, provider=PROVIDER, context=context),
        DecryptingReader(io.BytesIO(message), provider=PROVIDER, context=context).read(),
        b"".join(iter_decrypt([message[i : i + 50] for i in range(0, len(message), 50)], provider=PROVIDER,
                              context=context)),
        decrypt_range(Source(), 0, 10**6, provider=PROVIDER, context=context),
    ]  # fmt: skip


def test_frame_ivs_are_taken_from_the_wire() -> None:
    # Python's commitment KATs carry ffffffffffffffff || seq as frame IV (digest §1.13 item 1).
    plaintext = os.urandom(3 * F + 1)
    message, _ = _handmade(
        ec_bytes=EncryptionContext(CTX).serialize(),
        iv_of=lambda seq: b"\xff" * 8 + struct.pack(">I", seq),
        plaintext=plaintext,
    )
    assert all(out == plaintext for out in _all_readers(message, CTX))


def test_unsorted_stored_context_is_accepted_and_authenticated_as_received() -> None:
    # Pairs serialized out of order (digest §1.13 item 2): parse liberally, tag over the raw bytes.
    pairs = [(b"zeta", b"1"), (b"alpha", b"2")]
    ec = struct.pack(">H", 2) + b"".join(
        struct.pack(">H", len(k)) + k + struct.pack(">H", len(v)) + v for k, v in pairs
    )
    plaintext = os.urandom(F + 5)
    message, _ = _handmade(ec_bytes=ec, iv_of=lambda seq: bytes(8) + struct.pack(">I", seq), plaintext=plaintext)
    assert all(out == plaintext for out in _all_readers(message, {"alpha": "2", "zeta": "1"}))


@pytest.mark.parametrize("name", list(MALICIOUS))
def test_buffer_parser_agrees_with_streaming_parser_on_malicious_headers(name: str) -> None:
    data, error = MALICIOUS[name]
    with pytest.raises(error) as info:
        DecryptPolicy().parse_header_bytes(data)
    assert type(info.value) is error


def test_buffer_parser_agrees_with_streaming_parser_on_every_prefix() -> None:
    ct = _msg(b"x" * 100)
    full = DecryptPolicy().parse_header(io.BytesIO(ct).read)
    assert DecryptPolicy().parse_header_bytes(ct) == full
    assert DecryptPolicy().parse_header_bytes(bytearray(ct)) == full
    for cut in range(full.length):
        prefix = ct[:cut]
        with pytest.raises(MessageFormatError) as streamed:
            DecryptPolicy().parse_header(io.BytesIO(prefix).read)
        with pytest.raises(MessageFormatError) as buffered:
            DecryptPolicy().parse_header_bytes(prefix)
        assert type(streamed.value) is type(buffered.value)
    with pytest.raises(MessageLimitError):
        DecryptPolicy(max_header_size=full.length - 1).parse_header_bytes(ct)


def test_streaming_readers_bound_what_they_must_buffer() -> None:
    """A signed (here: ESDK-written 0x0578) body is held whole until verified: bounded by default."""
    import io

    import aws_encryption_sdk
    from aws_encryption_sdk.identifiers import EncryptionKeyType, WrappingAlgorithm
    from aws_encryption_sdk.internal.crypto.wrapping_keys import WrappingKey
    from aws_encryption_sdk.key_providers.raw import RawMasterKey

    from ecrcrypt.errors import MessageLimitError
    from ecrcrypt.format.message import DecryptPolicy
    from ecrcrypt.providers.raw_aes import RawAesKeyProvider
    from ecrcrypt.streams import DecryptingReader, iter_decrypt

    key = bytes(range(32))
    master = RawMasterKey(
        provider_id="ns",
        key_id=b"name",
        wrapping_key=WrappingKey(WrappingAlgorithm.AES_256_GCM_IV12_TAG16_NO_PADDING, key, EncryptionKeyType.SYMMETRIC),
    )
    client = aws_encryption_sdk.EncryptionSDKClient()
    plaintext = bytes(5000)
    ciphertext, _ = client.encrypt(source=plaintext, key_provider=master, frame_length=1024)
    provider = RawAesKeyProvider(key_namespace="ns", key_name="name", wrapping_key=key)
    small = DecryptPolicy(max_buffered_body_size=1000)
    assert DecryptPolicy().max_buffered_body_size == 64 * 1024 * 1024
    with pytest.raises(MessageLimitError):
        DecryptingReader(io.BytesIO(ciphertext), provider=provider, context=None, policy=small).read()
    with pytest.raises(MessageLimitError):
        list(iter_decrypt([ciphertext], provider=provider, context=None, policy=small))
    roomy = DecryptPolicy(max_buffered_body_size=10_000)
    assert DecryptingReader(io.BytesIO(ciphertext), provider=provider, context=None, policy=roomy).read() == plaintext
