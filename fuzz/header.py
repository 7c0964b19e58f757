"""Target ``header``: the ESDK message header parser alone (:mod:`ecrcrypt.format.header`).

Both entry points (through ``DecryptPolicy``) parse the same bytes: ``parse_header_bytes`` over the whole input and
``parse_header`` reading it a few bytes at a time. They must agree -- the same header, or errors
of the same class -- and the streaming one must never read past the header it returns.
"""

from __future__ import annotations

from ecrcrypt.errors import EcrCryptError
from ecrcrypt.format.header import Header
from fuzz._harness import FUZZ_POLICY, MiB, OracleViolation, Target


def _parse_streaming(data: bytes, step: int) -> tuple[Header, int]:
    pos = 0

    def read(n: int) -> bytes:
        nonlocal pos
        if n < 0:
            raise OracleViolation(f"parse_header asked for {n} bytes")
        out = data[pos : pos + min(n, step)]
        pos += len(out)
        return out

    return FUZZ_POLICY.parse_header(read), pos


def one_input(data: bytes) -> None:
    step = 1 + (data[-1] % 7 if data else 0)
    whole: Header | EcrCryptError
    try:
        whole = FUZZ_POLICY.parse_header_bytes(data)
    except EcrCryptError as exc:
        whole = exc
    try:
        streamed, consumed = _parse_streaming(data, step)
    except EcrCryptError as exc:
        if not isinstance(whole, EcrCryptError) or type(exc) is not type(whole):
            raise OracleViolation(f"parse_header raised {exc!r}, parse_header_bytes gave {whole!r}") from exc
        raise
    if isinstance(whole, EcrCryptError):
        raise OracleViolation(f"parse_header_bytes raised {whole!r}, parse_header parsed it") from whole
    if streamed != whole:
        raise OracleViolation("parse_header and parse_header_bytes parsed different headers")
    if consumed != whole.length:
        raise OracleViolation(f"parse_header read {consumed} bytes of a {whole.length}-byte header")


TARGET = Target(
    name="header",
    one_input=one_input,
    max_len=4096,
    # Both parses copy at most the header cap, field by field, plus the Header they build.
    memory_bound=lambda n: 8 * n + 2 * FUZZ_POLICY.max_header_size + MiB,
    runs=4000,
)
