"""One message's keys and bounds: seal a new message, open a parsed one, verify a body.

The decrypt policy, the header steps and the body codec the one-shot and streaming forms share.

ecrcrypt writes exactly one kind of message: version 2, suite
AES_256_GCM_HKDF_SHA512_COMMIT_KEY (0x0478), framed, unsigned. It reads every
suite of versions 1 and 2, framed or not, signed or not (v1 only when the policy
allows it, as the ESDK's commitment policy requires an explicit opt-in).

Decrypt order (spec ``client-apis/decrypt.md``; digest §1.12): parse the header
with bounded reads, compare the caller's expected context with the stored one,
unwrap a data key with the key provider, check the key commitment, verify the
header tag over the header bytes as received, then open the body frame by frame.
Signed messages release nothing before the footer signature verifies.
"""

from __future__ import annotations

import base64
import binascii
import os
import struct
from collections.abc import Callable, Mapping
from typing import NamedTuple

import attrs
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ecrcrypt.context import EncryptionContext
from ecrcrypt.errors import (
    AuthenticationError,
    DataKeyDecryptionError,
    EncryptionContextMismatchError,
    MessageFormatError,
    MessageLimitError,
    ValidationError,
)
from ecrcrypt.format.derivation import check_commitment, derive_keys
from ecrcrypt.format.frames import (
    FINAL_FRAME_OVERHEAD,
    FINAL_MARKER,
    FINAL_MARKER_BYTES,
    REGULAR_FRAME_OVERHEAD,
    U32,
    FrameAad,
    final_aad,
)
from ecrcrypt.format.header import (
    ZERO_IV,
    Header,
    parse_complete_v2_header,
    parse_header,
    parse_header_bytes,
    serialize_header_body_v2,
)
from ecrcrypt.format.suites import AES_256_GCM_HKDF_SHA512_COMMIT_KEY, TAG_LENGTH, Signature
from ecrcrypt.keyprovider import EncryptedDataKey, KeyProvider

__all__ = [
    "DEFAULT_FRAME_LENGTH",
    "MAX_FRAME_LENGTH",
    "DecryptPolicy",
    "Opened",
    "Sealer",
    "decrypt_body",
    "open_header",
    "open_parsed",
    "start_message",
    "verify_footer",
]

# 1 MiB: raw AES-GCM reaches ~9.8 GB/s at 1 MiB chunks vs ~7.2 at 64 KiB on the
# reference machine, and the streaming writer/reader stay within 0.9x of raw there
# (docs/benchmarks.md). A multiple of 16 (aws-encryption-sdk-python's encoder rule)
# and far below the 2^31 - 1 its decoder and Java's accept.
DEFAULT_FRAME_LENGTH = 1 << 20
# aws-encryption-sdk-python/Java MAX_FRAME_SIZE is 2^31 - 1; the largest multiple of 16 below it.
MAX_FRAME_LENGTH = (2**31 - 1) & ~15
RESERVED_PREFIX = "aws-crypto-"
PUBLIC_KEY_KEY = "aws-crypto-public-key"
WRITE_SUITE = AES_256_GCM_HKDF_SHA512_COMMIT_KEY
# Spec message-body.md: a non-framed body holds at most 2^36 - 32 bytes (GCM's limit).
MAX_NON_FRAMED = 2**36 - 32
_U16 = struct.Struct(">H")
_U64 = struct.Struct(">Q")
_SEQ_AT_4_LEN_AT_20 = struct.Struct(">I12xI")  # a final frame's SeqNum and content length, after the marker


