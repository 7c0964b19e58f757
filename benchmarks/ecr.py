"""A large layer through the storage path: plain copy, raw AES-GCM, ecrcrypt, the ECR model.

Everything reads the same source file and writes through the same
``FilesystemBlobStore`` (temp file, fsync, rename), so the differences are the
encryption and the registry, not the disk. Optionally the same through S3 on a
moto server on 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from benchmarks._harness import Config, GiB, MiB, NullSink, Report, Skip, gbps, median_seconds, need
from benchmarks.raw import TAG, RawFramer


def write_source(path: Path, total: int) -> None:
    chunk = os.urandom(MiB)
    with open(path, "wb") as f:
        full, rest = divmod(total, MiB)
        for _ in range(full):
            f.write(chunk)
        f.write(chunk[:rest])


def read_chunks(path: Path, size: int = MiB) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(size):
            yield chunk


def _copy(src: Path, dst: Path) -> None:
    shutil.copyfile(src, dst)
    with open(dst, "rb+") as f:
        os.fsync(f.fileno())  # the store fsyncs too: compare like with like


def _store_put(store: Any, key: str, src: Path) -> None:
    with store.open_write(key) as w:
        for chunk in read_chunks(src):
            w.write(chunk)
        w.commit()


def _store_get(store: Any, key: str) -> int:
    buf = bytearray(MiB)
    n = 0
    with store.open_read(key) as r:
        while k := r.readinto(buf):
            n += k
    return n


def _raw_put(store: Any, key: str, src: Path, framer: RawFramer) -> None:
    with store.open_write(key) as w:
        for chunk in read_chunks(src, framer.frame_length):
            framer.encrypt(chunk, w)  # one frame per chunk
        w.commit()


def _raw_get(store: Any, key: str, framer: RawFramer) -> int:
    step = framer.frame_length + TAG
    buf = bytearray(step)
    view = memoryview(buf)
    sink = NullSink()
    with store.open_read(key) as r:
        while k := r.readinto(buf):
            framer.decrypt(view[:k], sink)
    return sink.count


def _streams_put(store: Any, key: str, src: Path, frame: int) -> None:
    streams = need("ecrcrypt.streams", "EncryptingWriter")
    from benchmarks.streaming import provider_and_context

    provider, context = provider_and_context()
    with store.open_write(key) as w:
        with streams.EncryptingWriter(
            w, provider=provider, context=context, frame_length=frame, compute_sha256=True
        ) as enc:
            for chunk in read_chunks(src):
                enc.write(chunk)
        w.commit()
    _STREAMS_STATE["provider"], _STREAMS_STATE["context"] = provider, context


_STREAMS_STATE: dict[str, Any] = {}


def _streams_get(store: Any, key: str) -> int:
    streams = need("ecrcrypt.streams", "DecryptingReader")
    buf = bytearray(MiB)
    n = 0
    with store.open_read(key) as r:
        reader = streams.DecryptingReader(
            r, provider=_STREAMS_STATE["provider"], context=_STREAMS_STATE["context"], compute_sha256=True
        )
        with reader:
            while k := reader.readinto(buf):
                n += k
    return n


def _time_pair(
    report: Report,
    prefix: str,
    label: str,
    put: Callable[[], object],
    get: Callable[[], object],
    total: int,
    reps: int,
    note: str,
) -> None:
    push = median_seconds(put, reps, warmup=False)
    pull = median_seconds(get, reps, warmup=False)
    report.add(f"{prefix}_push_gbps", f"{label}: push", gbps(total, push), "GB/s", note)
    report.add(f"{prefix}_pull_gbps", f"{label}: pull", gbps(total, pull), "GB/s", note)


def run(cfg: Config, report: Report, *, s3: bool = False) -> None:
    blobstore = need("ecrcrypt.store.filesystem", "FilesystemBlobStore")
    total = cfg.big_size
    reps = 1 if cfg.quick else 3
    f = cfg.frame_length
    note = f"{total / GiB:g} GiB layer, filesystem store"
    with tempfile.TemporaryDirectory(prefix="ecrcrypt-bench-") as tmp:
        root = Path(tmp)
        src = root / "layer.bin"
        write_source(src, total)
        copy_s = median_seconds(lambda: _copy(src, root / "copy.bin"), reps, warmup=False)
        report.add("file_copy_gbps", "plain file copy (+fsync)", gbps(total, copy_s), "GB/s", note)
        (root / "copy.bin").unlink()

        store = blobstore.FilesystemBlobStore(root / "store")
        _time_pair(
            report,
            "store_plain",
            "blob store, no encryption",
            lambda: _store_put(store, "plain", src),
            lambda: _store_get(store, "plain"),
            total,
            reps,
            note,
        )
        store.delete("plain")
        framer = RawFramer(f)
        _time_pair(
            report,
            "store_raw",
            "blob store + raw AES-GCM",
            lambda: _raw_put(store, "raw", src, framer),
            lambda: _raw_get(store, "raw", framer),
            total,
            reps,
            note,
        )
        store.delete("raw")
        try:
            _time_pair(
                report,
                "store_streams",
                "blob store + ecrcrypt streams (+SHA-256)",
                lambda: _streams_put(store, "streams", src, f),
                lambda: _streams_get(store, "streams"),
                total,
                reps,
                note,
            )
            store.delete("streams")
        except Skip as exc:
            report.skip("ECR: streams through the store", str(exc))
        except Exception as exc:
            report.skip("ECR: streams through the store", f"failed: {type(exc).__name__}: {exc}")
        try:
            registry_push_pull(cfg, report, root, src, total, reps, note)
        except Skip as exc:
            report.skip("ECR: registry push/pull", str(exc))
        except Exception as exc:  # a module mid-development: report, keep the other figures
            report.skip("ECR: registry push/pull", f"failed: {type(exc).__name__}: {exc}")
        if s3:
            try:
                s3_push_pull(cfg, report, src, total)
            except Skip as exc:
                report.skip("S3 (moto) push/pull", str(exc))
    from benchmarks.memory import measure

    try:
        r = measure("ecr-push-pull-fs", total, f)
        report.add("ecr_rss_growth_mib", "peak RSS growth: ECR push+pull", r["growth_mib"], "MiB", note)
    except Exception as exc:
        report.skip("ECR RSS", str(exc)[:200])
    try:
        r = measure("ecr-streams-fs", total, f)
        report.add(
            "store_streams_rss_growth_mib", "peak RSS growth: streams push+pull (store)", r["growth_mib"], "MiB", note
        )
    except Exception as exc:
        report.skip("ECR RSS", str(exc)[:200])


def open_registry(root: Path) -> tuple[Any, str]:
    """The embedded default registry under ``root``, and the encryption type to bench.

    KMS (the AWS managed key of the local KMS) when ecrcrypt.kms.local.service exists, else
    AES256 with a registry that has no KMS at all.
    """
    registry = need("ecrcrypt.ecr.registry", "Registry")
    try:
        need("ecrcrypt.kms.local.service", "LocalKms")
    except Skip:
        from ecrcrypt import FilesystemBlobStore
        from ecrcrypt.ecr.metadata import RegistryMetadata
        from ecrcrypt.ecr.service_key import ServiceKey

        def no_kms(principal: str) -> Any:
            raise RuntimeError("no KMS in this benchmark run")

        root.mkdir(parents=True, exist_ok=True)
        reg = registry.Registry(
            kms=no_kms,
            store=FilesystemBlobStore(root / "blobs"),
            metadata=RegistryMetadata(root / "registry.sqlite3"),
            service_key=ServiceKey.load_or_create(root / "service-key"),
        )
        return reg, "AES256"
    return registry.Registry.open(root), "KMS"


class _FileSource:
    """A SupportsRead over generated bytes (the client's upload body)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = bytearray()

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._pending) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._pending += chunk
        size = len(self._pending) if size < 0 else min(size, len(self._pending))
        out = bytes(self._pending[:size])
        del self._pending[:size]
        return out


