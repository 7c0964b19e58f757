"""Target ``digest``: ``Digest.parse`` (:mod:`ecrcrypt.digest`): a parsed digest prints back to itself."""

from __future__ import annotations

from ecrcrypt.digest import Digest
from fuzz._harness import MiB, OracleViolation, Target, text


def one_input(data: bytes) -> None:
    value = text(data)
    digest = Digest.parse(value)
    if str(digest) != value or Digest.parse(str(digest)) != digest:
        raise OracleViolation(f"Digest.parse({value!r}) gave {digest!r}")


TARGET = Target(name="digest", one_input=one_input, max_len=256, memory_bound=lambda n: 16 * n + MiB, runs=4000)
