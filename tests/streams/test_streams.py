"""Streaming writer, reader, iterators and the body-first writer."""

from __future__ import annotations

import hashlib
import io
import os
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecrcrypt import DecryptPolicy, decrypt, encrypt
from ecrcrypt.context import EncryptionContext
from ecrcrypt.digest import Digest
from ecrcrypt.errors import (
    AuthenticationError,
    DataKeyDecryptionError,
    EncryptionContextMismatchError,
    MessageLimitError,
    StreamClosedError,
    ValidationError,
)
from ecrcrypt.format import frames as _frames
from ecrcrypt.format.message import open_header
from ecrcrypt.providers.raw_aes import RawAesKeyProvider
from ecrcrypt.strategies import chunked, encryption_contexts, plaintexts
from ecrcrypt.streams import (
    BodyFirstWriter,
    DecryptingReader,
    EncryptingWriter,
    header_length,
    iter_decrypt,
    iter_encrypt,
)
from ecrcrypt.streams import decrypting_iterator as streams

PROVIDER = RawAesKeyProvider(key_namespace="ecrcrypt-test", key_name="k", wrapping_key=bytes(range(32)))
CTX = {"aws:ecr:arn": "arn:aws:ecr:us-east-1:123456789012:repository/app", "aws:s3:arn": "arn:aws:s3:::b/k"}
F = 64
LENGTHS = [0, 1, F - 1, F, F + 1, 2 * F, 2 * F + 500]
WRITE_SIZES = [1, 512, F - 1, F, F + 1]
DATA = os.urandom(2 * F + 500)


def _encrypt_stream(plaintext: bytes, write_size: int, **kwargs: object) -> tuple[bytes, EncryptingWriter]:
    out = io.BytesIO()
    with EncryptingWriter(out, provider=PROVIDER, context=CTX, frame_length=F, **kwargs) as writer:  # type: ignore[arg-type]
        for i in range(0, len(plaintext), write_size):
            assert writer.write(plaintext[i : i + write_size]) == len(plaintext[i : i + write_size])
    return out.getvalue(), writer


def _read_all(reader: DecryptingReader, size: int) -> bytes:
    out = bytearray()
    while True:
        piece = reader.read(size)
        if not piece:
            return bytes(out)
        out += piece


def _last_n(ct: bytes) -> int:
    # The final frame's content length, found by scanning back for a consistent layout.
    for n in range(F + 1):
        start = len(ct) - 40 - n
        if start >= 0 and ct[start : start + 4] == b"\xff" * 4 and struct.unpack_from(">I", ct, start + 20)[0] == n:
            return n
    raise AssertionError("no final frame")


@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("write_size", WRITE_SIZES)
def test_writer_grid(length: int, write_size: int) -> None:
    plaintext = DATA[:length]
    ct, writer = _encrypt_stream(plaintext, write_size, compute_sha256=True)
    assert writer.closed and writer.plaintext_length == length and writer.ciphertext_length == len(ct)
    assert writer.sha256 == Digest(hashlib.sha256(plaintext).hexdigest())
    assert decrypt(ct, provider=PROVIDER, context=CTX) == plaintext
    # Exact multiples end with a full final frame; the empty plaintext with an empty one.
    expected_final = 0 if length == 0 else length - (length - 1) // F * F
    assert _last_n(ct) == expected_final
    for read_size in (1, 7, F, F + 1, 10_000):
        reader = DecryptingReader(io.BytesIO(ct), provider=PROVIDER, context=CTX, compute_sha256=True)
        assert reader.sha256 is None
        assert _read_all(reader, read_size) == plaintext
        assert reader.sha256 == writer.sha256
    chunks = [plaintext[i : i + write_size] for i in range(0, length, write_size)]
    ct2 = b"".join(iter_encrypt(chunks, provider=PROVIDER, context=CTX, frame_length=F))
    assert b"".join(iter_decrypt([ct2[i : i + write_size] for i in range(0, len(ct2), write_size)],
                                 provider=PROVIDER, context=CTX)) == plaintext  # fmt: skip


