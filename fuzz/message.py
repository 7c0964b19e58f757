"""Target ``message``: whole ESDK messages through every decrypting entry point.

``ecrcrypt.decrypt``, ``DecryptingReader`` (over an in-memory ``BytesIO``, read in place, and over a
plain reader, read frame by frame), ``iter_decrypt`` (chunks of an input-chosen size) and
``decrypt_range``, all with the raw AES keyring of the ESDK test vectors and ``context=None``, so
that a mutated message reaches the body parsers once its header still authenticates. They must
agree: when the one-shot ``decrypt`` returns a plaintext, every streaming form returns the same
one (or refuses with ``MessageLimitError`` a body it would have to buffer past the policy), and
every range read returns its slice; when ``decrypt`` refuses a message, no streaming form accepts it.
"""

from __future__ import annotations

import io
from collections.abc import Callable

from ecrcrypt import DecryptingReader, decrypt, decrypt_range, iter_decrypt
from ecrcrypt.errors import EcrCryptError, MessageLimitError
from fuzz._harness import FUZZ_POLICY, MiB, OracleViolation, Target, vector_provider

_PROVIDER = vector_provider()


class _Source:
    """A random-access and sequential source over bytes that hands out short reads."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = data
        self._step = step
        self._pos = 0

    def size(self) -> int:
        return len(self._data)

    def read_at(self, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise OracleViolation(f"read_at({offset}, {length})")
        return self._data[offset : offset + length]

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = len(self._data)
        out = self._data[self._pos : self._pos + min(n, self._step)]
        self._pos += len(out)
        return out


def _reader(source: object, size: int) -> bytes:
    with DecryptingReader(source, provider=_PROVIDER, context=None, policy=FUZZ_POLICY) as reader:  # type: ignore[arg-type]
        parts = []
        while chunk := reader.read(size):
            parts.append(chunk)
        return b"".join(parts)


def _chunks(data: bytes, step: int) -> list[bytes]:
    return [data[i : i + step] for i in range(0, len(data), step)]


def _iterate(data: bytes, step: int) -> bytes:
    return b"".join(
        bytes(piece)
        for piece in iter_decrypt(_chunks(data, step), provider=_PROVIDER, context=None, policy=FUZZ_POLICY)
    )


def one_input(data: bytes) -> None:
    knob = data[-1] if data else 0
    step = 1 + knob * 37
    plaintext: bytes | EcrCryptError
    try:
        plaintext = decrypt(data, provider=_PROVIDER, context=None, policy=FUZZ_POLICY)
    except EcrCryptError as exc:
        plaintext = exc
    streams: dict[str, Callable[[], bytes]] = {
        "DecryptingReader(BytesIO)": lambda: _reader(io.BytesIO(data), 1 + knob * 11),
        "DecryptingReader(reader)": lambda: _reader(_Source(data, step), 1 << 16),
        "iter_decrypt": lambda: _iterate(data, step),
    }
    for name, run in streams.items():
        try:
            got = run()
        except EcrCryptError as exc:
            if isinstance(plaintext, bytes) and not isinstance(exc, MessageLimitError):
                raise OracleViolation(f"decrypt accepted the message, {name} raised {exc!r}") from exc
            continue
        if not isinstance(plaintext, bytes):
            raise OracleViolation(f"decrypt raised {plaintext!r}, {name} accepted the message")
        if got != plaintext:
            raise OracleViolation(f"{name} returned another plaintext than decrypt")
    size = len(plaintext) if isinstance(plaintext, bytes) else 0
    for offset, length in ((0, 1), (size // 2, 700), (knob * 41, 1 << 30)):
        try:
            part = decrypt_range(
                _Source(data, step), offset, length, provider=_PROVIDER, context=None, policy=FUZZ_POLICY
            )
        except EcrCryptError:
            continue  # refuses signed and non-framed messages; reads only the frames it needs
        if isinstance(plaintext, bytes) and part != plaintext[offset : offset + length]:
            raise OracleViolation(f"decrypt_range({offset}, {length}) returned another slice than decrypt")
    if isinstance(plaintext, EcrCryptError):
        raise plaintext


TARGET = Target(
    name="message",
    one_input=one_input,
    max_len=16384,
    # Copies of the input per entry point, at most a few frame-sized buffers (frames are authenticated
    # by then, so no larger than the policy's cap) and a header's worth of parsing.
    memory_bound=lambda n: 16 * n + 6 * FUZZ_POLICY.max_frame_length + 2 * FUZZ_POLICY.max_header_size + MiB,
    runs=600,
)
