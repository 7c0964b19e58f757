"""What every fuzz target shares: the oracle, the memory bound, the fixed keys and the EDK input format.

The oracle (docs/fuzzing.md): for any input, a target may return or raise an
:class:`ecrcrypt.errors.EcrCryptError` (the documented errors, each with its AWS code); any other
exception escaping is a bug, and so is an :class:`OracleViolation` that a target raises itself when
two ways of parsing the same bytes disagree or a round trip does not give back what went in. Memory:
no input may make ecrcrypt allocate more than the target's ``memory_bound(len(input))``; the corpus
replay (tests/fuzz) measures the peak with tracemalloc, the atheris runs run under ``RLIMIT_AS``.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import hashlib
import os
import resource
import shutil
import struct
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import attrs

from ecrcrypt.context import EncryptionContext
from ecrcrypt.errors import EcrCryptError
from ecrcrypt.format.message import DecryptPolicy
from ecrcrypt.keyprovider import EncryptedDataKey
from ecrcrypt.kms.local.service import LocalKms, LocalKmsClient
from ecrcrypt.providers.raw_aes import RawAesKeyProvider

__all__ = [
    "CORPUS",
    "FUZZ_POLICY",
    "OracleViolation",
    "Target",
    "decode_edk_input",
    "encode_edk_input",
    "limit_memory",
    "read_corpus",
    "run_input",
    "text",
    "vector_provider",
]

CORPUS = Path(__file__).resolve().parent / "corpus"
MiB = 1 << 20

# The policy every message target decrypts under: v1 allowed (so its parser is reached too), the
# default header cap, and frame and buffered-body caps small enough for a memory bound of a few MiB.
FUZZ_POLICY = DecryptPolicy(allow_v1=True, max_frame_length=MiB, max_buffered_body_size=MiB)

# The published test key of the ESDK test vectors (keys.json of aws-encryption-sdk-test-vectors,
# "aes-256"; tests/data/esdk-vectors uses it): seeds made from the vectors open under it.
VECTOR_NAMESPACE = "aws-raw-vectors-persistant"
VECTOR_KEY_NAME = "aes-256"
_VECTOR_KEY = base64.b64decode("AAECAwQFBgcICRAREhMUFRYXGBkgISIjJCUmJygpMDE=")


def vector_provider() -> RawAesKeyProvider:
    return RawAesKeyProvider(key_namespace=VECTOR_NAMESPACE, key_name=VECTOR_KEY_NAME, wrapping_key=_VECTOR_KEY)


class OracleViolation(Exception):
    """Two parses of the same bytes disagree, or a round trip changed a value: never an ecrcrypt error."""


@attrs.frozen(kw_only=True)
class Target:
    """One fuzz target: ``one_input`` raises nothing but ecrcrypt errors and :class:`OracleViolation`.

    ``setup`` (optional) builds what the target needs once per process (a local KMS, a registry)
    and returns inputs that are valid only for that fixture (e.g. ciphertext blobs of its key),
    which the runs add to the committed corpus.
    """

    name: str
    one_input: Callable[[bytes], None]
    max_len: int
    memory_bound: Callable[[int], int]
    runs: int = 2000  # iterations of the short run in make test
    options: tuple[str, ...] = ()  # libFuzzer options of this target, before the caller's
    setup: Callable[[], Iterable[bytes]] | None = None


def run_input(target: Target, data: bytes) -> None:
    """The oracle around one input: documented errors are an answer, anything else propagates."""
    with contextlib.suppress(EcrCryptError):
        target.one_input(data)


def text(data: bytes) -> str:
    """Bytes as the str a JSON or HTTP front end could hand over: invalid UTF-8 becomes lone surrogates."""
    return data.decode("utf-8", "surrogateescape")


_U16 = struct.Struct(">H")


def encode_edk_input(context: EncryptionContext, edks: Iterable[EncryptedDataKey]) -> bytes:
    """The EDK targets' input: the header's layout from the context length to the last EDK.

    ``u16 context length ‖ context ‖ u16 count ‖ (u16 len ‖ provider id, u16 len ‖ info, u16 len ‖ ciphertext)*``
    """
    ctx = context.serialize()
    keys = list(edks)
    parts = [_U16.pack(len(ctx)), ctx, _U16.pack(len(keys))]
    for edk in keys:
        for field in (edk.provider_id.encode("utf-8"), edk.provider_info, edk.ciphertext):
            parts += (_U16.pack(len(field)), field)
    return b"".join(parts)


def decode_edk_input(data: bytes) -> tuple[EncryptionContext, tuple[EncryptedDataKey, ...]] | None:
    """The inverse of :func:`encode_edk_input`; ``None`` when the framing itself is broken (not a finding).

    The context goes through ``EncryptionContext.deserialize`` (which may raise its documented error);
    provider ids are decoded liberally so that odd ones still reach the providers.
    """
    view = memoryview(data)
    pos = 0

    def field() -> bytes | None:
        nonlocal pos
        if pos + 2 > len(view):
            return None
        (n,) = _U16.unpack_from(view, pos)
        if pos + 2 + n > len(view):
            return None
        out = bytes(view[pos + 2 : pos + 2 + n])
        pos += 2 + n
        return out

    ctx = field()
    if ctx is None or pos + 2 > len(view):
        return None
    context = EncryptionContext.deserialize(ctx)
    (count,) = _U16.unpack_from(view, pos)
    pos += 2
    edks = []
    for _ in range(min(count, 16)):
        pid, info, ciphertext = field(), field(), field()
        if pid is None or info is None or ciphertext is None:
            return None
        provider_id = pid.decode("utf-8", "replace") or "?"
        edks.append(EncryptedDataKey(provider_id=provider_id, provider_info=info, ciphertext=ciphertext))
    return context, tuple(edks)


def read_corpus(name: str) -> Iterator[tuple[str, bytes]]:
    """``(file name, bytes)`` of every committed seed of target ``name``."""
    folder = CORPUS / name
    for path in sorted(folder.iterdir()) if folder.is_dir() else ():
        if path.is_file():
            yield path.name, path.read_bytes()


def seed_name(data: bytes) -> str:
    """libFuzzer's corpus file name for ``data`` (its SHA-1), so that its own runs never duplicate a seed."""
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()