@given(plaintexts(frame_length=F, max_frames=4).flatmap(lambda p: st.tuples(st.just(p), chunked(p, frame_length=F))),
       encryption_contexts(max_pairs=3), st.booleans())  # fmt: skip
def test_round_trip_property(case: tuple[bytes, list[bytes]], context: EncryptionContext, sha: bool) -> None:
    plaintext, chunks = case
    out = io.BytesIO()
    with EncryptingWriter(out, provider=PROVIDER, context=context, frame_length=F, compute_sha256=sha) as w:
        for chunk in chunks:
            w.write(chunk)
    ct = out.getvalue()
    reader = DecryptingReader(io.BytesIO(ct), provider=PROVIDER, context=context, compute_sha256=sha)
    assert reader.read() == plaintext
    assert reader.context == context
    assert (reader.sha256 == w.sha256) and ((w.sha256 is not None) == sha)
    assert b"".join(iter_decrypt(iter(chunks_of(ct, 37)), provider=PROVIDER, context=context)) == plaintext


def chunks_of(data: bytes, n: int) -> list[bytes]:
    return [data[i : i + n] for i in range(0, len(data), n)]


def test_large_writes_and_memoryview_input() -> None:
    plaintext = os.urandom(10 * F + 3)
    for data in (plaintext, bytearray(plaintext), memoryview(plaintext)):
        out = io.BytesIO()
        with EncryptingWriter(out, provider=PROVIDER, context=CTX, frame_length=F) as w:
            w.write(data)
        assert decrypt(out.getvalue(), provider=PROVIDER, context=CTX) == plaintext


def test_writer_does_not_keep_a_reference_to_mutable_input() -> None:
    buf = bytearray(b"a" * F)
    out = io.BytesIO()
    with EncryptingWriter(out, provider=PROVIDER, context=CTX, frame_length=F) as w:
        w.write(buf)
        buf[:] = b"b" * F  # caller reuses its buffer
        w.write(buf)
        buf[:] = b"c" * F
    assert decrypt(out.getvalue(), provider=PROVIDER, context=CTX) == b"a" * F + b"b" * F


def test_large_sha256_writes_use_the_hashing_thread() -> None:
    plaintext = os.urandom(600 * 1024 + 5)
    ct, w = _encrypt_stream(plaintext, len(plaintext), compute_sha256=True)
    assert w.sha256 == Digest.of(plaintext)
    reader = DecryptingReader(io.BytesIO(ct), provider=PROVIDER, context=CTX, compute_sha256=True)
    assert reader.read() == plaintext and reader.sha256 == w.sha256


class NoCloseSink(io.BytesIO):
    def close(self) -> None:
        raise AssertionError("the writer must not close its destination")


def test_close_semantics() -> None:
    sink = NoCloseSink()
    w = EncryptingWriter(sink, provider=PROVIDER, context=CTX, frame_length=F)
    w.write(b"abc")
    w.close()
    w.close()  # idempotent
    with pytest.raises(StreamClosedError):
        w.write(b"more")
    assert decrypt(sink.getvalue(), provider=PROVIDER, context=CTX) == b"abc"


def test_an_exception_inside_with_writes_no_final_frame() -> None:
    out = io.BytesIO()
    with pytest.raises(RuntimeError), EncryptingWriter(out, provider=PROVIDER, context=CTX, frame_length=F) as w:
        w.write(os.urandom(3 * F))
        raise RuntimeError("producer failed")
    with pytest.raises(AuthenticationError):
        decrypt(out.getvalue(), provider=PROVIDER, context=CTX)


def test_writer_errors_are_sticky() -> None:
    class Failing:
        def __init__(self) -> None:
            self.calls = 0

        def write(self, data: bytes | memoryview) -> int:
            self.calls += 1
            if self.calls > 1:
                raise OSError("disk full")
            return len(data)

    w = EncryptingWriter(Failing(), provider=PROVIDER, context=CTX, frame_length=F)
    with pytest.raises(OSError):
        w.write(os.urandom(3 * F))
    with pytest.raises(StreamClosedError):
        w.write(b"x")
    with pytest.raises(StreamClosedError):
        w.close()


