"""Signed and non-framed bodies, held whole until they verify (private to :mod:`ecrcrypt.streams`).

Such bodies cannot be released frame by frame (a signature covers the whole message; a
non-framed body has one tag at its end), so :class:`DecryptingReader` and
:func:`iter_decrypt` both read them whole, bounded by the :class:`DecryptPolicy`, through
this one function.
"""

from __future__ import annotations

from collections.abc import Callable

from ecrcrypt.errors import MessageLimitError
from ecrcrypt.format.frames import FINAL_FRAME_OVERHEAD, REGULAR_FRAME_OVERHEAD
from ecrcrypt.format.message import MAX_NON_FRAMED, DecryptPolicy, Opened, decrypt_body


def _decrypt_buffered(read: Callable[[int], bytes], opened: Opened, policy: DecryptPolicy) -> bytes:
    """Signed or non-framed bodies: read whole (bounded), verify everything, then release."""
    header = opened.header
    limit = policy.max_body_size
    if limit is None:
        cap = MAX_NON_FRAMED + 1024
    elif header.framed:
        frames = limit // header.frame_length + 1
        cap = limit + frames * REGULAR_FRAME_OVERHEAD + FINAL_FRAME_OVERHEAD + 2 + 1024
    else:
        cap = limit + 36 + 2 + 1024
    buffered = policy.max_buffered_body_size
    if cap > buffered + 1024:
        cap, limit = buffered + 1024, buffered
    raw = opened.raw_header
    parts = [raw]
    total = 0
    while True:
        chunk = read(1 << 20)
        if not chunk:
            break
        total += len(chunk)
        if total > cap:
            raise MessageLimitError(
                f"a signed or non-framed message body is held whole until it verifies; it exceeds {limit} bytes"
            )
        parts.append(bytes(chunk))
    return decrypt_body(memoryview(b"".join(parts)), len(raw), opened, policy)
