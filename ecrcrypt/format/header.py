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
from typing import NamedTuple

from ecrcrypt.context import EncryptionContext
from ecrcrypt.errors import (
    CommitmentPolicyError,
    MessageFormatError,
    MessageLimitError,
    UnsupportedAlgorithmError,
    ValidationError,
)
from ecrcrypt.format.frames import U32
from ecrcrypt.format.suites import IV_LENGTH, SUITES, TAG_LENGTH, AlgorithmSuite, suite_for_id
from ecrcrypt.keyprovider import EncryptedDataKey

__all__ = [
    "Header",
    "edk_length",
    "header_length_v2",
    "parse_header",
    "parse_complete_v2_header",
    "parse_header_bytes",
    "serialize_header_body_v2",
    "trusted_edk",
]

_U8 = struct.Struct(">B")
_U16 = struct.Struct(">H")

FRAMED = 0x02
NON_FRAMED = 0x01
# Spec message-header.md: the v1 "Type" byte is 0x80 (customer authenticated encrypted data).
_V1_TYPE = 0x80
ZERO_IV = bytes(IV_LENGTH)
MAX_FRAME_LENGTH = 0xFFFFFFFF  # UInt32 field


class Header(NamedTuple):
    """A parsed header. ``body`` is the header body exactly as received (the tag's AAD).

    A named tuple rather than an attrs class: it is made once per message on the
    small-object hot path, holds only what the parser already checked, and never
    escapes the format layer.
    """

    suite: AlgorithmSuite
    message_id: bytes
    context: EncryptionContext
    encrypted_data_keys: tuple[EncryptedDataKey, ...]
    framed: bool
    frame_length: int
    suite_data: bytes
    body: bytes
    auth_iv: bytes
    auth_tag: bytes

    def __repr__(self) -> str:
        return (
            f"Header(suite={self.suite}, framed={self.framed}, frame_length={self.frame_length}, "
            f"context={self.context!r}, encrypted_data_keys={len(self.encrypted_data_keys)}, "
            f"body=<{len(self.body)} bytes>)"
        )

    @property
    def version(self) -> int:
        return self.suite.message_version

    @property
    def length(self) -> int:
        """Bytes from the start of the message to the first body byte."""
        return len(self.body) + (IV_LENGTH if self.version == 1 else 0) + TAG_LENGTH


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


def _more(
    buf: bytes | bytearray, read: Callable[[int], bytes] | None, end: int, limit: int, what: str
) -> tuple[bytes | bytearray, int]:
    """Make ``buf`` hold ``end`` bytes (reading exactly the missing ones), or fail.

    The cap is checked before anything is read, so a claimed length is never acted on
    when it would take the header past ``limit``; a read is never larger than one
    UInt16-prefixed field, since the parser asks for one field at a time.
    """
    if end > limit:
        raise MessageLimitError(f"message header exceeds the maximum header size of {limit} bytes")
    if read is not None and end > len(buf):
        if not isinstance(buf, bytearray):
            buf = bytearray(buf)
        buf += _read_exact(read, end - len(buf))
    if end > len(buf):
        raise MessageFormatError(f"message is truncated in the header ({what})")
    return buf, min(len(buf), limit)


def parse_header(
    read: Callable[[int], bytes],
    *,
    allow_v1: bool,
    max_encrypted_data_keys: int,
    max_header_size: int,
    max_frame_length: int,
) -> Header:
    """Parse one header (body and authentication fields) from ``read``.

    ``read(n)`` returns up to ``n`` bytes (fewer only at EOF); exactly the header's
    bytes are consumed, one field at a time. Raises a :class:`MessageFormatError`
    subclass; nothing here is authenticated yet.
    """
    return _parse(b"", read, max_header_size, allow_v1, max_encrypted_data_keys, max_frame_length)