def _positive(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not isinstance(value, int) or value <= 0:
        raise ValidationError(f"DecryptPolicy.{attribute.name} must be a positive int")


def _optional_positive(instance: object, attribute: attrs.Attribute[int | None], value: int | None) -> None:
    if value is not None and (not isinstance(value, int) or value < 0):
        raise ValidationError(f"DecryptPolicy.{attribute.name} must be None or a non-negative int")


@attrs.frozen(kw_only=True)
class DecryptPolicy:
    """Bounds on attacker-controlled input, checked before anything is allocated or called.

    The ESDK leaves ``max_encrypted_data_keys`` unlimited by default; ecrcrypt caps it
    (spec client.md suggests the option exactly to stop EDK-count denial of service).
    ``max_body_size`` (the ESDK "Max Body Size" proposal) bounds the plaintext bytes
    a message may hold; ``None`` means unbounded for framed bodies, whose memory use
    is one frame anyway. ``max_buffered_body_size`` bounds what a streaming reader holds
    for a signed or non-framed body (64 MiB by default; one-shot :func:`decrypt` already
    holds its whole input and is not limited by it).
    """

    allow_v1: bool = False
    max_encrypted_data_keys: int = attrs.field(default=16, validator=_positive)
    max_header_size: int = attrs.field(default=256 * 1024, validator=_positive)
    max_frame_length: int = attrs.field(default=16 * 1024 * 1024, validator=_positive)
    max_body_size: int | None = attrs.field(default=None, validator=_optional_positive)
    # Signed and non-framed bodies cannot be released before their single signature or tag
    # verifies, so a streaming reader must hold them whole: bounded by default, unlike framed
    # bodies whose memory use is one frame whatever their size.
    max_buffered_body_size: int = attrs.field(default=64 * 1024 * 1024, validator=_positive)

    def parse_header(self, read: Callable[[int], bytes]) -> Header:
        return parse_header(
            read,
            allow_v1=self.allow_v1,
            max_encrypted_data_keys=self.max_encrypted_data_keys,
            max_header_size=self.max_header_size,
            max_frame_length=self.max_frame_length,
        )

    def parse_complete_header(self, data: bytes) -> Header | None:
        """The header at the start of ``data`` if ``data`` holds all of it and it is an ordinary
        framed v2 header; ``None`` otherwise (then :meth:`parse_header` gives the precise error)."""
        return parse_complete_v2_header(
            data,
            max_encrypted_data_keys=self.max_encrypted_data_keys,
            max_header_size=self.max_header_size,
            max_frame_length=self.max_frame_length,
        )

    def parse_header_bytes(self, data: bytes | bytearray | memoryview) -> Header:
        """The header at the start of ``data``; the body starts at ``header.length``."""
        return parse_header_bytes(
            data,
            allow_v1=self.allow_v1,
            max_encrypted_data_keys=self.max_encrypted_data_keys,
            max_header_size=self.max_header_size,
            max_frame_length=self.max_frame_length,
        )


# ------------------------------------------------------------------------------ writing


def check_frame_length(frame_length: int) -> int:
    """Frame lengths ecrcrypt writes: a multiple of 16 up to :data:`MAX_FRAME_LENGTH`."""
    if not isinstance(frame_length, int) or isinstance(frame_length, bool):
        raise ValidationError("frame_length must be an int")
    if not 16 <= frame_length <= MAX_FRAME_LENGTH or frame_length % 16:
        # aws-encryption-sdk-python refuses to encrypt other frame lengths (utils.validate_frame_length).
        raise ValidationError(f"frame_length must be a multiple of 16 between 16 and {MAX_FRAME_LENGTH}")
    return frame_length


def encryption_context(context: Mapping[str, str]) -> EncryptionContext:
    """The context to write, refusing the ESDK's reserved keys."""
    ctx = context if isinstance(context, EncryptionContext) else EncryptionContext(context)
    for key in ctx:
        if key.startswith(RESERVED_PREFIX):
            # Spec client-apis/encrypt.md: encryption MUST fail on a reserved key.
            raise ValidationError(f"encryption context key {key!r} uses the reserved prefix {RESERVED_PREFIX!r}")
    return ctx


@attrs.frozen(kw_only=True)
class Sealer:
    """Keys and identity of one message being written (private to the format layer)."""

    aead: AESGCM
    message_id: bytes
    commit_key: bytes = attrs.field(repr=False)
    frame_length: int

    @classmethod
    def for_data_key(cls, data_key: bytes, frame_length: int, *, message_id: bytes | None = None) -> Sealer:
        """``message_id`` is given only to continue a message begun elsewhere (a resumed upload):
        a fresh message always takes a fresh random id, and (key, id) must never seal two bodies."""
        if not isinstance(data_key, bytes) or len(data_key) != WRITE_SUITE.key_length:
            raise ValidationError("the data key must be 32 bytes")
        if message_id is None:
            message_id = os.urandom(32)
        elif not isinstance(message_id, bytes) or len(message_id) != 32:
            raise ValidationError("the message id must be 32 bytes")
        enc, commit = derive_keys(WRITE_SUITE, data_key, message_id)
        return cls(aead=AESGCM(enc), message_id=message_id, commit_key=commit, frame_length=frame_length)

    def header(self, context: EncryptionContext, encrypted_data_keys: tuple[EncryptedDataKey, ...]) -> bytes:
        body = serialize_header_body_v2(
            suite=WRITE_SUITE,
            message_id=self.message_id,
            context=context,
            encrypted_data_keys=encrypted_data_keys,
            frame_length=self.frame_length,
            commit_key=self.commit_key,
        )
        # Spec encrypt.md: header tag = AES-GCM(content key, zero IV, AAD = header body, empty plaintext).
        return body + self.aead.encrypt(ZERO_IV, b"", body)


def start_message(
    provider: KeyProvider, context: Mapping[str, str], frame_length: int
) -> tuple[Sealer, bytes, EncryptionContext]:
    """A fresh data key from ``provider`` and the serialized header: ``(sealer, header, context)``."""
    check_frame_length(frame_length)
    ctx = encryption_context(context)
    data_key = provider.generate_data_key(ctx, length=WRITE_SUITE.key_length)
    sealer = Sealer.for_data_key(data_key.plaintext, frame_length)
    return sealer, sealer.header(ctx, data_key.encrypted_data_keys), ctx


# ------------------------------------------------------------------------------ reading


class Opened(NamedTuple):
    """An authenticated header and its content key (private to the format layer)."""

    header: Header
    aead: AESGCM
    context: EncryptionContext  # stored + required pairs: what the provider saw
    content_key: bytes  # for incremental GCM over split frames

    def __repr__(self) -> str:
        return f"Opened(header={self.header!r}, context={self.context!r})"  # never the content key

    @property
    def raw_header(self) -> bytes:
        h = self.header
        return h.body + (h.auth_iv if h.version == 1 else b"") + h.auth_tag


_EMPTY_CONTEXT = EncryptionContext()


def reconcile_context(
    stored: EncryptionContext, expected: Mapping[str, str] | None
) -> tuple[EncryptionContext, EncryptionContext]:
    """``(full context, required-only part)`` for a header's stored context and the caller's.

    Every stored pair must be expected (except the ESDK's reserved ``aws-crypto-``
    keys, which the SDK adds itself); expected pairs the header does not store are
    the ESDK's "required encryption context": authenticated by the header tag but
    not stored (spec client-apis/encrypt.md "Construct the header").
    """
    if expected is None:
        return stored, _EMPTY_CONTEXT
    if not isinstance(expected, EncryptionContext):
        # Fast path, no EncryptionContext built: every stored pair is expected and the
        # caller expects nothing more. The expected keys are then exactly stored keys with
        # equal (str) values, so the mapping is valid without re-validating it.
        matched = 0
        for key, value in stored.items():
            if key.startswith(RESERVED_PREFIX) and key not in expected:
                continue
            if expected.get(key) != value:
                break
            matched += 1
        else:
            if matched == len(expected):
                return stored, _EMPTY_CONTEXT
        expected = EncryptionContext(expected)  # validates the caller's mapping (ValidationError)
    for key, value in stored.items():
        if key.startswith(RESERVED_PREFIX) and key not in expected:
            continue
        if expected.get(key) != value:
            raise EncryptionContextMismatchError(
                f"the message's encryption context differs from the expected one at key {key!r}"
            )
    required = EncryptionContext({k: v for k, v in expected.items() if k not in stored})
    if not required:
        return stored, required
    return stored.union(required), required


def open_header(
    read: Callable[[int], bytes],
    *,
    provider: KeyProvider,
    context: Mapping[str, str] | None,
    policy: DecryptPolicy,
) -> Opened:
    """Parse and authenticate a header; the provider is called only after the context check."""
    return open_parsed(policy.parse_header(read), provider=provider, context=context)


def open_parsed(header: Header, *, provider: KeyProvider, context: Mapping[str, str] | None) -> Opened:
    """Authenticate a parsed header; the provider is called only after the context check."""
    full, required = reconcile_context(header.context, context)
    suite = header.suite
    has_public_key = PUBLIC_KEY_KEY in header.context
    if suite.signature is not None and not has_public_key:
        # Spec decrypt.md: the verification key comes from the stored context.
        raise MessageFormatError("signed message without 'aws-crypto-public-key' in its encryption context")
    if suite.signature is None and has_public_key:
        # A verification key in an unsigned message means a signed one whose signature was stripped:
        # whoever can unwrap the data key (decrypt-only rights) could re-seal it as an unsigned suite
        # with any plaintext. Every ESDK refuses it (Python: "Signature verification key found in
        # header for non-signed algorithm"), before the key provider is called.
        raise MessageFormatError("unsigned message carries a signature verification key ('aws-crypto-public-key')")
    data_key = provider.decrypt_data_key(header.encrypted_data_keys, full)
    if len(data_key) != suite.key_length:
        raise DataKeyDecryptionError("the decrypted data key has the wrong length for the message's algorithm suite")
    enc, commit = derive_keys(suite, data_key, header.message_id)
    if suite.committing:
        check_commitment(commit, header.suite_data)
    aead = AESGCM(enc)
    try:
        aead.decrypt(header.auth_iv, header.auth_tag, header.body + required.serialize() if required else header.body)
    except InvalidTag:
        raise AuthenticationError("message authentication failed (header)") from None
    return Opened(header, aead, full, enc)


def decrypt_body(view: memoryview, pos: int, opened: Opened, policy: DecryptPolicy) -> bytes:
    """Open the body (and footer) that starts at ``view[pos]``; nothing is returned unverified."""
    header = opened.header
    if header.framed and header.suite.signature is None and view[pos : pos + 4] == FINAL_MARKER_BYTES:
        # One final frame and nothing else: the small object, opened with no per-frame state.
        if pos + 24 > len(view):
            raise AuthenticationError("message is truncated in the final frame")
        got, n = _SEQ_AT_4_LEN_AT_20.unpack_from(view, pos + 4)
        if got != 1 or n > header.frame_length:
            raise AuthenticationError("message authentication failed (final frame)")
        end = pos + n + FINAL_FRAME_OVERHEAD
        if end > len(view):
            raise AuthenticationError("message is truncated in the final frame")
        _check_limit(n, policy.max_body_size)
        if end != len(view):
            raise AuthenticationError("message has trailing bytes after its end")
        return _open(opened.aead, view[pos + 8 : pos + 20], view[pos + 24 : end], final_aad(header.message_id, 1, n))
    aad = FrameAad(header.message_id)
    out: list[bytes] = []
    total = 0
    limit = policy.max_body_size
    aead = opened.aead
    end = len(view)
    if header.framed:
        f = header.frame_length
        seq = 1
        while True:
            if pos + 4 > end:
                raise AuthenticationError("message is truncated (no final frame)")
            (marker,) = U32.unpack_from(view, pos)
            if marker == FINAL_MARKER:
                if pos + FINAL_FRAME_OVERHEAD > end:
                    raise AuthenticationError("message is truncated in the final frame")
                (got,) = U32.unpack_from(view, pos + 4)
                (n,) = U32.unpack_from(view, pos + 20)
                if got != seq or n > f:
                    raise AuthenticationError("message authentication failed (final frame)")
                if pos + n + FINAL_FRAME_OVERHEAD > end:
                    raise AuthenticationError("message is truncated in the final frame")
                total += n
                _check_limit(total, limit)
                out.append(_open(aead, view[pos + 8 : pos + 20], view[pos + 24 : pos + 40 + n], aad.final(seq, n)))
                pos += n + FINAL_FRAME_OVERHEAD
                break
            if marker != seq:
                raise AuthenticationError("message authentication failed (frame out of sequence)")
            if pos + f + REGULAR_FRAME_OVERHEAD > end:
                raise AuthenticationError("message is truncated (no final frame)")
            total += f
            _check_limit(total, limit)
            out.append(_open(aead, view[pos + 4 : pos + 16], view[pos + 16 : pos + 32 + f], aad.regular(seq, f)))
            pos += f + REGULAR_FRAME_OVERHEAD
            seq += 1
    else:
        if pos + 20 > end:
            raise AuthenticationError("message is truncated in the body")
        (n,) = _U64.unpack_from(view, pos + 12)
        if n > MAX_NON_FRAMED:
            raise AuthenticationError("message authentication failed (body length)")
        _check_limit(n, limit)
        if pos + 20 + n + TAG_LENGTH > end:
            raise AuthenticationError("message is truncated in the body")
        out.append(_open(aead, view[pos : pos + 12], view[pos + 20 : pos + 20 + n + TAG_LENGTH], aad.single_block(n)))
        pos += 20 + n + TAG_LENGTH
    if header.suite.signature is not None:
        pos = verify_footer(opened, view, pos)
    if pos != end:
        raise AuthenticationError("message has trailing bytes after its end")
    return b"".join(out)


def _check_limit(total: int, limit: int | None) -> None:
    if limit is not None and total > limit:
        raise MessageLimitError(f"message body exceeds the maximum body size of {limit} bytes")


def _open(aead: AESGCM, iv: memoryview, ct_and_tag: memoryview, aad: bytes | bytearray) -> bytes:
    try:
        return aead.decrypt(iv, ct_and_tag, aad)
    except InvalidTag:
        raise AuthenticationError("message authentication failed") from None


_CURVES: dict[Signature, tuple[ec.EllipticCurve, hashes.HashAlgorithm]] = {
    Signature.ECDSA_P384_SHA384: (ec.SECP384R1(), hashes.SHA384()),
    Signature.ECDSA_P256_SHA256: (ec.SECP256R1(), hashes.SHA256()),
}


def verify_footer(opened: Opened, view: memoryview, pos: int) -> int:
    """Verify the ECDSA footer over header ‖ body (``view[:pos]``); returns the end offset.

    Spec data-format/message-footer.md: ``sigLen:u16 ‖ DER signature``; the key is
    the SEC1-compressed point in the stored context's ``aws-crypto-public-key``.
    """
    signature = opened.header.suite.signature
    assert signature is not None
    curve, algorithm = _CURVES[signature]
    if pos + 2 > len(view):
        raise AuthenticationError("message is truncated (no signature footer)")
    (n,) = _U16.unpack_from(view, pos)
    if pos + 2 + n > len(view):
        raise AuthenticationError("message is truncated in the signature footer")
    try:
        point = base64.b64decode(opened.header.context[PUBLIC_KEY_KEY], validate=True)
        public_key = ec.EllipticCurvePublicKey.from_encoded_point(curve, point)
    except (binascii.Error, ValueError):
        raise MessageFormatError("the message's signature public key is malformed") from None
    try:
        public_key.verify(bytes(view[pos + 2 : pos + 2 + n]), view[:pos], ec.ECDSA(algorithm))
    except InvalidSignature:
        raise AuthenticationError("message authentication failed (signature)") from None
    return pos + 2 + int(n)
