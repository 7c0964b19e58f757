"""A body-first message written by several writers in turn (an upload spanning requests and processes)."""

from __future__ import annotations

import io
import os

import pytest

from ecrcrypt.context import EncryptionContext
from ecrcrypt.errors import StreamClosedError, ValidationError
from ecrcrypt.providers.raw_aes import RawAesKeyProvider
from ecrcrypt.streams import BodyFirstWriter, DecryptingReader

F = 4096
PROVIDER = RawAesKeyProvider(key_namespace="n", key_name="k", wrapping_key=os.urandom(32))
CTX = EncryptionContext({"purpose": "resume"})


def _written_in_pieces(data: bytes, cuts: list[int]) -> bytes:
    dk = PROVIDER.generate_data_key(CTX)
    out = io.BytesIO()
    w = BodyFirstWriter(out, data_key=dk.plaintext, frame_length=F)
    pending, start = b"", 0
    for cut in [*cuts, len(data)]:
        w.write(pending)
        w.write(data[start:cut])
        start = cut
        if cut == len(data):
            break
        pending, message_id, frames = w.suspend(), w.message_id, w.frames_emitted
        w = BodyFirstWriter(out, data_key=dk.plaintext, frame_length=F, message_id=message_id, sealed_frames=frames)
    w.close()
    return w.header(context=CTX, encrypted_data_keys=dk.encrypted_data_keys) + out.getvalue()


@pytest.mark.parametrize("total", [0, 5, F, 3 * F, 3 * F + 7])
@pytest.mark.parametrize("where", [0.0, 0.25, 0.5, 1.0])
def test_a_body_continued_by_another_writer_is_one_message(total: int, where: float) -> None:
    data = os.urandom(total)
    cuts = sorted({int(total * where), min(total, F), min(total, F + 1)})
    message = _written_in_pieces(data, cuts)
    assert DecryptingReader(io.BytesIO(message), provider=PROVIDER, context=CTX).read() == data


def test_suspend_returns_at_most_one_frame_and_ends_the_writer() -> None:
    w = BodyFirstWriter(io.BytesIO(), data_key=os.urandom(32), frame_length=F)
    w.write(os.urandom(2 * F))
    pending = w.suspend()
    assert len(pending) == F and w.frames_emitted == 1
    with pytest.raises(StreamClosedError):
        w.write(b"x")
    with pytest.raises(StreamClosedError):
        w.header(context=CTX, encrypted_data_keys=())


def test_continuing_needs_the_message_id() -> None:
    with pytest.raises(ValidationError):
        BodyFirstWriter(io.BytesIO(), data_key=os.urandom(32), frame_length=F, sealed_frames=3)