def parse_header_bytes(
    data: bytes | bytearray | memoryview,
    *,
    allow_v1: bool,
    max_encrypted_data_keys: int,
    max_header_size: int,
    max_frame_length: int,
) -> Header:
    """Parse the header at the start of ``data`` (a whole message or more); :attr:`Header.length`
    is where the body starts. Same checks and errors as :func:`parse_header`."""
    if type(data) is not bytes:
        # Copy only what a header may span: the cap bounds it.
        data = bytes(memoryview(data).cast("B")[:max_header_size])
    header = _parse_v2_framed(data, max_header_size, max_encrypted_data_keys, max_frame_length)
    if header is not None:
        return header
    # Anything else -- v1, non-framed, and every malformed or over-limit header -- takes the
    # field-by-field parser, which raises the precise error.
    return _parse(data, None, max_header_size, allow_v1, max_encrypted_data_keys, max_frame_length)


def parse_complete_v2_header(
    data: bytes, *, max_encrypted_data_keys: int, max_header_size: int, max_frame_length: int
) -> Header | None:
    """The header at the start of ``data`` when ``data`` holds all of it and it is a well-formed
    framed v2 header (one pass, as :func:`parse_header_bytes` does); ``None`` for anything else,
    which the caller then parses field by field (:func:`parse_header`) to get the precise error.

    For streaming readers whose source can show what it has buffered without consuming it.
    """
    return _parse_v2_framed(data, max_header_size, max_encrypted_data_keys, max_frame_length)


def _parse_v2_framed(buf: bytes, limit: int, max_edks: int, max_frame_length: int) -> Header | None:
    """The header of a well-formed, framed v2 message held whole in ``buf``, in one pass; ``None``
    at the first field that is anything else, so that :func:`_parse` raises what it raises.

    Every length is checked against the bytes present (and the cap) before its field is used, so
    the EDK fields are at most 65535 bytes and the provider id non-empty UTF-8 by construction:
    the :class:`EncryptedDataKey` is made from them without running its validators again, and a
    canonical context from its pairs and its own bytes (:func:`_context_sorted`).

    One check per EDK suffices: each field starts at least two bytes after the previous length
    field, so if any length field lay past the end, the EDK's end does too (a length read past
    the whole buffer raises ``struct.error``, also a ``None``).
    """
    n = len(buf) if len(buf) < limit else limit
    if n < _V2_PREFIX.size + 2 or buf[0] != 2:
        return None
    _, suite_id, message_id, length = _V2_PREFIX.unpack_from(buf)
    suite = _V2_SUITES.get(suite_id)
    pos = _V2_PREFIX.size + length
    if suite is None or pos + 2 > n:
        return None
    unpack = _U16.unpack_from
    context = _context_sorted(buf, _V2_PREFIX.size, pos) if length else _EMPTY_CONTEXT
    if context is None:
        return None
    (count,) = unpack(buf, pos)
    if not 0 < count <= max_edks:
        return None
    pos += 2
    edks = []
    try:
        for _ in range(count):
            pid_end = pos + 2 + unpack(buf, pos)[0]
            info_end = pid_end + 2 + unpack(buf, pid_end)[0]
            end = info_end + 2 + unpack(buf, info_end)[0]
            if end > n or pid_end == pos + 2:
                return None
            edks.append(
                trusted_edk(buf[pos + 2 : pid_end].decode(), buf[pid_end + 2 : info_end], buf[info_end + 2 : end])
            )
            pos = end
    except (struct.error, UnicodeDecodeError):
        return None
    if pos + _V2_TAIL_TAG.size > n:
        return None
    content_type, frame_length, suite_data, tag = _V2_TAIL_TAG.unpack_from(buf, pos)
    if content_type != FRAMED or not 0 < frame_length <= max_frame_length:
        return None
    body_end = pos + _V2_TAIL.size
    return Header(suite, message_id, context, tuple(edks), True, frame_length, suite_data, buf[:body_end], ZERO_IV, tag)


