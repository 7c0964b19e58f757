"""Target ``policy``: policy documents (``ecrcrypt.authz.Policy.parse``) of every :class:`PolicyKind`.

The input, read as the str a PutKeyPolicy or SetRepositoryPolicy request could carry (invalid UTF-8
as lone surrogates), is parsed as a key, identity, resource and trust policy; an accepted document
keeps its text verbatim and parses again to the same statements.
"""

from __future__ import annotations

from ecrcrypt.authz import Policy, PolicyKind
from ecrcrypt.errors import EcrCryptError
from fuzz._harness import MiB, OracleViolation, Target, text


def one_input(data: bytes) -> None:
    document = text(data)
    for kind in PolicyKind:
        try:
            policy = Policy.parse(document, kind=kind)
        except EcrCryptError:
            continue
        if policy.text != document or Policy.parse(policy.text, kind=kind) != policy:
            raise OracleViolation(f"a {kind.value} policy did not parse to the same policy twice")


TARGET = Target(name="policy", one_input=one_input, max_len=8192, memory_bound=lambda n: 64 * n + 2 * MiB, runs=2000)
