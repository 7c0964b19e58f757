"""The local KMS on its SQLite store: GenerateDataKey + Decrypt latency, grant throughput.

ECR's real pattern is a *new* encryption context on every call: each object's context
carries its own digest in ``aws:s3:arn``. The headline figure therefore uses a fresh
context per pair; the repeated-context figure is reported beside it, not instead.
"""

from __future__ import annotations

import itertools
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from itertools import cycle
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from benchmarks._harness import Config, Report, need, paired_per_op

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


class PairFloor:
    """The floor of one GenerateDataKey + Decrypt: one indexed SQLite lookup (the key's row by its
    primary key, on a connection of its own to the same file) and the AES-GCM wrap and unwrap of a
    new 32-byte data key under an AAD of the blob header, key ARN and serialized context.

    Nothing else a KMS must do (authorization, the audit record, parsing) is in it.
    """

    def __init__(self, path: Path, key_id: str, key_arn: str, contexts: Iterator[dict[str, str]]) -> None:
        self.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
        self.key_id = key_id
        if self.lookup() is None:
            raise AssertionError("the floor's lookup finds no key row")
        self.aead = AESGCM(os.urandom(32))
        head = os.urandom(21) + len(key_arn).to_bytes(2, "big") + key_arn.encode()
        context = need("ecrcrypt.context", "EncryptionContext").EncryptionContext
        # Serialized before timing: the floor does not count building the context's bytes.
        self.aads = cycle([head + context(c).serialize() for c in itertools.islice(contexts, 512)])

    def lookup(self) -> Any:
        return self.conn.execute("SELECT key_id, arn, state FROM keys WHERE key_id = ?", (self.key_id,)).fetchone()

    def pair(self) -> None:
        self.lookup()
        aad = next(self.aads)
        plaintext = os.urandom(32)
        nonce = os.urandom(12)
        sealed = self.aead.encrypt(nonce, plaintext, aad)
        if self.aead.decrypt(nonce, sealed, aad) != plaintext:
            raise AssertionError("floor")

    def close(self) -> None:
        self.conn.close()


def run(cfg: Config, report: Report) -> None:
    with tempfile.TemporaryDirectory(prefix="ecrcrypt-bench-kms-") as tmp:
        service = open_local_kms(Path(tmp))
        kms = client(service)
        meta = kms.create_key(description="bench")
        key_id, key_arn = meta.key_id, meta.arn
        n = 4000 if cfg.quick else 40000
        trials = max(20, cfg.reps)  # batches of n // 20 pairs: short, so a burst of load lands in few
        # Every context is used once: the pairs make at most n + 2 * 50 calls.
        distinct = n + 200
        floor = PairFloor(Path(tmp) / "kms.sqlite3", key_id, key_arn, fresh_contexts(512))

        def measure(key: str, label: str, pair: Callable[[], None], note: str) -> None:
            result = paired_per_op(floor.pair, pair, n, trials)
            report.add(f"{key}_us", label, result.cand_s * 1e6, "µs", note)
            report.spread(f"{key}_floor_ratio", f"{key} ÷ the pair's floor (paired)", result.cost())
            floors.extend(result.base)

        floors: list[float] = []
        measure(
            "kms_generate_decrypt",
            "local KMS GenerateDataKey + Decrypt (SQLite), new context per pair",
            pair_fn(kms, key_id, fresh_contexts(distinct)),
            "account principal; a new aws:s3:arn digest per pair, as ECR",
        )
        measure(
            "kms_generate_decrypt_same_context",
            "local KMS GenerateDataKey + Decrypt, one repeated context",
            pair_fn(kms, key_id, cycle([CONTEXT])),
            "account principal",
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
        result = paired_per_op(floor.pair, pair_fn(ecr, key_arn, fresh_contexts(distinct)), n, trials)
        report.add(
            "kms_generate_decrypt_grant_us",
            "local KMS GenerateDataKey + Decrypt by ECR through a grant, new context per pair",
            result.cand_s * 1e6,
            "µs",
            f"service principal; Subset-constrained grant among {OTHER_REPOSITORY_GRANTS + 1} on the key",
        )
        report.spread(
            "kms_pair_floor_ratio",
            "KMS pair through a grant ÷ its floor (paired)",
            result.cost(),
            "floor: one indexed SQLite lookup + AES-GCM wrap and unwrap; target ≤ 2.0",
        )
        floors.extend(result.base)
        measure(
            "kms_generate_decrypt_grant_same_context",
            "local KMS GenerateDataKey + Decrypt by ECR through a grant, one repeated context",
            pair_fn(ecr, key_arn, cycle([CONTEXT])),
            "service principal",
        )
        floor_us = statistics.median(floors) * 1e6
        report.add("kms_pair_floor_us", "the pair's floor (median over all its batches)", floor_us, "µs")
        floor.close()

        grant_key = kms.create_key(description="bench grants").key_id
        batch = 100  # stays under the per-grantee quota of 500 live grants
        rates = []
        for _ in range(trials if cfg.quick else 2 * trials):
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
            f"median of {len(rates)} batches of {batch}",
        )
        service.close()


def _subset(pairs: dict[str, str]) -> Any:
    kms_mod = need("ecrcrypt.kms", "GrantConstraints")
    return kms_mod.GrantConstraints(encryption_context_subset=pairs)
