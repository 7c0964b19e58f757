"""Target ``manifest``: image manifests (``ecrcrypt.ecr.types.layer_digests`` and ``Repository.put_image``).

The input is a manifest as a client would PutImage it. ``layer_digests`` reads its layer and config
digests; ``put_image`` stores it (in a repository holding two fixed layers, so that manifests
listing them are accepted) and ``get_image`` must return the same bytes with the same digests.
"""

from __future__ import annotations

from ecrcrypt import MemoryBlobStore, Registry
from ecrcrypt.digest import Digest
from ecrcrypt.ecr.repository import Repository
from ecrcrypt.ecr.types import layer_digests
from ecrcrypt.kms import Kms
from fuzz._harness import MiB, OracleViolation, Target

# Layers every fixture repository holds: the corpus's manifests list them (fuzz/make_corpus.py).
LAYERS = (b"fuzz layer one\n", b"fuzz layer two\n")
_REFRESH = 256  # a new registry after this many stored manifests: memory stays bounded
_state: list[Repository] = []
_stored = [0]


def repository() -> Repository:
    if not _state or _stored[0] >= _REFRESH:
        registry = Registry(kms=lambda principal: _no_kms(), store=MemoryBlobStore())
        registry.create_repository("fuzz")
        repo = registry.repository("fuzz")
        for layer in LAYERS:
            repo.push_layer(layer, digest=Digest.of(layer))
        _state[:] = [repo]
        _stored[0] = 0
    return _state[0]


def _no_kms() -> Kms:
    raise OracleViolation("an AES256 repository called KMS")


def one_input(data: bytes) -> None:
    digests = layer_digests(data)
    repo = repository()
    image = repo.put_image(data)
    _stored[0] += 1
    if image.digest != Digest.of(data):
        raise OracleViolation("put_image named the manifest by another digest")
    got = repo.get_image(digest=image.digest)
    if got.manifest != data or got.layer_digests != digests:
        raise OracleViolation("get_image returned another manifest than put_image stored")


TARGET = Target(
    name="manifest",
    one_input=one_input,
    max_len=4096,
    # json.loads builds a few objects per input byte; the stored message is the input plus a header.
    memory_bound=lambda n: 64 * n + 4 * MiB,
    runs=1500,
)