def registry_push_pull(cfg: Config, report: Report, root: Path, src: Path, total: int, reps: int, note: str) -> None:
    import hashlib
    import time

    h = hashlib.sha256()
    for chunk in read_chunks(src):
        h.update(chunk)
    digest = "sha256:" + h.hexdigest()
    reg, enc_type = open_registry(root / "registry")
    note = f"{note}, {enc_type}"
    push_s, upload_s, pull_s = [], [], []
    for rep in range(reps):
        name = f"bench-{rep}"
        reg.create_repository(name, encryption_configuration={"encryptionType": enc_type})
        repo = reg.repository(name)
        with open(src, "rb") as f:
            start = time.perf_counter()
            repo.push_layer(f, digest=digest)
            push_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        n = repo.pull_layer(digest, NullSink())
        pull_s.append(time.perf_counter() - start)
        assert n == total
        reg.delete_repository(name, force=True)
        name = f"bench-upload-{rep}"
        reg.create_repository(name, encryption_configuration={"encryptionType": enc_type})
        repo = reg.repository(name)
        start = time.perf_counter()
        upload = repo.start_upload()
        for chunk in read_chunks(src):
            upload.write(chunk)
        upload.complete(digest)
        upload_s.append(time.perf_counter() - start)
        reg.delete_repository(name, force=True)
    import statistics

    report.add("ecr_push_gbps", "ECR push_layer (digest first)", gbps(total, statistics.median(push_s)), "GB/s", note)
    report.add(
        "ecr_upload_gbps", "ECR chunked upload (digest last)", gbps(total, statistics.median(upload_s)), "GB/s", note
    )
    report.add(
        "ecr_pull_gbps", "ECR pull_layer (digest verified)", gbps(total, statistics.median(pull_s)), "GB/s", note
    )
    report.ratio("ecr_push_vs_copy", "ECR push ÷ file copy", "ecr_push_gbps", "file_copy_gbps")
    report.ratio("ecr_push_vs_raw", "ECR push ÷ store + raw AES-GCM", "ecr_push_gbps", "store_raw_push_gbps")
    report.ratio("ecr_pull_vs_raw", "ECR pull ÷ store + raw AES-GCM", "ecr_pull_gbps", "store_raw_pull_gbps")
    reg.close()


