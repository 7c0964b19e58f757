"""DecryptingReader.read_view / read_chunk: the copy-free drain of a reader (what a pull uses)."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest

from ecrcrypt.digest import Digest
from ecrcrypt.errors import AuthenticationError, StreamClosedError
from ecrcrypt.providers.raw_aes import RawAesKeyProvider
from ecrcrypt.streams import DecryptingReader
from ecrcrypt.streams.oneshot import encrypt

PROVIDER = RawAesKeyProvider(key_namespace="ecrcrypt-test", key_name="k", wrapping_key=bytes(range(32)))
CTX = {"aws:ecr:arn": "arn:aws:ecr:us-east-1:123456789012:repository/app"}
F = 64 * 1024  # large enough for the hash to be deferred to its thread (and the buffer ring to be used)


def _sources(ciphertext: bytes, tmp_path: Path) -> list[io.IOBase]:
    path = tmp_path / "message"
    path.write_bytes(ciphertext)
    return [io.BytesIO(ciphertext), open(path, "rb"), open(path, "rb", buffering=0)]


@pytest.mark.parametrize("length", [0, 1, F, F + 1, 5 * F + 17])
@pytest.mark.parametrize("sha", [False, True])
def test_views_and_chunks_give_the_plaintext_and_its_digest(tmp_path: Path, length: int, sha: bool) -> None:
    plaintext = os.urandom(length)
    ciphertext = encrypt(plaintext, provider=PROVIDER, context=CTX, frame_length=F)
    for source in _sources(ciphertext, tmp_path):
        with source, DecryptingReader(source, provider=PROVIDER, context=CTX, compute_sha256=sha) as reader:
            views = []
            while view := reader.read_view():
                assert view.readonly
                assert 0 < len(view) <= F
                views.append(bytes(view))  # valid until the next call: copied here
            assert len(reader.read_view()) == 0
        assert b"".join(views) == plaintext
        if sha:
            assert reader.sha256 == Digest(hashlib.sha256(plaintext).hexdigest())
    with DecryptingReader(io.BytesIO(ciphertext), provider=PROVIDER, context=CTX) as reader:
        chunks = []
        while chunk := reader.read_chunk():
            assert type(chunk) is bytes
            chunks.append(chunk)  # kept: each is the caller's own
    assert b"".join(chunks) == plaintext


def test_views_continue_where_readinto_stopped(tmp_path: Path) -> None:
    plaintext = os.urandom(3 * F + 5)
    ciphertext = encrypt(plaintext, provider=PROVIDER, context=CTX, frame_length=F)
    with DecryptingReader(io.BytesIO(ciphertext), provider=PROVIDER, context=CTX, compute_sha256=True) as reader:
        head = bytearray(100)
        assert reader.readinto(head) == 100
        rest = reader.read_chunk()
        assert len(rest) == F - 100  # what that frame had left
        tail = reader.read(10)
        while view := reader.read_view():
            tail += bytes(view)
    assert bytes(head) + rest + tail == plaintext
    assert reader.sha256 == Digest(hashlib.sha256(plaintext).hexdigest())


def test_a_tampered_frame_releases_nothing_and_the_failure_sticks() -> None:
    plaintext = os.urandom(3 * F)
    ciphertext = bytearray(encrypt(plaintext, provider=PROVIDER, context=CTX, frame_length=F))
    ciphertext[-F - 100] ^= 1  # in the second frame's ciphertext
    with DecryptingReader(io.BytesIO(bytes(ciphertext)), provider=PROVIDER, context=CTX) as reader:
        assert bytes(reader.read_view()) == plaintext[:F]
        with pytest.raises(AuthenticationError):
            reader.read_view()
        with pytest.raises(StreamClosedError):
            reader.read_chunk()


def test_closed_readers_leave_their_buffers_to_the_next_one_unless_a_view_is_held() -> None:
    from ecrcrypt.streams import owned

    plaintext = os.urandom(3 * F)
    ciphertext = encrypt(plaintext, provider=PROVIDER, context=CTX, frame_length=F)
    owned._spare.clear()
    with DecryptingReader(io.BufferedReader(io.BytesIO(ciphertext)), provider=PROVIDER, context=CTX) as reader:
        kept = reader.read_view()  # held past the reader's life (against read_view's contract)
        while reader.read_view():
            pass
    snapshot = bytes(kept)
    # The plaintext buffer behind ``kept`` stays out of the pool; the ciphertext buffer went in, wiped.
    assert [len(b) for b in owned._spare] == [F + 40]
    assert not any(owned._spare[0])
    with DecryptingReader(io.BufferedReader(io.BytesIO(ciphertext)), provider=PROVIDER, context=CTX) as again:
        assert not owned._spare  # taken by the next reader
        assert b"".join(bytes(view) for view in iter(again.read_view, b"")) == plaintext
    assert bytes(kept) == snapshot  # never overwritten by the second reader
    assert sorted(len(b) for b in owned._spare) == [F, F + 40]
    assert all(not any(b) for b in owned._spare)


def test_closed_writers_leave_their_buffers_to_the_next_stream() -> None:
    from ecrcrypt.streams import EncryptingWriter, owned

    owned._spare.clear()
    sink = io.BytesIO()
    with EncryptingWriter(sink, provider=PROVIDER, context=CTX, frame_length=F, compute_sha256=True) as writer:
        writer.write(os.urandom(2 * F + 3))
    assert sorted(len(b) for b in owned._spare) == [F, F + 40]
    assert all(not any(b) for b in owned._spare)  # the partial frame's plaintext is wiped
    plaintext = os.urandom(F + 1)
    with EncryptingWriter(sink := io.BytesIO(), provider=PROVIDER, context=CTX, frame_length=F) as again:
        assert not owned._spare
        again.write(plaintext)
    with DecryptingReader(io.BytesIO(sink.getvalue()), provider=PROVIDER, context=CTX) as reader:
        assert reader.read() == plaintext


def test_finished_iter_encrypt_leaves_the_buffers_nobody_holds() -> None:
    from ecrcrypt.streams import iter_decrypt, iter_encrypt, owned

    owned._spare.clear()
    plaintext = os.urandom(4 * F + 9)
    pieces = [plaintext[i : i + 1000] for i in range(0, len(plaintext), 1000)]
    kept = []
    for i, piece in enumerate(iter_encrypt(pieces, provider=PROVIDER, context=CTX, frame_length=F)):
        kept.append(bytes(piece) if i % 2 else piece)  # holds every other frame buffer itself
    del piece
    if owned._spare:  # exact reference counts (CPython with the GIL): see streams.owned
        assert all(not any(b) for b in owned._spare)
        assert {len(b) for b in owned._spare} <= {F, F + 32}
    ciphertext = b"".join(bytes(p) for p in kept)
    assert b"".join(iter_decrypt([ciphertext], provider=PROVIDER, context=CTX)) == plaintext


class _ReadOnly:
    """A source with neither peek nor readinto: the field-by-field header parse."""

    def __init__(self, data: bytes) -> None:
        self._f = io.BytesIO(data)

    def read(self, n: int) -> bytes:
        return self._f.read(n)


def _outcome(source: object) -> bytes | tuple[type, str]:
    try:
        with DecryptingReader(source, provider=PROVIDER, context=CTX) as reader:  # type: ignore[arg-type]
            return reader.read()
    except Exception as exc:  # every outcome is compared, whatever it is
        return type(exc), str(exc)


def test_a_peekable_source_has_its_header_parsed_in_one_pass_with_the_same_outcomes() -> None:
    plaintext = os.urandom(100)
    message = encrypt(plaintext, provider=PROVIDER, context=CTX, frame_length=F)
    source = io.BufferedReader(io.BytesIO(message))
    with DecryptingReader(source, provider=PROVIDER, context=CTX) as reader:
        assert source.tell() == len(message) - 100 - 40  # exactly the header was consumed
        assert reader.read() == plaintext
    header_length = len(message) - 100 - 40
    for cut in range(0, header_length + 1, 7):
        data = message[:cut]
        assert _outcome(io.BufferedReader(io.BytesIO(data))) == _outcome(_ReadOnly(data)), cut
    for i in range(header_length):
        data = message[:i] + bytes((message[i] ^ 0x80,)) + message[i + 1 :]
        assert _outcome(io.BufferedReader(io.BytesIO(data))) == _outcome(_ReadOnly(data)), i


def test_a_buffer_smaller_than_the_header_takes_the_field_by_field_parse() -> None:
    plaintext = os.urandom(100)
    message = encrypt(plaintext, provider=PROVIDER, context=CTX, frame_length=F)
    with DecryptingReader(io.BufferedReader(io.BytesIO(message), buffer_size=64), provider=PROVIDER, context=CTX) as r:
        assert r.read() == plaintext


def _iter_outcome(chunks: list[bytes]) -> bytes | tuple[type, str]:
    from ecrcrypt.streams import iter_decrypt

    try:
        return b"".join(iter_decrypt(chunks, provider=PROVIDER, context=CTX))
    except Exception as exc:  # every outcome is compared, whatever it is
        return type(exc), str(exc)


def test_iter_decrypt_parses_a_header_lying_in_its_first_chunk_in_one_pass_with_the_same_outcomes() -> None:
    plaintext = os.urandom(100)
    message = encrypt(plaintext, provider=PROVIDER, context=CTX, frame_length=F)
    assert _iter_outcome([message]) == plaintext
    header_length = len(message) - 100 - 40
    for i in range(header_length):
        data = message[:i] + bytes((message[i] ^ 0x80,)) + message[i + 1 :]
        bytewise = [data[j : j + 1] for j in range(len(data))]  # no chunk holds a header: field by field
        assert _iter_outcome([data]) == _iter_outcome(bytewise), i
    for cut in range(0, header_length + 1, 5):
        assert _iter_outcome([message[:cut]]) == _iter_outcome([message[j : j + 1] for j in range(cut)]), cut
