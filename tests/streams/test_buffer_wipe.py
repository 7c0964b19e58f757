"""Frame buffers go back to the pool wiped, however little or much of them a stream wrote.

``DecryptingReader`` and the writers wipe only the bytes of their buffers they may have written (the rest are still
the zeros they were taken with), so a small object does not pay for wiping a whole 1 MiB frame
buffer. These properties check the pool holds nothing but zeros after every kind of read, a
partial read, a tampered message and a source that fails mid-frame -- and that the reader did
hand buffers to the pool, so the check is not vacuous.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ecrcrypt import encrypt
from ecrcrypt.errors import AuthenticationError
from ecrcrypt.providers.raw_aes import RawAesKeyProvider
from ecrcrypt.streams import DecryptingReader, EncryptingWriter, owned

PROVIDER = RawAesKeyProvider(key_namespace="ecrcrypt-test", key_name="k", wrapping_key=bytes(range(32)))
CTX = {"aws:ecr:arn": "arn:aws:ecr:us-east-1:123456789012:repository/app", "aws:s3:arn": "arn:aws:s3:::b/k"}


class _Stream(io.RawIOBase):
    """A non-BytesIO source (the reader copies it into its own ciphertext buffer), read in
    pieces of ``step`` bytes, failing with ``OSError`` after ``fail_after`` bytes when given."""

    def __init__(self, data: bytes, step: int, fail_after: int | None = None) -> None:
        self._data = memoryview(data)
        self._pos = 0
        self._step = step
        self._fail_after = fail_after

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self._fail_after is not None and self._pos >= self._fail_after:
            raise OSError("the source failed")
        n = min(len(b), self._step, len(self._data) - self._pos)
        b[:n] = self._data[self._pos : self._pos + n]
        self._pos += n
        return n


def _pool_is_clean() -> bool:
    return all(not any(buf) for buf in owned._spare)


def _drain(reader: DecryptingReader, how: str, stop: int | None) -> bytes:
    out = bytearray()
    while stop is None or len(out) < stop:
        if how == "view":
            piece = bytes(reader.read_view())
        elif how == "small":
            piece = reader.read(7)
        else:
            buf = bytearray(1 << 16)
            piece = bytes(buf[: reader.readinto(buf)])
        if not piece:
            break
        out += piece
    return bytes(out)


@pytest.fixture(autouse=True)
def _empty_pool() -> None:
    with owned._spare_lock:
        owned._spare.clear()


@settings(max_examples=120, deadline=None)
@given(
    size=st.integers(0, 9000),
    frame=st.sampled_from([64, 1008, 4096, 1 << 20]),
    how=st.sampled_from(["view", "small", "into"]),
    step=st.sampled_from([1, 13, 4096, 1 << 20]),
    stop=st.one_of(st.none(), st.integers(0, 9000)),
    data=st.data(),
)
def test_the_pool_holds_only_zeros_after_any_read(
    size: int, frame: int, how: str, step: int, stop: int | None, data: st.DataObject
) -> None:
    with owned._spare_lock:
        owned._spare.clear()
    plaintext = data.draw(st.binary(min_size=size, max_size=size)) or b""
    plaintext = bytes((b | 1) for b in plaintext)  # no zero byte: any leftover shows
    message = encrypt(plaintext, provider=PROVIDER, context=CTX, frame_length=frame)
    reader = DecryptingReader(_Stream(message, step), provider=PROVIDER, context=CTX)
    got = _drain(reader, how, stop)
    reader.close()
    assert plaintext.startswith(got)
    if owned._REUSE_OWNED and frame <= owned._SPARE_MAX_SIZE:
        assert owned._spare  # the reader's buffers went to the pool: the next line checks something
    assert _pool_is_clean()


@settings(max_examples=60, deadline=None)
@given(size=st.integers(1, 5000), frame=st.sampled_from([64, 1008]), where=st.floats(0, 1), fail=st.booleans())
def test_tampered_or_failing_sources_leave_the_pool_clean(size: int, frame: int, where: float, fail: bool) -> None:
    with owned._spare_lock:
        owned._spare.clear()
    plaintext = b"\xa5" * size
    message = bytearray(encrypt(plaintext, provider=PROVIDER, context=CTX, frame_length=frame))
    header = len(message) - size - 16 * (size // frame + 1) - 8 * (size // frame + 1)
    at = max(header, min(len(message) - 1, header + int(where * (len(message) - header))))
    if fail:
        source = _Stream(bytes(message), 97, fail_after=at)
    else:
        message[at] ^= 0x40
        source = _Stream(bytes(message), 97)
    try:
        reader = DecryptingReader(source, provider=PROVIDER, context=CTX)
    except AuthenticationError:
        return  # the flip hit the header: refused before any frame buffer was taken
    with pytest.raises((AuthenticationError, OSError)):
        while reader.read(100):
            pass
    reader.close()
    assert _pool_is_clean()


@settings(max_examples=120, deadline=None)
@given(
    pieces=st.lists(st.integers(0, 3000), max_size=8),
    frame=st.sampled_from([64, 1008, 4096, 1 << 20]),
    finish=st.sampled_from(["close", "abandon"]),
)
@example(pieces=[64], frame=64, finish="close")  # a full last frame: held, then reopened into the pending buffer
@example(pieces=[2000, 16], frame=1008, finish="close")
def test_the_pool_holds_only_zeros_after_any_write(pieces: list[int], frame: int, finish: str) -> None:
    with owned._spare_lock:
        owned._spare.clear()
    out = io.BytesIO()
    writer = EncryptingWriter(out, provider=PROVIDER, context=CTX, frame_length=frame)
    for n in pieces:
        writer.write(b"\xc3" * n)  # no zero byte: any leftover shows
    if finish == "close":
        writer.close()
        assert DecryptingReader(io.BytesIO(out.getvalue()), provider=PROVIDER, context=CTX).read() == b"\xc3" * sum(
            pieces
        )
    else:
        writer.abandon()
    if owned._REUSE_OWNED and frame <= owned._SPARE_MAX_SIZE:
        assert owned._spare
    assert _pool_is_clean()
