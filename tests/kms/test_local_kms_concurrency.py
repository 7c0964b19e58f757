"""One SQLite store, many writers: threads, processes, a process killed mid-stream.

The invariants: a grant quota is never exceeded, no acknowledged grant is lost, and a
change committed by one connection is seen by every other at its next call (caches
are per process).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from ecrcrypt import errors
from ecrcrypt.kms import KmsQuotas
from ecrcrypt.kms.local.service import LocalKms

ACCOUNT = "111122223333"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
ECR = "ecr.us-east-1.amazonaws.com"
OTHER = "arn:aws:iam::444455556666:role/other"


def _open(path: Path | str, per_grantee: int | None = None) -> LocalKms:
    return LocalKms(path, account=ACCOUNT, quotas=KmsQuotas(grants_per_grantee_per_key=per_grantee))


def _create_grants(path: str, key: str, grantee: str, attempts: int, per_grantee: int) -> tuple[list[str], int]:
    """Worker (thread or process): its own LocalKms, its own connection."""
    kms = _open(path, per_grantee)
    client = kms.client(ROOT)
    created: list[str] = []
    refused = 0
    for _ in range(attempts):
        try:
            created.append(client.create_grant(key_id=key, grantee_principal=grantee, operations=["Decrypt"]).grant_id)
        except errors.LimitExceededError:
            refused += 1
    kms.close()
    return created, refused


def _all_grants(kms: LocalKms, key: str) -> list[str]:
    admin = kms.client(ROOT)
    out: list[str] = []
    marker = None
    while True:
        page = admin.list_grants(key_id=key, limit=100, marker=marker)
        out += [g.grant_id for g in page.grants]
        if not page.truncated:
            return out
        marker = page.next_marker


@pytest.fixture
def store(tmp_path: Path) -> tuple[str, str]:
    path = str(tmp_path / "kms.db")
    kms = _open(path)
    key = kms.client(ROOT).create_key().arn
    kms.close()
    return path, key


def test_threads_never_exceed_the_quota_and_lose_no_grant(store: tuple[str, str]) -> None:
    path, key = store
    results: list[tuple[list[str], int]] = []
    lock = threading.Lock()

    def work(grantee: str) -> None:
        res = _create_grants(path, key, grantee, 8, 20)
        with lock:
            results.append(res)

    threads = [threading.Thread(target=work, args=(ECR if i % 2 else OTHER,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    created = [g for ids, _ in results for g in ids]
    assert sum(refused for _, refused in results) == 64 - 40
    kms = _open(path)
    listed = _all_grants(kms, key)
    assert sorted(listed) == sorted(created) and len(created) == 40  # 20 per grantee, exactly
    assert len(kms.client(ROOT).list_grants(key_id=key, grantee_principal=ECR, limit=100).grants) == 20


def test_processes_never_exceed_the_quota_and_lose_no_grant(store: tuple[str, str]) -> None:
    path, key = store
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        results = pool.starmap(_create_grants, [(path, key, ECR, 12, 30)] * 4)
    created = [g for ids, _ in results for g in ids]
    assert len(created) == 30 and sum(r for _, r in results) == 48 - 30
    assert sorted(_all_grants(_open(path), key)) == sorted(created)


_KILLED_CHILD = """
import sys
from ecrcrypt.kms.local.service import LocalKms
from ecrcrypt.kms import KmsQuotas
kms = LocalKms(sys.argv[1], account="111122223333", quotas=KmsQuotas(grants_per_grantee_per_key=None))
admin = kms.client("arn:aws:iam::111122223333:root")
while True:
    g = admin.create_grant(key_id=sys.argv[2], grantee_principal="ecr.us-east-1.amazonaws.com", operations=["Decrypt"])
    print(g.grant_id, flush=True)  # printed only once CreateGrant has returned (committed)
"""


def test_a_process_killed_mid_stream_loses_no_acknowledged_grant(store: tuple[str, str]) -> None:
    path, key = store
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_CHILD, path, key],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert child.stdout is not None
    acknowledged: list[str] = []
    for line in child.stdout:
        acknowledged.append(line.strip())
        if len(acknowledged) >= 150:
            break
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    acknowledged += [line.strip() for line in child.stdout if line.strip()]  # whatever was already in the pipe
    assert child.returncode == -signal.SIGKILL
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()
    kms = _open(path)
    listed = set(_all_grants(kms, key))
    assert set(acknowledged) <= listed
    assert len(listed) - len(acknowledged) <= 1  # at most the one committed but not yet printed
    # the store keeps working after the crash
    kms.client(ROOT).create_grant(key_id=key, grantee_principal=ECR, operations=["Decrypt"])


def test_changes_by_another_connection_take_effect_at_the_next_call(store: tuple[str, str]) -> None:
    path, key = store
    writer = _open(path)
    reader = _open(path)  # separate connection, separate caches
    admin = writer.client(ROOT)
    grant = admin.create_grant(key_id=key, grantee_principal=ECR, operations=["Encrypt", "Decrypt"])
    ecr = reader.client(ECR)
    blob = ecr.encrypt(key_id=key, plaintext=b"x").ciphertext_blob  # grants now cached in `reader`
    admin.revoke_grant(key_id=key, grant_id=grant.grant_id)
    with pytest.raises(errors.AccessDeniedError):
        ecr.decrypt(ciphertext_blob=blob)
    root_reader = reader.client(ROOT)
    root_reader.decrypt(ciphertext_blob=blob)
    admin.disable_key(key_id=key)
    with pytest.raises(errors.DisabledError):
        root_reader.decrypt(ciphertext_blob=blob)
    admin.enable_key(key_id=key)
    assert root_reader.decrypt(ciphertext_blob=blob).plaintext == b"x"
    # both connections append to one trail: four Decrypts, two of them refused
    decrypts = writer.audit.query(event_name="Decrypt")
    assert [e.error_code for e in decrypts] == ["AccessDeniedException", None, "DisabledException", None]


@pytest.mark.parametrize("where", ["memory", "file"])
def test_threads_sharing_one_local_kms(tmp_path: Path, where: str) -> None:
    """One LocalKms (one connection) used by many threads: crypto and grants interleave safely."""
    kms = LocalKms(
        None if where == "memory" else tmp_path / "k.db",
        account=ACCOUNT,
        quotas=KmsQuotas(grants_per_grantee_per_key=25),
    )
    admin = kms.client(ROOT)
    key = admin.create_key().arn
    failures: list[BaseException] = []
    granted: list[str] = []
    lock = threading.Lock()

    def crypto(n: int) -> None:
        try:
            for i in range(50):
                ctx = {"thread": str(n), "i": str(i)}
                dk = admin.generate_data_key(key_id=key, encryption_context=ctx, number_of_bytes=32)
                assert (
                    admin.decrypt(ciphertext_blob=dk.ciphertext_blob, encryption_context=ctx).plaintext == dk.plaintext
                )
        except BaseException as exc:  # collected: asserted empty below
            failures.append(exc)

    def grants() -> None:
        for _ in range(10):
            try:
                g = admin.create_grant(key_id=key, grantee_principal=ECR, operations=["Decrypt"]).grant_id
                with lock:
                    granted.append(g)
            except errors.LimitExceededError:
                pass

    threads = [threading.Thread(target=crypto, args=(n,)) for n in range(4)]
    threads += [threading.Thread(target=grants) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures
    assert len(granted) == 25 and sorted(_all_grants(kms, key)) == sorted(granted)
    assert len(kms.audit.query(event_name="Decrypt", errors=False)) == 200
