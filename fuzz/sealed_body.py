"""Target ``sealed_body``: message bodies whose every tag verifies, built from a description.

A mutated message rarely gets past its header tag, and never past a frame's tag, so the ``message``
target exercises the frame logic only up to the first tag check. Here the input *describes* a
message -- its frame length (any UInt32, so also past the policy's cap), its context, then frame
records: regular or final, a sequence number (right or shifted), a length (right or not),
optionally trailing bytes -- and the harness seals it with the data key it knows: a valid v2 header
and frames whose tags verify over whatever sequence numbers and lengths they claim. The message then
goes through every entry point of the ``message`` target with the same agreement checks, so that
out-of-order, duplicated, missing, overlong and empty frames, a final frame longer than the frame
length and bytes after the end all reach the checks that come after the tags.

Input: ``u32 frame length ‖ u8 flags ‖ (u8 kind ‖ u8 shift ‖ u16 length)* ‖ [0xFF ‖ trailing bytes]``.
"""

from __future__ import annotations

import struct

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ecrcrypt.context import EncryptionContext
from ecrcrypt.format.derivation import derive_keys
from ecrcrypt.format.frames import FINAL_MARKER, FrameAad
from ecrcrypt.format.header import ZERO_IV, serialize_header_body_v2
from ecrcrypt.format.message import WRITE_SUITE
from fuzz import message
from fuzz._harness import FUZZ_POLICY, Target, vector_provider

_DATA_KEY = bytes(range(100, 132))
_MESSAGE_ID = bytes(range(32))
_ENC, _COMMIT = derive_keys(WRITE_SUITE, _DATA_KEY, _MESSAGE_ID)
_AEAD = AESGCM(_ENC)
_CONTEXTS = (EncryptionContext(), EncryptionContext({"purpose": "fuzz"}))
# One EDK per context, made once: the data key is fixed, so the fuzzer sees the same bytes for the same input.
_EDKS = tuple(vector_provider().encrypt_data_key(_DATA_KEY, context) for context in _CONTEXTS)
MAX_MESSAGE = 512 * 1024  # what one input may expand to; beyond it the input is skipped
_HEAD = struct.Struct(">IB")
_RECORD = struct.Struct(">BBH")


def build(data: bytes) -> bytes | None:
    """The message ``data`` describes, sealed; ``None`` when it would exceed :data:`MAX_MESSAGE`."""
    if len(data) < _HEAD.size:
        return None
    frame_length, flags = _HEAD.unpack_from(data)
    which = flags & 1
    body = serialize_header_body_v2(
        suite=WRITE_SUITE,
        message_id=_MESSAGE_ID,
        context=_CONTEXTS[which],
        encrypted_data_keys=_EDKS[which],
        frame_length=frame_length,
        commit_key=_COMMIT,
    )
    parts = [body, _AEAD.encrypt(ZERO_IV, b"", body)]
    size = len(body) + 16
    aad = FrameAad(_MESSAGE_ID)
    pos, seq = _HEAD.size, 1
    while pos + _RECORD.size <= len(data):
        kind, shift, length = _RECORD.unpack_from(data, pos)
        pos += _RECORD.size
        if kind == 0xFF:
            parts.append(data[pos:])
            break
        claimed = (seq + shift - 128) % (1 << 32) if shift else seq
        size += length + 40
        if size > MAX_MESSAGE:
            return None
        iv = bytes(8) + struct.pack(">I", claimed)
        plaintext = bytes([claimed & 0xFF]) * length
        if kind & 1:  # final frame: marker, sequence number, IV, length, ciphertext and tag
            sealed = _AEAD.encrypt(iv, plaintext, bytes(aad.final(claimed, length)))
            parts.append(struct.pack(">II", FINAL_MARKER, claimed) + iv + struct.pack(">I", length) + sealed)
        else:  # regular frame: sequence number, IV, ciphertext and tag (its length is the frame length's)
            sealed = _AEAD.encrypt(iv, plaintext, bytes(aad.regular(claimed, length)))
            parts.append(struct.pack(">I", claimed) + iv + sealed)
        seq += 1
    return b"".join(parts)


def one_input(data: bytes) -> None:
    built = build(data)
    if built is not None:
        message.one_input(built)


TARGET = Target(
    name="sealed_body",
    one_input=one_input,
    max_len=1024,
    # The message target's bound for the largest message an input may expand to.
    memory_bound=lambda n: message.TARGET.memory_bound(MAX_MESSAGE) + FUZZ_POLICY.max_frame_length,
    runs=600,
    # Inputs are records, not bytes to grow slowly: allow every length from the start.
    options=("-len_control=0",),
)