def s3_push_pull(cfg: Config, report: Report, src: Path, total: int) -> None:
    """Plain S3 put/get (moto's own speed), then ecrcrypt streams over S3 in a fresh process (RSS)."""
    need("boto3")
    need("moto.server")
    s3 = need("ecrcrypt.store.s3", "S3BlobStore")
    from benchmarks import _moto
    from benchmarks.memory import measure

    note = f"{total / GiB:g} GiB layer, S3 on moto (127.0.0.1)"
    with _moto.moto_server() as endpoint:
        client = _moto.client("s3", endpoint)
        client.create_bucket(Bucket="ecrcrypt-bench")
        store = s3.S3BlobStore(client, "ecrcrypt-bench")
        _time_pair(
            report,
            "s3_plain",
            "S3 (moto), no encryption",
            lambda: _store_put(store, "plain", src),
            lambda: _store_get(store, "plain"),
            total,
            1,
            note,
        )
        store.delete("plain")
        os.environ["ECRCRYPT_BENCH_S3_ENDPOINT"] = endpoint
        try:
            r = measure("s3-streams", total, cfg.frame_length)
        except Exception as exc:
            report.skip("S3 (moto) + ecrcrypt streams", str(exc)[:200])
            return
        finally:
            del os.environ["ECRCRYPT_BENCH_S3_ENDPOINT"]
        try:
            need("ecrcrypt.kms.aws", "Boto3Kms")
            need("ecrcrypt.ecr.registry", "Registry")
            os.environ["ECRCRYPT_BENCH_S3_ENDPOINT"] = endpoint
            e = measure("s3-ecr", total, cfg.frame_length)
            note_e = note + ", Boto3Kms + S3BlobStore"
            report.add("aws_ecr_push_gbps", "ECR on moto KMS+S3: push", gbps(total, e["push_seconds"]), "GB/s", note_e)
            report.add("aws_ecr_pull_gbps", "ECR on moto KMS+S3: pull", gbps(total, e["pull_seconds"]), "GB/s", note_e)
            report.add("aws_ecr_rss_growth_mib", "peak RSS growth: ECR on moto KMS+S3", e["growth_mib"], "MiB", note_e)
        except Exception as exc:
            report.skip("ECR on moto KMS + S3", str(exc)[:200])
        finally:
            os.environ.pop("ECRCRYPT_BENCH_S3_ENDPOINT", None)
    report.add("s3_push_gbps", "S3 (moto) + ecrcrypt streams: push", gbps(total, r["push_seconds"]), "GB/s", note)
    report.add("s3_pull_gbps", "S3 (moto) + ecrcrypt streams: pull", gbps(total, r["pull_seconds"]), "GB/s", note)
    report.add("s3_rss_growth_mib", "peak RSS growth: S3 push+pull", r["growth_mib"], "MiB", note)


def _generated(total: int, chunk: bytes) -> Iterator[bytes]:
    full, rest = divmod(total, len(chunk))
    for _ in range(full):
        yield chunk
    if rest:
        yield chunk[:rest]