def test_invalid_writer_arguments() -> None:
    with pytest.raises(ValidationError):
        EncryptingWriter(io.BytesIO(), provider=PROVIDER, context=CTX, frame_length=100)
    with pytest.raises(ValidationError):
        EncryptingWriter(io.BytesIO(), provider=PROVIDER, context={"aws-crypto-x": "y"})


# ------------------------------------------------------------------------------ reader failures


def _split(ct: bytes, plaintext_length: int) -> tuple[bytes, list[bytes], bytes]:
    body_len = _frames.body_length(plaintext_length, F)
    head, body = ct[: len(ct) - body_len], ct[len(ct) - body_len :]
    regular, _ = _frames.frame_counts(plaintext_length, F)
    step = F + 32
    return head, [body[i * step : (i + 1) * step] for i in range(regular)], body[regular * step :]


PLAIN = os.urandom(4 * F + 10)
CT = encrypt(PLAIN, provider=PROVIDER, context=CTX, frame_length=F)


def _tampered() -> dict[str, bytes]:
    head, frames, final = _split(CT, len(PLAIN))
    flipped = bytearray(frames[2])
    flipped[40] ^= 1
    return {
        "flip in frame 3": head + frames[0] + frames[1] + bytes(flipped) + frames[3] + final,
        "swap 2 and 3": head + frames[0] + frames[2] + frames[1] + frames[3] + final,
        "duplicate 2": head + frames[0] + frames[1] + frames[1] + frames[2] + frames[3] + final,
        "drop 3": head + frames[0] + frames[1] + frames[3] + final,
        "truncated (no final frame)": head + b"".join(frames),
        "truncated inside frame 3": (head + frames[0] + frames[1] + frames[2])[:-5],
        "trailing bytes": CT + b"\x00",
    }


@pytest.mark.parametrize("name", list(_tampered()))
@pytest.mark.parametrize("read_size", [1, F, 4096])
def test_reader_releases_only_verified_frames(name: str, read_size: int) -> None:
    bad = _tampered()[name]
    reader = DecryptingReader(io.BytesIO(bad), provider=PROVIDER, context=CTX)
    got = bytearray()
    with pytest.raises(AuthenticationError):
        while True:
            piece = reader.read(read_size)
            if not piece:
                break
            got += piece
    # Everything released is a prefix of the true plaintext, and never past a bad frame.
    assert PLAIN.startswith(bytes(got))
    limit = {"flip in frame 3": 2 * F, "swap 2 and 3": F, "duplicate 2": 2 * F, "drop 3": 2 * F}
    assert len(got) <= limit.get(name, 4 * F)
    # Errors are sticky: no later call returns anything.
    with pytest.raises(StreamClosedError):
        reader.read(1)
    with pytest.raises(StreamClosedError):
        reader.readinto(bytearray(10))


def test_reader_wipes_a_caller_buffer_when_a_frame_fails() -> None:
    head, frames, final = _split(CT, len(PLAIN))
    flipped = bytearray(frames[0])
    flipped[20] ^= 1
    reader = DecryptingReader(io.BytesIO(head + bytes(flipped) + final), provider=PROVIDER, context=CTX)
    buf = bytearray(b"\xaa" * (4 * F))
    with pytest.raises(AuthenticationError):
        reader.readinto(buf)
    assert buf[:F] == bytes(F)  # no unverified plaintext left behind


