"""A fleet of three registry processes on one PostgreSQL, one S3 bucket and one KMS (issue 14).

The hosts (``tests/fleet/host.py``, library processes) share the metadata (PostgreSQL), the
blobs (one bucket on the moto server) and the keys (KMS on the same moto server, with AWS's
grant quota and ``Name`` idempotency added: ``tests/fleet/kms_quota_server.py``). The key's
quota admits six KMS repositories, one of them the base made beforehand; the hosts, started at
once, race to create nine more names on it, to push a scratch layer into the churn ones they
made, to delete every churn one, to create the keep ones again and to push and pull the same
images, and one host is killed with SIGKILL mid-push (its blob committed, not yet recorded).

Afterwards, held to the hosts' acknowledgements (printed only after a step returned):

* exactly the acknowledged repositories exist: each one created and not deleted, told apart
  by creation time when a name was created, deleted and created again;
* each holds exactly its two grants (ListGrants on the moto KMS), and the key holds no other;
* the only blob no record references is the killed push's, under its blob intent; after
  recovery the bucket holds exactly the recorded blobs (listed with S3 ListObjectsV2);
* every acknowledged push pulls, byte for byte, from three fresh hosts;
* the quota is exactly full once the missing keep names and two churn names are created: no
  slot leaked to an orphan grant, none counted twice.

``ECRCRYPT_FLEET_ROUNDS`` (default 1) repeats the race inside each host; ``make soak`` runs more.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ecrcrypt.ecr.lifecycle import constrained_uid, list_key_grants
from ecrcrypt.ecr.metadata_url import create_metadata
from ecrcrypt.ecr.service_key import ServiceKey
from ecrcrypt.errors import EcrKmsError, LimitExceededError
from tests._moto_process import running_moto_server
from tests.fleet.host import (
    ACCOUNT,
    BASE,
    CHURN,
    GRANTS_PER_KEY,
    KEEP,
    PREFIX,
    REGION,
    SPARE,
    HostConfig,
    aws_client,
    open_registry,
)
from tests.fleet.kms_quota_server import QUOTA_VARIABLE

pytestmark = pytest.mark.moto

HOSTS = 3
VICTIM = 1
ROUNDS = int(os.environ.get("ECRCRYPT_FLEET_ROUNDS", "1"))
DEADLINE = 90.0 * ROUNDS  # seconds for the whole race
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def quota_moto() -> Iterator[str]:
    """A moto server of this test's own whose KMS enforces a grant quota of ``GRANTS_PER_KEY``."""
    pytest.importorskip("moto.server", reason="moto[server] is not installed (test extra)")
    with running_moto_server("tests.fleet.kms_quota_server", {QUOTA_VARIABLE: str(GRANTS_PER_KEY)}) as url:
        yield url


class Host:
    """A host process and the JSON lines it printed (read on a thread, so a full pipe never blocks it)."""

    def __init__(self, command: str, config: HostConfig, stdin: str | None = None) -> None:
        self.config = config
        self.lines: list[dict[str, Any]] = []
        self.stalled, self.ready = threading.Event(), threading.Event()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.fleet.host", command, config.to_json()],
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        if stdin is not None:
            self.start(stdin)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def start(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text)
        self.proc.stdin.close()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            event = json.loads(line)
            self.lines.append(event)
            if event["event"] == "stalled":
                self.stalled.set()
            elif event["event"] == "ready":
                self.ready.set()

    def wait(self, deadline: float) -> int:
        try:
            code = self.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                f"host {self.config.seed} did not finish in time; it printed {self.lines[-5:]}"
            ) from None
        self._reader.join(timeout=10)
        return code

    @property
    def stderr(self) -> str:
        assert self.proc.stderr is not None
        return self.proc.stderr.read()


def _bucket_keys(s3: Any, bucket: str) -> set[str]:
    keys: set[str] = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys.update(obj["Key"] for obj in page.get("Contents", []))
    return keys


