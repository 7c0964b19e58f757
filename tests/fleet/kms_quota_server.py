"""``python -m tests.fleet.kms_quota_server -H 127.0.0.1 -p PORT``: moto's server with AWS's grant rules.

moto's KMS keeps grants as bookkeeping only: it has no grant quota (1,100 grants on one key
were accepted) and no ``Name`` idempotency (the same CreateGrant twice makes two grants). A
fleet racing past a key's grant quota needs both, as AWS KMS documents them for CreateGrant
(https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateGrant.html): a key holds at
most ``grants_per_key`` grants ("After you reach the quota, you can create new grants on the
KMS key only when an active grant is retired or revoked", ``LimitExceededException``), and a
retry with identical parameters including ``Name`` returns the original ``GrantId`` and
creates no grant. This module adds exactly those two rules to moto's KMS backend -- under one
lock, because the server answers requests on several threads and the quota is a
check-then-insert -- and then runs ``moto.server``. The quota is read from the environment
(:data:`QUOTA_VARIABLE`) so the launcher (``tests._moto_process``) can set it.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

__all__ = ["QUOTA_VARIABLE", "install"]

QUOTA_VARIABLE = "ECRCRYPT_TEST_KMS_GRANTS_PER_KEY"


def install(grants_per_key: int) -> None:
    """Patch moto's ``KmsBackend`` (in this process) with the quota and ``Name`` idempotency."""
    from moto.core.exceptions import JsonRESTError
    from moto.kms.models import KmsBackend

    lock = threading.RLock()
    create, retire, revoke = KmsBackend.create_grant, KmsBackend.retire_grant, KmsBackend.revoke_grant

    def create_grant(
        self: Any,
        key_id: str,
        grantee_principal: str,
        operations: list[str],
        name: str,
        constraints: dict[str, Any],
        retiring_principal: str,
    ) -> tuple[str, str]:
        with lock:
            key = self.describe_key(key_id)
            for grant in key.grants.values():
                same = (grant.grantee_principal, grant.operations, grant.constraints, grant.retiring_principal) == (
                    grantee_principal,
                    operations,
                    constraints,
                    retiring_principal,
                )
                if name and grant.name == name and same:
                    return str(grant.id), str(grant.token)
            if len(key.grants) >= grants_per_key:
                raise JsonRESTError(
                    "LimitExceededException",
                    f"The request was rejected because key {key.id} already has {grants_per_key} grants",
                )
            grant_id, token = create(self, key_id, grantee_principal, operations, name, constraints, retiring_principal)
            return str(grant_id), str(token)

    def retire_grant(self: Any, key_id: str, grant_id: str, grant_token: str) -> None:
        with lock:
            retire(self, key_id, grant_id, grant_token)

    def revoke_grant(self: Any, key_id: str, grant_id: str) -> None:
        with lock:
            revoke(self, key_id, grant_id)

    KmsBackend.create_grant = create_grant  # type: ignore[method-assign]
    KmsBackend.retire_grant = retire_grant  # type: ignore[method-assign]
    KmsBackend.revoke_grant = revoke_grant  # type: ignore[method-assign]


def main(argv: list[str]) -> None:
    install(int(os.environ[QUOTA_VARIABLE]))
    from moto.server import main as serve

    serve(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
