"""The local KMS on its SQLite store: GenerateDataKey + Decrypt latency, grant throughput.

ECR's real pattern is a *new* encryption context on every call: each object's context
carries its own digest in ``aws:s3:arn``. The headline figure therefore uses a fresh
context per pair; the repeated-context figure is reported beside it, not instead.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from itertools import cycle
from pathlib import Path
from typing import Any

from benchmarks._harness import Config, Report, need, per_op_us

ACCOUNT = "123456789012"
REGION = "us-east-1"
CALLER = f"arn:aws:iam::{ACCOUNT}:root"
GRANTEE = f"arn:aws:iam::{ACCOUNT}:role/ecr-bench"
ECR = f"ecr.{REGION}.amazonaws.com"
REPO = f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/bench"
CONTEXT = {
    "aws:s3:arn": "arn:aws:s3:::ecr-bench/layers/sha256:" + "0" * 64,
    "aws:ecr:arn": REPO,
}
# Other repositories' grants on the same key, so the grant figure is not a one-grant key.
OTHER_REPOSITORY_GRANTS = 399


def open_local_kms(root: Path) -> Any:
    """A LocalKms on a SQLite file under ``root`` (root key in a 0600 key file next to it)."""
    local_kms = need("ecrcrypt.kms.local.service", "LocalKms")
    return local_kms.LocalKms(path=root / "kms.sqlite3", account=ACCOUNT, region=REGION)


def client(kms: Any) -> Any:
    return kms.client(CALLER)


def fresh_contexts(count: int, repo: str = REPO) -> Iterator[dict[str, str]]:
    """ECR-shaped contexts, each with its own object digest, built before timing starts."""
    made = [{"aws:s3:arn": f"arn:aws:s3:::ecr-bench/layers/sha256:{i:064x}", "aws:ecr:arn": repo} for i in range(count)]
    return cycle(made)


def pair_fn(kms: Any, key: str, contexts: Iterator[dict[str, str]]) -> Callable[[], None]:
    """One GenerateDataKey + Decrypt as ECR makes them (key ARN on Decrypt), next context each time."""

    def pair() -> None:
        ctx = next(contexts)
        resp = kms.generate_data_key(key_id=key, encryption_context=ctx, key_spec="AES_256")
        out = kms.decrypt(ciphertext_blob=resp.ciphertext_blob, encryption_context=ctx, key_id=key)
        assert out.plaintext == resp.plaintext

    return pair


def run(cfg: Config, report: Report) -> None:
    with tempfile.TemporaryDirectory(prefix="ecrcrypt-bench-kms-") as tmp:
        service = open_local_kms(Path(tmp))
        kms = client(service)
        meta = kms.create_key(description="bench")
        key_id, key_arn = meta.key_id, meta.arn
        n = 2000 if cfg.quick else 20000
        # Every context is used once: per_op_us makes at most n + 50 calls.
        distinct = n + 100

        report.add(
            "kms_generate_decrypt_us",
            "local KMS GenerateDataKey + Decrypt (SQLite), new context per pair",
            per_op_us(pair_fn(kms, key_id, fresh_contexts(distinct)), n),
            "µs",
            "account principal; a new aws:s3:arn digest per pair, as ECR; target ≤ 50 µs",
        )
        report.add(
            "kms_generate_decrypt_same_context_us",
            "local KMS GenerateDataKey + Decrypt, one repeated context",
            per_op_us(pair_fn(kms, key_id, cycle([CONTEXT])), n),
            "µs",
            "account principal",
        )
        contexts = fresh_contexts(distinct)
        report.add(
            "kms_generate_us",
            "local KMS GenerateDataKey alone, new context per call",
            per_op_us(
                lambda: kms.generate_data_key(key_id=key_id, encryption_context=next(contexts), key_spec="AES_256"),
                n // 2,
            ),
            "µs",
        )

        # ECR's service principal through its repository's grant (EncryptionContextSubset
        # {"aws:ecr:arn": <repository>}), on a key that also holds other repositories' grants.
        ops = ["GenerateDataKey", "Decrypt"]
        for i in range(OTHER_REPOSITORY_GRANTS):
            kms.create_grant(
                key_id=key_arn,
                grantee_principal=ECR,
                operations=ops,
                constraints=_subset({"aws:ecr:arn": f"{REPO}-{i}"}),
            )
        mine = _subset({"aws:ecr:arn": REPO})
        kms.create_grant(key_id=key_arn, grantee_principal=ECR, operations=ops, constraints=mine)
        ecr = service.client(ECR)
        report.add(
            "kms_generate_decrypt_grant_us",
            "local KMS GenerateDataKey + Decrypt by ECR through a grant, new context per pair",
            per_op_us(pair_fn(ecr, key_arn, fresh_contexts(distinct)), n),
            "µs",
            f"service principal; Subset-constrained grant among {OTHER_REPOSITORY_GRANTS + 1} on the key",
        )
        report.add(
            "kms_generate_decrypt_grant_same_context_us",
            "local KMS GenerateDataKey + Decrypt by ECR through a grant, one repeated context",
            per_op_us(pair_fn(ecr, key_arn, cycle([CONTEXT])), n),
            "µs",
            "service principal",
        )

        grant_key = kms.create_key(description="bench grants").key_id
        grants = 200 if cfg.quick else 2000
        batch = 100  # stays under the per-grantee quota of 500 live grants
        rates = []
        for _ in range(max(1, grants // batch)):
            start = time.perf_counter()
            ids = [
                kms.create_grant(
                    key_id=grant_key,
                    grantee_principal=GRANTEE,
                    operations=["Decrypt", "GenerateDataKey"],
                    retiring_principal=CALLER,
                ).grant_id
                for _ in range(batch)
            ]
            for grant_id in ids:
                kms.retire_grant(key_id=grant_key, grant_id=grant_id)
            rates.append(batch / (time.perf_counter() - start))
        report.add(
            "kms_create_retire_grants_per_s",
            "local KMS CreateGrant + RetireGrant pairs",
            statistics.median(rates),
            "pairs/s",
            f"{grants} pairs, batches of {batch}",
        )
        service.close()


def _subset(pairs: dict[str, str]) -> Any:
    kms_mod = need("ecrcrypt.kms", "GrantConstraints")
    return kms_mod.GrantConstraints(encryption_context_subset=pairs)