def _vm_size() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise OSError("no VmSize in /proc/self/status")


def limit_memory(extra: int) -> int:
    """Cap this process's address space at what it maps now plus ``extra`` bytes; returns the cap.

    Past the cap an allocation raises ``MemoryError``, which the oracle reports as a crash.
    """
    cap = _vm_size() + extra
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    return cap


def environment_runs(default: int) -> int:
    """The short run's iteration count, scaled by ``ECRCRYPT_FUZZ_SCALE`` (a float, default 1)."""
    scale = float(os.environ.get("ECRCRYPT_FUZZ_SCALE", "1"))
    return max(1, int(default * scale))


# -- the local KMS the KMS targets decrypt with ---------------------------------------------

ACCOUNT = "111122223333"
KMS_CONTEXT = EncryptionContext({"aws:ecr:arn": f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/fuzz", "purpose": "fuzz"})


@attrs.frozen(kw_only=True)
class KmsFixture:
    """A file-backed local KMS (its audit trail grows on disk, not in the fuzzing process) and one key."""

    kms: LocalKms
    client: LocalKmsClient
    key_id: str
    key_arn: str


_kms_fixture: list[KmsFixture] = []


def kms_fixture() -> KmsFixture:
    """The process's KMS fixture, made on first use in a temporary folder removed at exit (or, under
    atheris, which exits past atexit, in the run's folder ``ECRCRYPT_FUZZ_WORK`` that ``python -m fuzz`` removes)."""
    if not _kms_fixture:
        folder = tempfile.mkdtemp(prefix="ecrcrypt-fuzz-kms-", dir=os.environ.get("ECRCRYPT_FUZZ_WORK"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        kms = LocalKms(Path(folder) / "kms.sqlite3", account=ACCOUNT, root_key=bytes(range(32)))
        client = kms.client(kms.root_principal)
        meta = client.create_key(description="fuzz")
        _kms_fixture.append(KmsFixture(kms=kms, client=client, key_id=meta.key_id, key_arn=str(meta.arn)))
    return _kms_fixture[0]
