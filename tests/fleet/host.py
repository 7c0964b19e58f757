"""One registry host of the fleet test (``tests/fleet/test_fleet.py``; no tests here).

``python -m tests.fleet.host race CONFIG`` and ``python -m tests.fleet.host verify CONFIG``,
CONFIG a JSON :class:`HostConfig`. A host is a registry process of its own: its own boto3
clients to the shared moto server (KMS with AWS's grant quota, ``tests.fleet.kms_quota_server``;
S3), its own connection pool to the shared PostgreSQL metadata, no state on its disk.

``race`` opens its registry, says it is ready, waits for a line on stdin (the start, given to
every host at once) and runs :data:`HostConfig.rounds` rounds of: create every name (keep and
churn, in a seeded order: more than the key's grant quota admits), push a scratch layer into
each churn repository it created, delete every churn name (racing the other hosts to it),
create the keep names again, push the shared images into the base and every keep repository
and pull them back. Each step is printed as one JSON line only *after* it returned -- an
acknowledgement the parent holds the fleet to. The one host with ``victim`` set, as its last
round's pushes begin, pushes a layer only it has and stops at that blob's commit (committed,
not yet recorded: crashpoint ``push:committed``), says so, and waits to be killed with SIGKILL.
``verify`` pulls every acknowledged push given on stdin and prints what it found. The exit
status is 0 unless a step failed in a way no host may see.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import sys
import time
from typing import Any

import attrs

from ecrcrypt.digest import Digest
from ecrcrypt.ecr.crashpoints import set_crash_hook
from ecrcrypt.ecr.metadata_url import open_metadata
from ecrcrypt.ecr.registry import Registry
from ecrcrypt.ecr.types import LayerPush, build_manifest
from ecrcrypt.errors import (
    EcrKmsError,
    LimitExceededError,
    RepositoryAlreadyExistsError,
    RepositoryNotFoundError,
)
from ecrcrypt.kms.aws import Boto3Kms
from ecrcrypt.store.s3 import S3BlobStore

ACCOUNT, REGION = "123456789012", "us-east-1"  # moto's default account
PREFIX = "registry"
FRAME = 4096
BASE = "fleet/base"  # made before the race, never deleted: the victim dies pushing into it
KEEP = tuple(f"fleet/keep{i}" for i in range(3))  # created in the race, never deleted
CHURN = tuple(f"fleet/churn{i}" for i in range(6))  # created and deleted in the race
#: Repositories the key admits besides the base and the keep ones: churn races for these.
SPARE = 2
#: Two grants per KMS repository (one per grantee).
GRANTS_PER_KEY = 2 * (1 + len(KEEP) + SPARE)


def layer(name: str, size: int) -> bytes:
    """Deterministic content, so every host pushes the same bytes and anyone can check a pull."""
    seed = hashlib.sha256(name.encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


#: The images every host pushes into the base and every keep repository: tag -> (config, layers).
IMAGES: dict[str, tuple[bytes, tuple[bytes, ...]]] = {
    "app": (layer("app-config", 300), (layer("base-os", 9000), layer("app-libs", 5000), layer("app-bin", 2500))),
    "tool": (layer("tool-config", 280), (layer("base-os", 9000), layer("tool-bin", 3000))),
}
BLOBS = {str(Digest.of(b)): b for config, layers in IMAGES.values() for b in (config, *layers)}


@attrs.frozen(kw_only=True)
class HostConfig:
    endpoint: str
    bucket: str
    metadata: str
    key: str
    seed: int = 0
    rounds: int = 1
    victim: bool = False

    def to_json(self) -> str:
        return json.dumps(attrs.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> HostConfig:
        return cls(**json.loads(text))


def aws_client(service: str, endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(
        region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )  # not secrets: moto accepts any
    return session.client(  # type: ignore[call-overload]
        service, endpoint_url=endpoint, config=Config(s3={"addressing_style": "path"})
    )


def open_registry(config: HostConfig) -> Registry:
    """A registry host on the shared moto KMS and S3 bucket and the shared metadata."""
    kms = Boto3Kms(client=aws_client("kms", config.endpoint))
    return Registry(
        kms=lambda principal: kms,
        store=S3BlobStore(aws_client("s3", config.endpoint), config.bucket, prefix=PREFIX),
        metadata=open_metadata(config.metadata),
        account=ACCOUNT,
        region=REGION,
        frame_length=FRAME,
    )


def _say(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def _create(registry: Registry, name: str, key: str) -> bool:
    try:
        made = registry.create_repository(name, encryption_configuration={"encryptionType": "KMS", "kmsKey": key})
    except RepositoryAlreadyExistsError:
        return False
    except EcrKmsError as exc:
        if exc.kms_error != LimitExceededError.code:
            raise
        _say(event="refused", name=name)
        return False
    _say(event="created", name=name, created_at=made.created_at)
    return True


def _delete(registry: Registry, name: str) -> None:
    try:
        gone = registry.delete_repository(name, force=True)
    except RepositoryNotFoundError:
        return
    _say(event="deleted", name=name, created_at=gone.created_at)


def push_image(registry: Registry, name: str, tag: str) -> str:
    """Push one of :data:`IMAGES` (its blobs, then its manifest under ``tag``); the manifest digest."""
    repo = registry.repository(name)
    config, layers = IMAGES[tag]
    pushed: list[LayerPush] = [repo.push_layer(b, digest=Digest.of(b)) for b in (config, *layers)]
    image = repo.put_image(build_manifest(pushed[1:], config=pushed[0]), tag=tag)
    return str(image.digest)


def pull_image(registry: Registry, name: str, tag: str, digest: str) -> list[str]:
    """Pull ``name:tag`` and check it against what was pushed; the problems found (none: empty)."""
    repo = registry.repository(name)
    image = repo.get_image(tag=tag)
    problems = [] if str(image.digest) == digest else [f"{name}:{tag} is {image.digest}, pushed {digest}"]
    problems += [
        f"{name}: layer {d} does not read back" for d in image.layer_digests if repo.read_layer(d) != BLOBS[str(d)]
    ]
    return problems


def _stall_at_first_commit() -> None:
    """The victim: at its first blob commit (not yet recorded), say so and wait for SIGKILL."""

    def hook(point: str) -> None:
        if point == "push:committed":
            _say(event="stalled", point=point)
            time.sleep(600)  # the parent kills this process now; it never resumes

    set_crash_hook(hook)


def race(config: HostConfig) -> None:
    registry = open_registry(config)
    rng = random.Random(config.seed)
    _say(event="ready")
    sys.stdin.readline()  # the parent starts every host at once
    try:
        for round_ in range(config.rounds):
            for name in rng.sample(KEEP + CHURN, len(KEEP + CHURN)):
                if _create(registry, name, config.key) and name in CHURN:
                    scratch = layer(f"scratch-{name}-{config.seed}", 3000)
                    with contextlib.suppress(RepositoryNotFoundError):  # a racing host may delete it first
                        registry.repository(name).push_layer(scratch, digest=Digest.of(scratch))
            for name in rng.sample(CHURN, len(CHURN)):
                _delete(registry, name)
            for name in rng.sample(KEEP, len(KEEP)):
                _create(registry, name, config.key)
            if config.victim and round_ == config.rounds - 1:
                _stall_at_first_commit()
                # A layer only the victim has: its push reaches a blob commit for sure.
                own = layer(f"victim-{config.seed}", 7000)
                registry.repository(BASE).push_layer(own, digest=Digest.of(own))
            existing = {d.repository_name for d in registry.describe_repositories()}
            for name in [BASE, *rng.sample(KEEP, len(KEEP))]:
                if name not in existing:
                    continue
                for tag in rng.sample(sorted(IMAGES), len(IMAGES)):
                    digest = push_image(registry, name, tag)
                    _say(event="pushed", name=name, tag=tag, digest=digest)
                    problems = pull_image(registry, name, tag, digest)
                    if problems:
                        raise AssertionError("; ".join(problems))
    finally:
        registry.close()


def verify(config: HostConfig, pushes: list[dict[str, str]]) -> None:
    registry = open_registry(config)
    try:
        problems = [p for ack in pushes for p in pull_image(registry, ack["name"], ack["tag"], ack["digest"])]
    finally:
        registry.close()
    _say(event="verified", pulls=len(pushes), problems=problems)


def main(argv: list[str]) -> None:
    command, config = argv[0], HostConfig.from_json(argv[1])
    if command == "race":
        race(config)
    elif command == "verify":
        verify(config, json.loads(sys.stdin.read()))
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