def test_reader_header_failures() -> None:
    other_key = RawAesKeyProvider(key_namespace="ecrcrypt-test", key_name="k", wrapping_key=os.urandom(32))
    with pytest.raises(DataKeyDecryptionError):
        DecryptingReader(io.BytesIO(CT), provider=other_key, context=CTX)
    with pytest.raises(EncryptionContextMismatchError):
        DecryptingReader(io.BytesIO(CT), provider=PROVIDER, context={**CTX, "aws:s3:arn": "arn:aws:s3:::b/x"})
    bad = bytearray(CT)
    bad[5] ^= 1  # message id
    with pytest.raises(AuthenticationError):
        DecryptingReader(io.BytesIO(bytes(bad)), provider=PROVIDER, context=CTX)


def test_reader_body_limit() -> None:
    reader = DecryptingReader(io.BytesIO(CT), provider=PROVIDER, context=CTX, policy=DecryptPolicy(max_body_size=F))
    with pytest.raises(MessageLimitError):
        reader.read()


class Trickle(io.RawIOBase):
    """A source with only ``read`` that returns at most 3 bytes per call."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def read(self, n: int = -1) -> bytes:
        return self._data.read(min(n, 3) if n >= 0 else 3)

    readinto = None  # type: ignore[assignment]


def test_reader_over_short_reads_and_buffered_wrappers() -> None:
    assert DecryptingReader(Trickle(CT), provider=PROVIDER, context=CTX).read() == PLAIN
    with DecryptingReader(io.BytesIO(CT), provider=PROVIDER, context=CTX) as raw:
        assert io.BufferedReader(raw).read() == PLAIN
    # A file on disk (not BytesIO) goes through readinto.
    with DecryptingReader(io.BufferedReader(io.BytesIO(CT)), provider=PROVIDER, context=CTX) as r:
        buf = bytearray(10 * F)
        n = r.readinto(buf)
        assert bytes(buf[:n]) == PLAIN[:n] and n > 0


def test_reader_close_and_bytesio_position() -> None:
    source = io.BytesIO(CT)
    reader = DecryptingReader(source, provider=PROVIDER, context=CTX)
    assert reader.read(F) == PLAIN[:F]
    reader.close()
    with pytest.raises(StreamClosedError):
        reader.read(1)
    source.close()  # the reader holds no export of the BytesIO


def test_nested_messages_stream() -> None:
    # The DSSE pattern: an inner message written through an outer writer, read back nested.
    out = io.BytesIO()
    inner_ctx = {"layer": "inner"}
    with EncryptingWriter(out, provider=PROVIDER, context=CTX, frame_length=F) as outer:  # noqa: SIM117
        with EncryptingWriter(outer, provider=PROVIDER, context=inner_ctx, frame_length=F + 16) as inner:
            inner.write(PLAIN)
    outer_reader = DecryptingReader(io.BytesIO(out.getvalue()), provider=PROVIDER, context=CTX)
    inner_reader = DecryptingReader(outer_reader, provider=PROVIDER, context=inner_ctx, compute_sha256=True)
    assert inner_reader.read() == PLAIN and inner_reader.sha256 == Digest.of(PLAIN)


# ------------------------------------------------------------------------------ body-first writer


@pytest.mark.parametrize("length", [0, F, 3 * F + 1])
def test_body_first_writer(length: int) -> None:
    plaintext = DATA[:length] if length <= len(DATA) else os.urandom(length)
    data_key = os.urandom(32)
    body = io.BytesIO()
    with BodyFirstWriter(body, data_key=data_key, frame_length=F, compute_sha256=True) as w:
        with pytest.raises(StreamClosedError):
            w.header(context=CTX, encrypted_data_keys=[])
        w.write(plaintext)
    assert w.sha256 == Digest.of(plaintext) and w.body_length == len(body.getvalue())
    context = EncryptionContext({**CTX, "aws:s3:arn": f"arn:aws:s3:::b/{w.sha256}"})
    edks = PROVIDER.encrypt_data_key(data_key, context)
    header = w.header(context=context, encrypted_data_keys=edks)
    assert len(header) == header_length(context=context, encrypted_data_keys=edks, frame_length=F)
    message = header + body.getvalue()
    assert decrypt(message, provider=PROVIDER, context=context) == plaintext
    assert DecryptingReader(io.BytesIO(message), provider=PROVIDER, context=context).read() == plaintext
    with pytest.raises(EncryptionContextMismatchError):
        decrypt(message, provider=PROVIDER, context=CTX)
    # EDKs that wrap another key cannot be paired with this body (commitment / unwrap).
    foreign = PROVIDER.encrypt_data_key(os.urandom(32), context)
    with pytest.raises(AuthenticationError):
        decrypt(w.header(context=context, encrypted_data_keys=foreign) + body.getvalue(), provider=PROVIDER,
                context=context)  # fmt: skip


def test_body_first_writer_validates_the_data_key() -> None:
    with pytest.raises(ValidationError):
        BodyFirstWriter(io.BytesIO(), data_key=b"short")


def test_sha256_pipeline_with_large_frames_and_mixed_buffers() -> None:
    # Large frames take the threaded, batched hashing path on both sides: deferred
    # immutable writes, synchronous mutable ones, and the reader's ring of buffers,
    # which wraps around several times here.
    frame = 64 * 1024
    plaintext = os.urandom(9 * 1024 * 1024 + 11)
    view = memoryview(plaintext)
    sizes = [1, 70_000, 300_000, frame, 2 * 1024 * 1024, 5, 1024 * 1024 + 3]
    out = io.BytesIO()
    with EncryptingWriter(out, provider=PROVIDER, context=CTX, frame_length=frame, compute_sha256=True) as w:
        pos, i = 0, 0
        while pos < len(plaintext):
            piece = view[pos : pos + sizes[i % len(sizes)]]
            w.write(bytearray(piece) if i % 2 else bytes(piece))  # mutable and immutable alternately
            pos += len(piece)
            i += 1
    assert w.sha256 == Digest.of(plaintext)
    for read_size in (frame, 1 << 20, 1000):
        reader = DecryptingReader(io.BytesIO(out.getvalue()), provider=PROVIDER, context=CTX, compute_sha256=True)
        assert _read_all(reader, read_size) == plaintext
        assert reader.sha256 == Digest.of(plaintext)


@pytest.fixture(params=["copy", "incremental"])
def split_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """iter_decrypt opens a frame split across chunks by copying it (small frames) or by
    incremental GCM where its pieces lie (large frames): run the iterator tests both ways."""
    monkeypatch.setattr(streams, "_COPY_MAX", 1 << 30 if request.param == "copy" else 0)
    return str(request.param)


@pytest.mark.parametrize("name", list(_tampered()))
@pytest.mark.parametrize("chunk", [1, 7, F + 31, F + 32, F + 33, 1000])
def test_iter_decrypt_releases_only_verified_frames(name: str, chunk: int, split_mode: str) -> None:
    bad = _tampered()[name]
    got = bytearray()
    with pytest.raises(AuthenticationError):
        for piece in iter_decrypt(chunks_of(bad, chunk), provider=PROVIDER, context=CTX):
            got += piece
    assert PLAIN.startswith(bytes(got))
    limit = {"flip in frame 3": 2 * F, "swap 2 and 3": F, "duplicate 2": 2 * F, "drop 3": 2 * F}
    assert len(got) <= limit.get(name, 4 * F)


@pytest.mark.parametrize("chunk", [1, 5, 16, F - 1, F + 31, F + 33, 10_000])
def test_iter_decrypt_over_any_chunking(chunk: int, split_mode: str) -> None:
    assert b"".join(iter_decrypt(chunks_of(CT, chunk), provider=PROVIDER, context=CTX)) == PLAIN
    assert b"".join(iter_decrypt([b"", *chunks_of(CT, chunk), b""], provider=PROVIDER, context=CTX)) == PLAIN
    with pytest.raises(MessageLimitError):
        list(iter_decrypt(chunks_of(CT, chunk), provider=PROVIDER, context=CTX, policy=DecryptPolicy(max_body_size=F)))


def test_iterator_pieces_stay_owned_while_buffers_are_reused(split_mode: str) -> None:
    """Pieces the consumer keeps never change, though dropped ones are recycled (same frames)."""
    plaintext = os.urandom(12 * F + 100)
    kept_ct: dict[int, bytes] = {}
    kept_objects: list[bytes | bytearray] = []
    parts: list[bytes] = []
    for i, piece in enumerate(iter_encrypt(chunks_of(plaintext, F), provider=PROVIDER, context=CTX, frame_length=F)):
        assert isinstance(piece, bytes | bytearray)
        parts.append(bytes(piece))
        if i % 3 == 0:
            kept_objects.append(piece)
            kept_ct[len(kept_objects) - 1] = bytes(piece)
    for index, snapshot in kept_ct.items():
        assert kept_objects[index] == snapshot
    ciphertext = b"".join(parts)
    kept_pt: list[bytes | bytearray] = []
    snapshots: list[bytes] = []
    out: list[bytes] = []
    for i, piece in enumerate(iter_decrypt(chunks_of(ciphertext, F // 2 + 7), provider=PROVIDER, context=CTX)):
        out.append(bytes(piece))
        if i % 2:
            kept_pt.append(piece)
            snapshots.append(bytes(piece))
    assert b"".join(out) == plaintext
    assert [bytes(p) for p in kept_pt] == snapshots


def test_iter_decrypt_wipes_a_frame_that_fails_in_a_reused_buffer(split_mode: str) -> None:
    ciphertext = b"".join(iter_encrypt([os.urandom(4 * F)], provider=PROVIDER, context=CTX, frame_length=F))
    bad = bytearray(ciphertext)
    bad[-(F + 40 + 5)] ^= 1  # inside the last regular frame's ciphertext
    released = 0
    with pytest.raises(AuthenticationError):
        for piece in iter_decrypt(chunks_of(bytes(bad), F + 5), provider=PROVIDER, context=CTX):
            released += len(piece)
    assert released == 2 * F


def test_iter_decrypt_frames_split_at_every_position(split_mode: str) -> None:
    """Two chunks cut anywhere (inside a prefix, a ciphertext, a tag, between frames), and
    every chunk size from 1 byte to beyond a frame."""
    for cut in range(len(CT) + 1):
        assert b"".join(iter_decrypt([CT[:cut], CT[cut:]], provider=PROVIDER, context=CTX)) == PLAIN
    for size in range(1, 2 * (F + 40)):
        assert b"".join(iter_decrypt(chunks_of(CT, size), provider=PROVIDER, context=CTX)) == PLAIN
    mixed: list[bytes | bytearray | memoryview] = [
        memoryview(CT)[:100],
        bytearray(CT[100:101]),
        b"",
        CT[101:300],
        memoryview(CT)[300:],
    ]
    assert b"".join(iter_decrypt(mixed, provider=PROVIDER, context=CTX)) == PLAIN


@pytest.mark.parametrize("length", LENGTHS)
def test_iter_decrypt_every_length_every_cut(length: int, split_mode: str) -> None:
    plaintext = DATA[:length]
    ciphertext = encrypt(plaintext, provider=PROVIDER, context=CTX, frame_length=F)
    for cut in range(len(ciphertext) + 1):
        pieces = list(iter_decrypt([ciphertext[:cut], ciphertext[cut:]], provider=PROVIDER, context=CTX))
        assert b"".join(pieces) == plaintext
        assert all(isinstance(p, bytearray) for p in pieces)


@pytest.mark.parametrize("cut", [0, 10, F + 10])
def test_iter_decrypt_truncated_or_trailing_at_any_cut(cut: int, split_mode: str) -> None:
    for bad in (CT[: len(CT) - 1], CT[: len(CT) - 30], CT + b"\x00", CT + CT[:50]):
        got = bytearray()
        with pytest.raises(AuthenticationError):
            for piece in iter_decrypt([bad[:cut], bad[cut:]], provider=PROVIDER, context=CTX):
                got += piece
        assert got == PLAIN[: len(got)]
        assert len(got) <= 4 * F  # the final frame (10 bytes) is never released


def _at_first_frame(ct: bytes, chunk: int) -> tuple[streams._Chunks, streams._SplitOpener, bytes, bytearray]:
    """A source positioned on the first frame's ciphertext, with its opener, IV and AAD."""
    src = streams._Chunks(chunks_of(ct, chunk))
    opened = open_header(src.read, provider=PROVIDER, context=CTX, policy=DecryptPolicy())
    assert struct.unpack(">I", src.read(4))[0] == 1
    iv = src.read(12)
    return src, streams._SplitOpener(opened), iv, _frames.FrameAad(opened.header.message_id).regular(1, F)


