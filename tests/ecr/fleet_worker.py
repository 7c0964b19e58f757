"""One registry host of the fleet test (tests/ecr/test_metadata_fleet.py; no tests here).

``python -m tests.ecr.fleet_worker URL ROOT SEED`` opens the shared state -- the metadata at
URL (PostgreSQL), the local KMS file and the filesystem blob store under ROOT -- races the
other hosts to create every repository of ``NAMES`` on one key (whose grant quota lets only
some through), then pushes the same layer and image into every repository that exists and
pulls them back. Each step is printed as a JSON line only *after* it returned (an
acknowledgement the parent holds the fleet to); the exit status is 0 unless a step failed in
a way no host may see (anything but the name being taken or the key's grant quota).
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

from ecrcrypt.digest import Digest
from ecrcrypt.ecr.metadata_url import open_metadata
from ecrcrypt.ecr.registry import Registry
from ecrcrypt.ecr.types import build_manifest
from ecrcrypt.errors import EcrKmsError, LimitExceededError, RepositoryAlreadyExistsError
from ecrcrypt.kms import KmsQuotas
from ecrcrypt.kms.local.service import LocalKms

ACCOUNT, REGION = "111122223333", "us-east-1"
NAMES = tuple(f"fleet/r{i}" for i in range(8))
GRANTS_PER_KEY = 8  # two grants per KMS repository: four repositories fit
FRAME = 1024
LAYER = bytes(range(256)) * 200  # the same layer on every host


def quotas() -> KmsQuotas:
    return KmsQuotas(grants_per_key=GRANTS_PER_KEY)


def open_host(url: str, root: Path) -> tuple[LocalKms, Registry]:
    from ecrcrypt.store.filesystem import FilesystemBlobStore

    kms = LocalKms(root / "kms.sqlite3", account=ACCOUNT, region=REGION, quotas=quotas())
    registry = Registry(
        kms=kms.client,
        store=FilesystemBlobStore(root / "blobs"),
        metadata=open_metadata(url),
        account=ACCOUNT,
        region=REGION,
        audit=kms.audit,
        frame_length=FRAME,
    )
    return kms, registry


def _say(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def main(url: str, root: Path, seed: int) -> None:
    key = (root / "key").read_text()
    _, registry = open_host(url, root)
    names = list(NAMES)
    random.Random(seed).shuffle(names)
    config = {"encryptionType": "KMS", "kmsKey": key}
    for name in names:
        try:
            registry.create_repository(name, encryption_configuration=config)
        except RepositoryAlreadyExistsError:
            continue
        except EcrKmsError as exc:
            if exc.kms_error != LimitExceededError.code:
                raise
            continue
        _say(event="created", name=name)
    digest = Digest.of(LAYER)
    for name in names:
        if name not in {d.repository_name for d in registry.describe_repositories()}:
            continue
        repo = registry.repository(name)
        push = repo.push_layer(LAYER, digest=digest)
        image = repo.put_image(build_manifest([push]), tag="latest")
        _say(event="pushed", name=name, digest=str(digest), image=str(image.digest))
        assert repo.read_layer(digest) == LAYER
        assert repo.get_image(tag="latest").digest == image.digest
    registry.close()


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]))