def _streams_push_pull(store: Any, total: int, chunk: bytes, frame: int) -> dict[str, float]:
    import time

    global _STREAMS_STATE
    start = time.perf_counter()
    src_iter = _generated(total, chunk)
    streams = need("ecrcrypt.streams", "EncryptingWriter")
    from benchmarks.streaming import provider_and_context

    provider, context = provider_and_context()
    with store.open_write("layer") as w:
        with streams.EncryptingWriter(
            w, provider=provider, context=context, frame_length=frame, compute_sha256=True
        ) as enc:
            for piece in src_iter:
                enc.write(piece)
        w.commit()
    pushed = time.perf_counter()
    _STREAMS_STATE = {"provider": provider, "context": context}
    n = _streams_get(store, "layer")
    assert n == total
    return {"push_seconds": pushed - start, "pull_seconds": time.perf_counter() - pushed}


def _push_pull(repo: Any, total: int, chunk: bytes) -> dict[str, float]:
    """Push ``total`` generated bytes (digest declared first), pull them back (digest verified)."""
    import hashlib
    import time

    h = hashlib.sha256()
    for piece in _generated(total, chunk):
        h.update(piece)
    digest = "sha256:" + h.hexdigest()
    start = time.perf_counter()
    repo.push_layer(_FileSource(_generated(total, chunk)), digest=digest)
    pushed = time.perf_counter()
    n = repo.pull_layer(digest, NullSink())
    if n != total:
        raise AssertionError("pulled a different length")
    return {"push_seconds": pushed - start, "pull_seconds": time.perf_counter() - pushed}


def rss_scenario(name: str, total: int, chunk: bytes) -> Callable[[], dict[str, float] | None]:
    """For benchmarks._rss_child: a push and a pull of ``total`` generated bytes in this process."""
    if name in ("s3-streams", "ecr-streams-fs"):
        from ecrcrypt.format.message import DEFAULT_FRAME_LENGTH
    if name == "s3-streams":
        from benchmarks import _moto
        from ecrcrypt.store.s3 import S3BlobStore

        client = _moto.client("s3", os.environ["ECRCRYPT_BENCH_S3_ENDPOINT"])
        store = S3BlobStore(client, "ecrcrypt-bench")
        return lambda: _streams_push_pull(store, total, chunk, DEFAULT_FRAME_LENGTH)
    if name == "ecr-streams-fs":
        from ecrcrypt import FilesystemBlobStore

        def run_fs() -> dict[str, float]:
            with tempfile.TemporaryDirectory(prefix="ecrcrypt-bench-") as tmp:
                return _streams_push_pull(FilesystemBlobStore(tmp), total, chunk, DEFAULT_FRAME_LENGTH)

        return run_fs
    # Set-up (clients, registry, key, repository) happens here, before the peak is reset:
    # the figure is what streaming the layer costs, not what importing boto3 costs.
    if name == "s3-ecr":
        from benchmarks import _moto
        from ecrcrypt.ecr.registry import Registry
        from ecrcrypt.kms.aws import Boto3Kms
        from ecrcrypt.store.s3 import S3BlobStore

        endpoint = os.environ["ECRCRYPT_BENCH_S3_ENDPOINT"]
        account = "123456789012"  # moto's default account
        kms = Boto3Kms(client=_moto.client("kms", endpoint))
        s3 = _moto.client("s3", endpoint)
        # On AWS the grantees are the registry's IAM roles, not service principals (issue 5).
        reg = Registry(
            kms=lambda principal: kms,
            store=S3BlobStore(s3, "ecrcrypt-bench", prefix="registry"),
            account=account,
            region=_moto.REGION,
            caller=f"arn:aws:iam::{account}:root",
            ecr_principal=f"arn:aws:iam::{account}:role/ecrcrypt-registry",
            storage_principal=f"arn:aws:iam::{account}:role/ecrcrypt-storage",
            bucket="ecrcrypt-bench",
        )
        key = kms.create_key(description="bench layers")
        reg.create_repository("bench", encryption_configuration={"encryptionType": "KMS", "kmsKey": key.arn})
        repo = reg.repository("bench")
        _push_pull(repo, 1024, chunk[:1024])  # warm every code path once
        return lambda: _push_pull(repo, total, chunk)
    if name == "ecr-push-pull-fs":
        tmp = tempfile.mkdtemp(prefix="ecrcrypt-bench-")
        try:
            reg, enc_type = open_registry(Path(tmp))
            reg.create_repository("bench", encryption_configuration={"encryptionType": enc_type})
            repo = reg.repository("bench")
            _push_pull(repo, 1024, chunk[:1024])
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

        def run_registry() -> dict[str, float]:
            try:
                return _push_pull(repo, total, chunk)
            finally:
                reg.close()
                shutil.rmtree(tmp, ignore_errors=True)

        return run_registry
    raise SystemExit(f"unknown scenario {name}")