def _context_sorted(buf: bytes, start: int, end: int) -> EncryptionContext | None:
    """The context serialized in ``buf[start:end]`` when it is canonical (pairs in strictly
    ascending key order, as every ESDK writes them), else ``None``.

    Canonical bytes are their own serialization, so the context is made from the decoded
    pairs and these bytes without re-sorting or re-serializing; anything else (unsorted,
    a repeated key, invalid UTF-8, a length past ``end``) goes to
    :meth:`EncryptionContext.deserialize` through the field-by-field parser. As for the EDKs,
    one bounds check per pair covers both of its length fields.
    """
    unpack = _U16.unpack_from
    (count,) = unpack(buf, start)
    pos = start + 2
    entries: list[tuple[bytes, bytes, str, str]] = []
    previous = b""
    try:
        for _ in range(count):
            key_end = pos + 2 + unpack(buf, pos)[0]
            value_end = key_end + 2 + unpack(buf, key_end)[0]
            if value_end > end:
                return None
            key = buf[pos + 2 : key_end]
            if entries and key <= previous:
                return None
            value = buf[key_end + 2 : value_end]
            entries.append((key, value, key.decode(), value.decode()))
            previous = key
            pos = value_end
    except (struct.error, UnicodeDecodeError):
        return None
    if pos != end or not entries:
        return None
    return EncryptionContext._trusted(tuple(entries), buf[start:end])


_EDK_SET = object.__setattr__


def trusted_edk(provider_id: str, provider_info: bytes, ciphertext: bytes) -> EncryptedDataKey:
    """An :class:`EncryptedDataKey` of fields already known valid (each at most 65535 bytes, the id
    a non-empty ``str``): what a parser just bounds-checked, or a provider just made."""
    edk = object.__new__(EncryptedDataKey)
    _EDK_SET(edk, "provider_id", provider_id)
    _EDK_SET(edk, "provider_info", provider_info)
    _EDK_SET(edk, "ciphertext", ciphertext)
    return edk