def test_three_hosts_race_create_delete_push_with_one_killed_mid_push(postgres_url: str, quota_moto: str) -> None:
    s3 = aws_client("s3", quota_moto)
    bucket = "fleet-layers"
    s3.create_bucket(Bucket=bucket)
    from ecrcrypt.kms.aws import Boto3Kms

    kms = Boto3Kms(client=aws_client("kms", quota_moto))
    key, wrapping = kms.create_key(description="fleet").arn, kms.create_key(description="service key").arn
    with create_metadata(postgres_url, account=ACCOUNT, region=REGION) as metadata:
        ServiceKey.create_wrapped(metadata, kms, key_id=wrapping)
    config = HostConfig(endpoint=quota_moto, bucket=bucket, metadata=postgres_url, key=key, rounds=ROUNDS)
    with open_registry(config) as registry:
        base = registry.create_repository(BASE, encryption_configuration={"encryptionType": "KMS", "kmsKey": key})

    deadline = time.monotonic() + DEADLINE
    hosts = [Host("race", HostConfig(**{**vars_of(config), "seed": i, "victim": i == VICTIM})) for i in range(HOSTS)]
    for host in hosts:
        assert host.ready.wait(timeout=DEADLINE), f"host {host.config.seed} did not start: {host.lines}"
    for host in hosts:
        host.start("go\n")
    victim = hosts[VICTIM]
    assert victim.stalled.wait(timeout=DEADLINE), f"the victim never reached a blob commit: {victim.lines[-5:]}"
    os.kill(victim.proc.pid, signal.SIGKILL)
    for host in hosts:
        code = host.wait(deadline)
        if host is victim:
            assert code == -signal.SIGKILL
        else:
            assert code == 0, host.stderr
    acks = [event for host in hosts for event in host.lines if event["event"] != "ready"]

    # The race went past the quota, and exactly the acknowledged repositories exist.
    assert any(a["event"] == "refused" for a in acks), "no create was refused: the race never reached the quota"
    created = {(a["name"], a["created_at"]) for a in acks if a["event"] == "created"}
    deleted = {(a["name"], a["created_at"]) for a in acks if a["event"] == "deleted"}
    assert deleted <= created
    expected = {(BASE, base.created_at)} | (created - deleted)
    with open_registry(config) as registry:
        core = registry._core
        existing = {(d.repository_name, d.created_at) for d in registry.describe_repositories()}
        assert existing == expected
        assert {name for name, _ in existing} <= {BASE, *KEEP}  # every churn name ended deleted

        # Before recovery: the killed push's blob is the only one no record references, under its intent.
        snap = core.metadata.snapshot()
        stored = _bucket_keys(s3, bucket)
        recorded = {f"{PREFIX}/{k}" for k in snap.blob_keys}
        assert recorded <= stored
        killed = {f"{PREFIX}/{b.blob_key}" for b in snap.blob_intents}
        assert len(killed) == 1 and stored - recorded == killed
        assert snap.intents == ()  # no creation or deletion was left half done

        report = registry.recover()
        assert report.clean and report.creations_undone == () and report.grants_retired == (), report
        snap = core.metadata.snapshot()
        assert snap.blob_intents == () and snap.intents == ()
        assert _bucket_keys(s3, bucket) == {f"{PREFIX}/{k}" for k in snap.blob_keys}  # no orphan blob
        assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []

        # Each repository holds exactly its two grants; the key holds no other grant.
        grants = list_key_grants(kms, key)
        records = {r.name: r for r in snap.repositories}
        assert {g.grant_id for g in grants} == {g.grant_id for r in records.values() for g in r.grants}
        for record in records.values():
            mine = {g.grant_id for g in grants if constrained_uid(g) == record.uid}
            assert mine == {g.grant_id for g in record.grants}
            assert sorted(g.grantee for g in record.grants) == sorted([core.ecr_principal, core.storage_principal])

    # Every acknowledged push pulls from every host (fresh processes).
    pushes = [{k: a[k] for k in ("name", "tag", "digest")} for a in acks if a["event"] == "pushed"]
    assert pushes and {p["name"] for p in pushes} >= {BASE}
    verifiers = [Host("verify", HostConfig(**{**vars_of(config), "seed": i}), json.dumps(pushes)) for i in range(HOSTS)]
    for verifier in verifiers:
        assert verifier.wait(time.monotonic() + 60) == 0, verifier.stderr
        assert verifier.lines == [{"event": "verified", "pulls": len(pushes), "problems": []}]

    # The quota is exactly full once the missing keep names and SPARE churn names exist: no slot
    # leaked to an orphan grant, none counted twice.
    with open_registry(config) as registry:
        kms_config = {"encryptionType": "KMS", "kmsKey": key}
        present = {d.repository_name for d in registry.describe_repositories()}
        for name in sorted(set(KEEP) - present) + list(CHURN[:SPARE]):
            registry.create_repository(name, encryption_configuration=kms_config)
        with pytest.raises(EcrKmsError) as refused:
            registry.create_repository(CHURN[SPARE], encryption_configuration=kms_config)
        assert refused.value.kms_error == LimitExceededError.code
        assert {d.repository_name for d in registry.describe_repositories()} == {BASE, *KEEP, *CHURN[:SPARE]}
        assert len(list_key_grants(kms, key)) == GRANTS_PER_KEY


def vars_of(config: HostConfig) -> dict[str, Any]:
    return json.loads(config.to_json())  # type: ignore[no-any-return]