@pytest.mark.parametrize("chunk", [1, 7, 50, 10_000])
def test_split_opener_wipes_its_output_on_a_bad_tag_or_truncation(chunk: int, split_mode: str) -> None:
    head, frames, final = _split(CT, len(PLAIN))
    # The frame as written opens (the AAD and the message id are right).
    src, opener, iv, aad = _at_first_frame(CT, chunk)
    out = bytearray(b"\xaa" * F)
    opener.open(src, iv, aad, out, "truncated")
    assert bytes(out) == PLAIN[:F]
    for where in (20, F + 20):  # in the ciphertext, in the tag
        flipped = bytearray(frames[0])
        flipped[where] ^= 1
        src, opener, iv, aad = _at_first_frame(head + bytes(flipped) + b"".join(frames[1:]) + final, chunk)
        out = bytearray(b"\xaa" * F)
        with pytest.raises(AuthenticationError):
            opener.open(src, iv, aad, out, "truncated")
        assert out == bytes(F)
    src, opener, iv, aad = _at_first_frame(head + frames[0][: F + 20], chunk)
    out = bytearray(b"\xaa" * F)
    with pytest.raises(AuthenticationError, match="truncated"):
        opener.open(src, iv, aad, out, "truncated")
    assert out == bytes(F)


def test_recycled_buffers_are_wiped_and_never_taken_from_a_consumer() -> None:
    """Buffers pass from one finished generator to the next only when nothing else holds them,
    and are zeroed in between: what a consumer kept from one message never changes."""
    kept = list(iter_decrypt(chunks_of(CT, 1000), provider=PROVIDER, context=CTX))
    snapshot = [bytes(p) for p in kept]
    dropped = 0
    for piece in iter_decrypt(chunks_of(CT, 1000), provider=PROVIDER, context=CTX):
        dropped += len(piece)
    del piece
    assert dropped == len(PLAIN)
    if streams._REUSE_OWNED:
        assert streams._spare  # the frames this consumer dropped went back to the pool
    assert all(not any(buf) for buf in streams._spare)  # wiped
    other = os.urandom(6 * F)
    ct2 = encrypt(other, provider=PROVIDER, context=CTX, frame_length=F)
    assert b"".join(iter_decrypt(chunks_of(ct2, F + 32), provider=PROVIDER, context=CTX)) == other
    assert [bytes(p) for p in kept] == snapshot
    assert b"".join(kept) == PLAIN


