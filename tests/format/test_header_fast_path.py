"""The one-pass parser of whole v2 framed headers agrees with the field-by-field parser everywhere:
same Header for every well-formed input, the same error (type and message) for every malformed one."""

from __future__ import annotations

import io
import os

import attrs
import pytest

from ecrcrypt.context import EncryptionContext
from ecrcrypt.errors import EcrCryptError
from ecrcrypt.format.header import Header, _parse_v2_framed, trusted_edk
from ecrcrypt.format.message import DecryptPolicy
from ecrcrypt.keyprovider import EncryptedDataKey
from ecrcrypt.providers.raw_aes import RawAesKeyProvider
from ecrcrypt.streams.oneshot import encrypt

POLICY = DecryptPolicy()
A = RawAesKeyProvider(key_namespace="ns-a", key_name="key-a", wrapping_key=os.urandom(32))


class _TwoKeys:
    """Two EDKs per message (a second namespace, a non-ASCII one)."""

    def __init__(self) -> None:
        self.b = RawAesKeyProvider(key_namespace="ns-é", key_name="kéy-b", wrapping_key=os.urandom(32))

    def generate_data_key(self, context: EncryptionContext, *, length: int = 32) -> object:
        key = A.generate_data_key(context, length=length)
        second = self.b.encrypt_data_key(key.plaintext, context)
        return attrs.evolve(key, encrypted_data_keys=key.encrypted_data_keys + second)


CONTEXTS = [
    {},
    {"aws:ecr:arn": "arn:aws:ecr:us-east-1:123456789012:repository/app", "aws:s3:arn": "arn:aws:s3:::b/k"},
    {"": "empty key", "a": ""},
    {"ключ": "значение", "z": "1", "Z": "2"},
]


def _messages() -> list[bytes]:
    out = [encrypt(b"x" * n, provider=A, context=c, frame_length=64) for c in CONTEXTS for n in (0, 64, 100)]
    out.append(encrypt(b"two keys", provider=_TwoKeys(), context=CONTEXTS[1]))  # type: ignore[arg-type]
    return out


def _outcome(parse: object, data: bytes) -> Header | tuple[type, str]:
    try:
        return parse(data)  # type: ignore[operator,no-any-return]
    except EcrCryptError as exc:
        return type(exc), str(exc)


def _streamed(data: bytes) -> Header | tuple[type, str]:
    return _outcome(lambda d: POLICY.parse_header(io.BytesIO(d).read), data)


def _buffered(data: bytes) -> Header | tuple[type, str]:
    return _outcome(POLICY.parse_header_bytes, data)


@pytest.mark.parametrize("message", _messages())
def test_the_fast_path_takes_well_formed_headers_and_agrees(message: bytes) -> None:
    fast = _parse_v2_framed(message, POLICY.max_header_size, POLICY.max_encrypted_data_keys, POLICY.max_frame_length)
    assert fast is not None
    assert fast == _streamed(message)
    assert fast.context.serialize() == _streamed(message).context.serialize()  # type: ignore[union-attr]


def test_unsorted_contexts_leave_the_fast_path_and_still_parse() -> None:
    message = encrypt(b"x", provider=A, context={"a": "1", "b": "2"})
    ec = EncryptionContext({"a": "1", "b": "2"}).serialize()
    swapped = ec[:2] + ec[2 + 6 :] + ec[2 : 2 + 6]  # the two pairs (6 bytes each) in the other order
    unsorted = message.replace(ec, swapped)
    assert _parse_v2_framed(unsorted, POLICY.max_header_size, 16, POLICY.max_frame_length) is None
    assert _buffered(unsorted) == _streamed(unsorted)
    assert isinstance(_buffered(unsorted), Header)


@pytest.mark.parametrize("message", _messages()[:4] + _messages()[-1:])
def test_every_mutation_and_truncation_gives_the_same_outcome(message: bytes) -> None:
    length = POLICY.parse_header_bytes(message).length
    for cut in range(length + 1):
        assert _buffered(message[:cut]) == _streamed(message[:cut]), cut
    for i in range(length):
        for value in (message[i] ^ 0x01, 0x00, 0xFF):
            mutated = message[:i] + bytes((value,)) + message[i + 1 :]
            assert _buffered(mutated) == _streamed(mutated), (i, value)


def test_the_caps_are_the_field_by_field_parsers() -> None:
    message = _messages()[-1]
    length = POLICY.parse_header_bytes(message).length
    for policy in (DecryptPolicy(max_header_size=length - 1), DecryptPolicy(max_encrypted_data_keys=1),
                   DecryptPolicy(max_frame_length=63)):  # fmt: skip
        streamed = _outcome(lambda d, p=policy: p.parse_header(io.BytesIO(d).read), message)
        assert _outcome(policy.parse_header_bytes, message) == streamed
        assert not isinstance(streamed, Header)


def test_trusted_edks_are_ordinary_edks() -> None:
    made = trusted_edk("ns", b"info", b"ciphertext")
    assert made == EncryptedDataKey(provider_id="ns", provider_info=b"info", ciphertext=b"ciphertext")
    assert type(made) is EncryptedDataKey
    assert {a.name for a in attrs.fields(EncryptedDataKey)} == {"provider_id", "provider_info", "ciphertext"}
    assert repr(made) == repr(EncryptedDataKey(provider_id="ns", provider_info=b"info", ciphertext=b"ciphertext"))
