"""Target ``api_shapes``: request structures that arrive as JSON (CreateRepository, CreateGrant).

The input is a JSON document as an API front end would decode it; its ``encryptionConfiguration``
goes through ``EncryptionConfiguration.from_api`` and its ``Constraints`` through
``GrantConstraints.from_api``, whatever JSON types they hold. What is accepted must come back
unchanged through ``to_api`` and ``from_api``.
"""

from __future__ import annotations

import json
from typing import Any

from ecrcrypt.config import EncryptionConfiguration
from ecrcrypt.errors import EcrCryptError
from ecrcrypt.kms import GrantConstraints
from fuzz._harness import MiB, OracleViolation, Target


def one_input(data: bytes) -> None:
    try:
        doc: Any = json.loads(data)
    except (ValueError, RecursionError):
        return  # not JSON: the front end refuses it before ecrcrypt sees anything
    if not isinstance(doc, dict):
        return
    try:
        config = EncryptionConfiguration.from_api(doc.get("encryptionConfiguration"))
    except EcrCryptError:
        pass
    else:
        if EncryptionConfiguration.from_api(config.to_api()) != config:
            raise OracleViolation(f"{config!r} did not survive to_api/from_api")
    constraints = GrantConstraints.from_api(doc.get("Constraints"))
    if constraints is not None and GrantConstraints.from_api(constraints.to_api()) != constraints:
        raise OracleViolation(f"{constraints!r} did not survive to_api/from_api")


TARGET = Target(name="api_shapes", one_input=one_input, max_len=2048, memory_bound=lambda n: 64 * n + MiB, runs=3000)