def _parse(
    buf: bytes | bytearray,
    read: Callable[[int], bytes] | None,
    limit: int,
    allow_v1: bool,
    max_edks: int,
    max_frame_length: int,
) -> Header:
    """The parser proper: ``struct.unpack_from`` over one buffer, growing it from ``read``
    field by field when streaming (``read`` is None when ``buf`` is all there is)."""
    avail = min(len(buf), limit)
    if avail < 1:
        buf, avail = _more(buf, read, 1, limit, "version")
    version = buf[0]
    if version not in (1, 2):
        raise UnsupportedAlgorithmError(f"unknown message format version 0x{version:02x}")
    pos = 1
    if version == 1:
        if not allow_v1:
            # ESDK commitment policy REQUIRE_ENCRYPT_REQUIRE_DECRYPT (its default) refuses v1.
            raise CommitmentPolicyError(
                "version 1 messages are not key-committing; decrypting them needs DecryptPolicy(allow_v1=True)"
            )
        if avail < 2:
            buf, avail = _more(buf, read, 2, limit, "type")
        if buf[1] != _V1_TYPE:
            raise MessageFormatError("version 1 header has an unknown message type")
        pos = 2
    if avail < pos + 2:
        buf, avail = _more(buf, read, pos + 2, limit, "algorithm suite")
    suite = suite_for_id(_U16.unpack_from(buf, pos)[0], message_version=version)
    pos += 2
    end = pos + suite.message_id_length
    if end > avail:
        buf, avail = _more(buf, read, end, limit, "message id")
    message_id = bytes(buf[pos:end])
    pos = end

    # Encryption context: liberal on order (§1.13 item 2); strict on structure.
    if pos + 2 > avail:
        buf, avail = _more(buf, read, pos + 2, limit, "encryption context length")
    (length,) = _U16.unpack_from(buf, pos)
    pos += 2
    if length:
        end = pos + length
        if end > avail:
            buf, avail = _more(buf, read, end, limit, "encryption context")
        context = EncryptionContext.deserialize(bytes(buf[pos:end]))
        pos = end
    else:
        context = _EMPTY_CONTEXT

    if pos + 2 > avail:
        buf, avail = _more(buf, read, pos + 2, limit, "encrypted data key count")
    (count,) = _U16.unpack_from(buf, pos)
    pos += 2
    if count == 0:
        raise MessageFormatError("message has no encrypted data key")
    if count > max_edks:
        # Spec client.md "maximum number of encrypted data keys": checked before reading them.
        raise MessageLimitError(f"message has {count} encrypted data keys; the policy allows at most {max_edks}")
    edks = []
    for _ in range(count):
        fields = []
        for what in _EDK_FIELDS:
            if pos + 2 > avail:
                buf, avail = _more(buf, read, pos + 2, limit, what + " length")
            end = pos + 2 + _U16.unpack_from(buf, pos)[0]
            if end > avail:
                buf, avail = _more(buf, read, end, limit, what)
            fields.append(bytes(buf[pos + 2 : end]))
            pos = end
        raw_pid, info, ciphertext = fields
        try:
            pid = raw_pid.decode("utf-8")
        except UnicodeDecodeError:
            pid = ""
        if not pid:
            raise MessageFormatError("encrypted data key has an empty or invalid provider id")
        edks.append(EncryptedDataKey(provider_id=pid, provider_info=info, ciphertext=ciphertext))

    if pos + 1 > avail:
        buf, avail = _more(buf, read, pos + 1, limit, "content type")
    content_type = buf[pos]
    pos += 1
    if content_type not in (FRAMED, NON_FRAMED):
        raise MessageFormatError(f"unknown content type 0x{content_type:02x}")
    if version == 1:
        if pos + 4 > avail:
            buf, avail = _more(buf, read, pos + 4, limit, "reserved")
        if buf[pos : pos + 4] != b"\x00\x00\x00\x00":
            raise MessageFormatError("version 1 header reserved field is not zero")
        if pos + 5 > avail:
            buf, avail = _more(buf, read, pos + 5, limit, "IV length")
        if buf[pos + 4] != IV_LENGTH:
            raise MessageFormatError("version 1 header IV length is not 12")
        pos += 5
    if pos + 4 > avail:
        buf, avail = _more(buf, read, pos + 4, limit, "frame length")
    (frame_length,) = U32.unpack_from(buf, pos)
    pos += 4
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
    end = pos + suite.suite_data_length
    if end > avail:
        buf, avail = _more(buf, read, end, limit, "algorithm suite data")
    suite_data = bytes(buf[pos:end])
    body = bytes(buf[:end])
    pos = end
    if version == 1:
        end = pos + IV_LENGTH
        if end > avail:
            buf, avail = _more(buf, read, end, limit, "header IV")
        auth_iv = bytes(buf[pos:end])
        pos = end
    else:
        auth_iv = ZERO_IV
    end = pos + TAG_LENGTH
    if end > avail:
        buf, avail = _more(buf, read, end, limit, "header tag")
    return Header(
        suite,
        message_id,
        context,
        tuple(edks),
        content_type == FRAMED,
        frame_length,
        suite_data,
        body,
        auth_iv,
        bytes(buf[pos:end]),
    )


_EDK_FIELDS = ("provider id", "provider info", "encrypted data key")
_EMPTY_CONTEXT = EncryptionContext()


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
    parts = [_V2_PREFIX.pack(2, suite.id, message_id, len(ec)), ec, _U16.pack(len(encrypted_data_keys))]
    pack = _U16.pack
    for edk in encrypted_data_keys:
        pid = edk.provider_id.encode("utf-8")
        info = edk.provider_info
        ciphertext = edk.ciphertext
        parts += (pack(len(pid)), pid, pack(len(info)), info, pack(len(ciphertext)), ciphertext)
    parts.append(_V2_TAIL.pack(FRAMED, frame_length, commit_key))
    return b"".join(parts)


_V2_PREFIX = struct.Struct(">BH32sH")  # version, suite id, message id, context length
_V2_TAIL = struct.Struct(">BI32s")  # content type, frame length, commit key (suite data)
_V2_TAIL_TAG = struct.Struct(">BI32s16s")  # the same, then the header tag
_V2_SUITES = {s.id: s for s in SUITES.values() if s.message_version == 2}
