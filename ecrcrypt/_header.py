"""The ESDK message header: bounded parsing (v1 and v2) and v2 serialization.

Layouts: aws-encryption-sdk-specification ``data-format/message-header.md``. The
parser keeps the header body bytes exactly as received, because the header tag is
verified over those bytes and never over a re-serialization (other SDKs have
written unsorted encryption contexts: the digest's §1.13 item 2).

Everything an attacker controls is bounded before it is acted on: the running
header size is checked against the cap before each read, the EDK count against
the policy before any EDK is read, the frame length against the policy; no read
is ever larger than one UInt16-prefixed field (65535 bytes).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence

import attrs

from ecrcrypt.context import EncryptionContext
from ecrcrypt.errors import (
    CommitmentPolicyError,
    MessageFormatError,
    MessageLimitError,
    UnsupportedAlgorithmError,
    ValidationError,
)
from ecrcrypt.keyprovider import EncryptedDataKey
from ecrcrypt.suites import IV_LENGTH, TAG_LENGTH, AlgorithmSuite, suite_for_id

__all__ = ["Header", "edk_length", "header_length_v2", "parse_header", "serialize_header_body_v2"]

_U8 = struct.Struct(">B")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")

FRAMED = 0x02
NON_FRAMED = 0x01
# Spec message-header.md: the v1 "Type" byte is 0x80 (customer authenticated encrypted data).
_V1_TYPE = 0x80
ZERO_IV = bytes(IV_LENGTH)
MAX_FRAME_LENGTH = 0xFFFFFFFF  # UInt32 field


@attrs.frozen(kw_only=True)
class Header:
    """A parsed header. ``body`` is the header body exactly as received (the tag's AAD)."""

    suite: AlgorithmSuite
    message_id: bytes
    context: EncryptionContext
    encrypted_data_keys: tuple[EncryptedDataKey, ...]
    framed: bool
    frame_length: int
    suite_data: bytes
    body: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    auth_iv: bytes
    auth_tag: bytes

    @property
    def version(self) -> int:
        return self.suite.message_version

    @property
    def length(self) -> int:
        """Bytes from the start of the message to the first body byte."""
        return len(self.body) + (IV_LENGTH if self.version == 1 else 0) + TAG_LENGTH


class _BoundedReader:
    """Reads exact-length fields and keeps them, refusing to pass the header-size cap."""

    def __init__(self, read: Callable[[int], bytes], limit: int) -> None:
        self._read = read
        self._limit = limit
        self.parts: list[bytes] = []
        self.total = 0

    def take(self, n: int, what: str) -> bytes:
        if self.total + n > self._limit:
            raise MessageLimitError(f"message header exceeds the maximum header size of {self._limit} bytes")
        data = _read_exact(self._read, n)
        if len(data) != n:
            raise MessageFormatError(f"message is truncated in the header ({what})")
        self.parts.append(data)
        self.total += n
        return data

    def u8(self, what: str) -> int:
        return self.take(1, what)[0]

    def u16(self, what: str) -> int:
        return int(_U16.unpack(self.take(2, what))[0])

    def u32(self, what: str) -> int:
        return int(_U32.unpack(self.take(4, what))[0])


def _read_exact(read: Callable[[int], bytes], n: int) -> bytes:
    first = read(n)
    if len(first) == n or not first:
        return bytes(first)
    parts = [bytes(first)]
    got = len(first)
    while got < n:
        more = read(n - got)
        if not more:
            break
        parts.append(bytes(more))
        got += len(more)
    return b"".join(parts)


def parse_header(
    read: Callable[[int], bytes],
    *,
    allow_v1: bool,
    max_encrypted_data_keys: int,
    max_header_size: int,
    max_frame_length: int,
) -> Header:
    """Parse one header (body and authentication fields) from ``read``.

    ``read(n)`` returns up to ``n`` bytes (fewer only at EOF). Raises a
    :class:`MessageFormatError` subclass; nothing here is authenticated yet.
    """
    r = _BoundedReader(read, max_header_size)
    version = r.u8("version")
    if version not in (1, 2):
        raise UnsupportedAlgorithmError(f"unknown message format version 0x{version:02x}")
    if version == 1:
        if not allow_v1:
            # ESDK commitment policy REQUIRE_ENCRYPT_REQUIRE_DECRYPT (its default) refuses v1.
            raise CommitmentPolicyError(
                "version 1 messages are not key-committing; decrypting them needs DecryptPolicy(allow_v1=True)"
            )
        if r.u8("type") != _V1_TYPE:
            raise MessageFormatError("version 1 header has an unknown message type")
    suite = suite_for_id(r.u16("algorithm suite"), message_version=version)
    message_id = r.take(suite.message_id_length, "message id")
    context = _parse_context(r)
    edks = _parse_edks(r, max_encrypted_data_keys)
    content_type = r.u8("content type")
    if content_type not in (FRAMED, NON_FRAMED):
        raise MessageFormatError(f"unknown content type 0x{content_type:02x}")
    if version == 1:
        if r.take(4, "reserved") != b"\x00\x00\x00\x00":
            raise MessageFormatError("version 1 header reserved field is not zero")
        if r.u8("IV length") != IV_LENGTH:
            raise MessageFormatError("version 1 header IV length is not 12")
    frame_length = r.u32("frame length")
    if content_type == FRAMED:
        if frame_length == 0:
            raise MessageFormatError("framed message with frame length 0")
        if frame_length > max_frame_length:
            raise MessageLimitError(
                f"frame length {frame_length} exceeds the maximum frame length of {max_frame_length}"
            )
    elif frame_length != 0:
        # Spec message-header.md: "MUST be 0" for non-framed content.
        raise MessageFormatError("non-framed message with a non-zero frame length")
    suite_data = r.take(suite.suite_data_length, "algorithm suite data") if suite.suite_data_length else b""
    body = b"".join(r.parts)
    auth_iv = r.take(IV_LENGTH, "header IV") if version == 1 else ZERO_IV
    auth_tag = r.take(TAG_LENGTH, "header tag")
    return Header(
        suite=suite,
        message_id=message_id,
        context=context,
        encrypted_data_keys=edks,
        framed=content_type == FRAMED,
        frame_length=frame_length,
        suite_data=suite_data,
        body=body,
        auth_iv=auth_iv,
        auth_tag=auth_tag,
    )


def _parse_context(r: _BoundedReader) -> EncryptionContext:
    length = r.u16("encryption context length")
    if length == 0:
        return EncryptionContext()
    # Liberal on order (§1.13 item 2); strict on structure.
    return EncryptionContext.deserialize(r.take(length, "encryption context"))


def _parse_edks(r: _BoundedReader, limit: int) -> tuple[EncryptedDataKey, ...]:
    count = r.u16("encrypted data key count")
    if count == 0:
        raise MessageFormatError("message has no encrypted data key")
    if count > limit:
        # Spec client.md "maximum number of encrypted data keys": checked before reading them.
        raise MessageLimitError(f"message has {count} encrypted data keys; the policy allows at most {limit}")
    edks = []
    for _ in range(count):
        raw_pid = r.take(r.u16("provider id length"), "provider id")
        info = r.take(r.u16("provider info length"), "provider info")
        ciphertext = r.take(r.u16("encrypted data key length"), "encrypted data key")
        try:
            pid = raw_pid.decode("utf-8")
            edks.append(EncryptedDataKey(provider_id=pid, provider_info=info, ciphertext=ciphertext))
        except (UnicodeDecodeError, ValidationError):
            raise MessageFormatError("encrypted data key has an empty or invalid provider id") from None
    return tuple(edks)


def edk_length(edk: EncryptedDataKey) -> int:
    return 6 + len(edk.provider_id.encode("utf-8")) + len(edk.provider_info) + len(edk.ciphertext)


def header_length_v2(context: EncryptionContext, edks: Sequence[EncryptedDataKey]) -> int:
    """Length of a v2 framed header with a committing unsigned suite, tag included."""
    return 1 + 2 + 32 + 2 + len(context.serialize()) + 2 + sum(edk_length(e) for e in edks) + 1 + 4 + 32 + TAG_LENGTH


def serialize_header_body_v2(
    *,
    suite: AlgorithmSuite,
    message_id: bytes,
    context: EncryptionContext,
    encrypted_data_keys: Sequence[EncryptedDataKey],
    frame_length: int,
    commit_key: bytes,
) -> bytes:
    """The v2 framed header body (everything the header tag covers)."""
    if not encrypted_data_keys:
        raise ValidationError("a message needs at least one encrypted data key")
    if len(encrypted_data_keys) > 0xFFFF:
        raise ValidationError("a message holds at most 65535 encrypted data keys")
    ec = context.serialize()
    parts = [_U8.pack(2), suite.id_bytes, message_id, _U16.pack(len(ec)), ec, _U16.pack(len(encrypted_data_keys))]
    for edk in encrypted_data_keys:
        pid = edk.provider_id.encode("utf-8")
        parts += (_U16.pack(len(pid)), pid, _U16.pack(len(edk.provider_info)), edk.provider_info)
        parts += (_U16.pack(len(edk.ciphertext)), edk.ciphertext)
    parts += (_U8.pack(FRAMED), _U32.pack(frame_length), commit_key)
    return b"".join(parts)