def test_iter_decrypt_full_final_frame_stays_owned() -> None:
    plaintext = os.urandom(6 * F)  # the final frame is full: it comes from the recycled buffers
    ciphertext = encrypt(plaintext, provider=PROVIDER, context=CTX, frame_length=F)
    pieces = []
    for piece in iter_decrypt(chunks_of(ciphertext, F + 32), provider=PROVIDER, context=CTX):
        pieces.append((piece, bytes(piece)))
    assert [len(p) for p, _ in pieces] == [F] * 6
    assert len({id(p) for p, _ in pieces}) == 6
    assert all(bytes(p) == snap for p, snap in pieces)
    assert b"".join(snap for _, snap in pieces) == plaintext


# ------------------------------------------------------------------------------ review regressions


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_sha256_writer_works_in_a_forked_child() -> None:
    # The parent's hashing pool has worker threads; a forked child inherits the pool object
    # but none of its threads, so it must build its own instead of waiting on a dead one.
    import signal

    plaintext = os.urandom(600 * 1024 + 5)
    assert _encrypt_stream(plaintext, len(plaintext), compute_sha256=True)[1].sha256 == Digest.of(plaintext)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        code = 1
        try:
            os.close(read_end)
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
            signal.alarm(30)  # a hang kills the child instead of the test run
            ct, w = _encrypt_stream(plaintext, len(plaintext), compute_sha256=True)
            r = DecryptingReader(io.BytesIO(ct), provider=PROVIDER, context=CTX, compute_sha256=True)
            ok = r.read() == plaintext and r.sha256 == w.sha256
            os.write(write_end, f"{w.sha256} {ok}".encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        report = pipe.read().decode()
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    assert report == f"{Digest.of(plaintext)} True"


def test_iter_decrypt_errors_are_sticky() -> None:
    bad = _tampered()["flip in frame 3"]
    it = iter_decrypt(chunks_of(bad, 1000), provider=PROVIDER, context=CTX)
    got = bytearray()
    with pytest.raises(AuthenticationError) as first:
        for piece in it:
            got += piece
    assert PLAIN.startswith(bytes(got))
    for _ in range(2):
        with pytest.raises(StreamClosedError) as again:
            next(it)
        assert again.value.__cause__ is first.value


def test_iter_decrypt_header_and_source_errors_are_sticky() -> None:
    it = iter_decrypt([CT], provider=PROVIDER, context={"other": "context"})
    with pytest.raises(EncryptionContextMismatchError) as first:
        next(it)
    with pytest.raises(StreamClosedError) as again:
        next(it)
    assert again.value.__cause__ is first.value

    def failing_source() -> object:
        yield CT[:100]
        raise OSError("connection reset")

    it = iter_decrypt(failing_source(), provider=PROVIDER, context=CTX)  # type: ignore[arg-type]
    with pytest.raises(OSError) as source_error:
        list(it)
    with pytest.raises(StreamClosedError) as again:
        next(it)
    assert again.value.__cause__ is source_error.value


def test_iter_decrypt_ends_normally_and_stays_ended() -> None:
    it = iter_decrypt(chunks_of(CT, 1000), provider=PROVIDER, context=CTX)
    assert iter(it) is it
    assert b"".join(it) == PLAIN
    for _ in range(2):
        with pytest.raises(StopIteration):
            next(it)


def test_body_first_writer_refuses_the_header_after_it_was_abandoned() -> None:
    data_key = os.urandom(32)
    edks = PROVIDER.encrypt_data_key(data_key, EncryptionContext(CTX))
    with pytest.raises(RuntimeError), BodyFirstWriter(io.BytesIO(), data_key=data_key, frame_length=F) as w:
        w.write(b"x" * 40)
        raise RuntimeError("upload interrupted")
    assert w.closed
    with pytest.raises(StreamClosedError):
        w.header(context=CTX, encrypted_data_keys=edks)
    abandoned = BodyFirstWriter(io.BytesIO(), data_key=data_key, frame_length=F)
    abandoned.abandon()
    abandoned.close()  # a no-op on an abandoned writer: it does not make the body complete
    with pytest.raises(StreamClosedError):
        abandoned.header(context=CTX, encrypted_data_keys=edks)


def test_body_first_writer_refuses_the_header_after_a_failed_close() -> None:
    class FailsOnFinal(io.BytesIO):
        def write(self, data: object) -> int:
            raise OSError("disk full")

    data_key = os.urandom(32)
    w = BodyFirstWriter(FailsOnFinal(), data_key=data_key, frame_length=F)
    w.write(b"x" * 10)
    with pytest.raises(OSError):
        w.close()
    with pytest.raises(StreamClosedError):
        w.header(context=CTX, encrypted_data_keys=PROVIDER.encrypt_data_key(data_key, EncryptionContext(CTX)))
