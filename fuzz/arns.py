"""Target ``arns``: ARNs and names (:mod:`ecrcrypt.arns`).

The input, read as the str a request could carry (invalid UTF-8 as lone surrogates), goes through
every parser and validating constructor; whatever parses must print back to a text that parses to
the same value.
"""

from __future__ import annotations

from collections.abc import Callable

from ecrcrypt.arns import (
    AccountId,
    AliasArn,
    AliasName,
    KeyArn,
    KeyId,
    Partition,
    Region,
    RepositoryArn,
    RepositoryName,
    S3BucketName,
    S3ObjectArn,
    parse_key_reference,
)
from ecrcrypt.errors import EcrCryptError
from fuzz._harness import MiB, OracleViolation, Target, text

_PARSERS: tuple[Callable[[str], object], ...] = (
    RepositoryArn.parse,
    KeyArn.parse,
    AliasArn.parse,
    S3ObjectArn.parse,
    parse_key_reference,
    Partition,
    Region,
    AccountId,
    RepositoryName,
    KeyId,
    AliasName,
    S3BucketName,
)


def one_input(data: bytes) -> None:
    value = text(data)
    for parse in _PARSERS:
        try:
            parsed = parse(value)
        except EcrCryptError:
            continue
        again = parse(str(parsed))
        if again != parsed:
            raise OracleViolation(f"{parse.__qualname__}: {value!r} parsed to {parsed!r}, its text to {again!r}")


TARGET = Target(name="arns", one_input=one_input, max_len=2048, memory_bound=lambda n: 32 * n + MiB, runs=4000)
