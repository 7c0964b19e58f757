"""The local KMS on its SQLite store: GenerateDataKey + Decrypt latency, grant throughput."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._harness import Config, Report, need, per_op_us

ACCOUNT = "123456789012"
REGION = "us-east-1"
CALLER = f"arn:aws:iam::{ACCOUNT}:root"
GRANTEE = f"arn:aws:iam::{ACCOUNT}:role/ecr-bench"
CONTEXT = {
    "aws:s3:arn": "arn:aws:s3:::ecr-bench/layers/sha256:" + "0" * 64,
    "aws:ecr:arn": f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/bench",
}


def open_local_kms(root: Path) -> Any:
    """A LocalKms on a SQLite file under ``root`` (root key in a 0600 key file next to it)."""
    local_kms = need("ecrcrypt.local_kms", "LocalKms")
    return local_kms.LocalKms(path=root / "kms.sqlite3", account=ACCOUNT, region=REGION)


def client(kms: Any) -> Any:
    return kms.client(CALLER)


def run(cfg: Config, report: Report) -> None:
    with tempfile.TemporaryDirectory(prefix="ecrcrypt-bench-kms-") as tmp:
        kms = client(open_local_kms(Path(tmp)))
        key_id = kms.create_key(description="bench").key_id
        n = 2000 if cfg.quick else 20000

        def pair() -> None:
            resp = kms.generate_data_key(key_id=key_id, encryption_context=CONTEXT, key_spec="AES_256")
            out = kms.decrypt(ciphertext_blob=resp.ciphertext_blob, encryption_context=CONTEXT, key_id=key_id)
            assert out.plaintext == resp.plaintext

        report.add(
            "kms_generate_decrypt_us",
            "local KMS GenerateDataKey + Decrypt (SQLite)",
            per_op_us(pair, n),
            "µs",
            "target ≤ 50 µs",
        )
        report.add(
            "kms_generate_us",
            "local KMS GenerateDataKey alone",
            per_op_us(
                lambda: kms.generate_data_key(key_id=key_id, encryption_context=CONTEXT, key_spec="AES_256"), n // 2
            ),
            "µs",
        )

        grants = 200 if cfg.quick else 2000
        batch = 100  # stays under the per-grantee quota of 500 live grants
        rates = []
        for _ in range(max(1, grants // batch)):
            start = time.perf_counter()
            ids = [
                kms.create_grant(
                    key_id=key_id,
                    grantee_principal=GRANTEE,
                    operations=["Decrypt", "GenerateDataKey"],
                    retiring_principal=CALLER,
                ).grant_id
                for _ in range(batch)
            ]
            for grant_id in ids:
                kms.retire_grant(key_id=key_id, grant_id=grant_id)
            rates.append(batch / (time.perf_counter() - start))
        report.add(
            "kms_create_retire_grants_per_s",
            "local KMS CreateGrant + RetireGrant pairs",
            statistics.median(rates),
            "pairs/s",
            f"{grants} pairs, batches of {batch}",
        )
