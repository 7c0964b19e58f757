"""Target ``context``: ``EncryptionContext.deserialize`` (:mod:`ecrcrypt.context`).

Liberal on order, strict on structure: whatever it accepts serializes to canonical bytes that
deserialize to an equal context, and serializing is idempotent.
"""

from __future__ import annotations

from ecrcrypt.context import EncryptionContext
from fuzz._harness import MiB, OracleViolation, Target


def one_input(data: bytes) -> None:
    context = EncryptionContext.deserialize(data)
    canonical = context.serialize()
    again = EncryptionContext.deserialize(canonical)
    if again != context or again.serialize() != canonical or dict(again) != dict(context):
        raise OracleViolation("an encryption context did not survive serialize/deserialize")
    if sorted(data) != sorted(canonical):
        # The same pairs in another order are the same bytes in another order.
        raise OracleViolation("deserialize accepted bytes that are not a reordering of its canonical form")


TARGET = Target(name="context", one_input=one_input, max_len=4096, memory_bound=lambda n: 16 * n + MiB, runs=4000)
