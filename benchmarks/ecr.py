"""A large layer through the storage path: plain copy, raw AES-GCM, ecrcrypt, the ECR model.

Everything reads the same source file and writes through the same
``FilesystemBlobStore`` (temp file, fsync, rename), so the differences are the
encryption and the registry, not the disk. Optionally the same through S3 on a
moto server on 127.0.0.1.
"""

from __future__ import annotations

import functools
import itertools
import os
import shutil
import struct
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from benchmarks._harness import Config, GiB, MiB, NullSink, Paired, Report, Skip, gbps, median_seconds, need
from benchmarks.raw import TAG, HashPipe, RawFramer


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


def raw_push(store: Any, key: str, src: Path, framer: RawFramer, pipe: HashPipe) -> str:
    """The push's pipeline limit: ``readinto`` a ring buffer, SHA-256 on another thread, framed AES-GCM
    (``encrypt_into`` a reused buffer) into the same blob store writer (temp file, fsync, rename)."""
    pipe.reset()
    f = framer.frame_length
    seq = 1
    with open(src, "rb") as source, store.open_write(key) as w:
        while True:
            i, buf = pipe.buffer()
            n = source.readinto(buf[:f])
            if not n:
                break
            pipe.submit(i, buf[:n])
            seq = framer.encrypt(buf[:n], w, seq)  # one frame per chunk
        digest = pipe.drain()
        w.commit()
    return digest


def raw_pull(store: Any, key: str, framer: RawFramer, pipe: HashPipe) -> str:
    """The pull's pipeline limit: ``readinto`` one frame buffer from the same store, ``decrypt_into``
    a ring buffer, SHA-256 on another thread, the plaintext to a null sink."""
    pipe.reset()
    step = framer.frame_length + TAG
    buf = memoryview(bytearray(step))
    nonce, aad, at = framer.nonce, framer.aad, len(framer.aad) - 12
    decrypt_into = framer.aead.decrypt_into
    sink = NullSink()
    seq = 0
    with store.open_read(key) as r:
        while k := r.readinto(buf):
            seq += 1
            i, out = pipe.buffer()
            struct.pack_into(">I", nonce, 8, seq)
            struct.pack_into(">IQ", aad, at, seq, k - TAG)
            decrypt_into(nonce, buf[:k], aad, out[: k - TAG])
            pipe.submit(i, out[: k - TAG])
            sink.write(out[: k - TAG])
    return pipe.drain()


def run(cfg: Config, report: Report, *, s3: bool = False) -> None:
    blobstore = need("ecrcrypt.store.filesystem", "FilesystemBlobStore")
    total = cfg.big_size
    f = cfg.frame_length
    note = f"{total / MiB:g} MiB layer, filesystem store"
    with tempfile.TemporaryDirectory(prefix="ecrcrypt-bench-") as tmp:
        root = Path(tmp)
        src = root / "layer.bin"
        write_source(src, total)
        store = blobstore.FilesystemBlobStore(root / "store")
        try:
            registry_push_pull(cfg, report, root, src, store, total, note)
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
            metadata=RegistryMetadata.create(root / "registry.sqlite3", account="111122223333", region="us-east-1"),
            service_key=ServiceKey.create(root / "service-key"),
        )
        return reg, "AES256"
    return registry.Registry.create(root), "KMS"


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


PULLS_PER_TRIAL = 3


def registry_push_pull(cfg: Config, report: Report, root: Path, src: Path, store: Any, total: int, note: str) -> None:
    """Push, body-first upload and pull through the registry, each trial paired with the raw pipeline.

    Every trial makes a fresh repository (untimed: objects are content-addressed), then runs the raw
    push and ``push_layer`` in alternating order, the raw push again and the chunked upload (full
    mode only: two more fsync'd layers per trial), then the raw pull and ``pull_layer``, three times;
    each ratio is per pair, the figure its median. A small layer goes through every path first, untimed.
    """
    reg, enc_type = open_registry(root / "registry")
    note = f"{note}, {enc_type}"
    framer = RawFramer(cfg.frame_length)
    pipe = HashPipe(cfg.frame_length)
    try:
        runs: dict[str, list[float]] = {k: [] for k in ("raw_push", "push", "raw_push2", "upload", "raw_pull", "pull")}
        fresh = itertools.count()

        def trial(number: int, layer: Path, size: int, keep: bool) -> None:
            """One paired trial over ``layer``: fresh repositories, the three pairs in alternating order."""
            digest = "sha256:" + raw_push(store, "raw", layer, framer, pipe)  # what the raw pull reads (untimed)

            def push(repo: Any) -> None:
                with open(layer, "rb") as f:
                    repo.push_layer(f, digest=digest)

            def upload(repo: Any) -> None:
                up = repo.start_upload()
                for chunk in read_chunks(layer):
                    up.write(chunk)
                up.complete(digest)

            def pull(repo: Any) -> None:
                if repo.pull_layer(digest, NullSink()) != size:
                    raise AssertionError("pulled a different length")

            def push_raw() -> None:
                # A new key each time, as every registry push: replacing a file costs the old one's release.
                raw_push(store, f"raw-{next(fresh)}", layer, framer, pipe)

            def pull_raw() -> None:
                if raw_pull(store, "raw", framer, pipe) != digest.removeprefix("sha256:"):
                    raise AssertionError("the raw pull hashed other bytes")

            name = f"bench-{number}"
            reg.create_repository(name, encryption_configuration={"encryptionType": enc_type})
            reg.create_repository(name + "-upload", encryption_configuration={"encryptionType": enc_type})
            repo, up_repo = reg.repository(name), reg.repository(name + "-upload")
            steps: list[list[tuple[str, Callable[[], object]]]] = [
                [("raw_push", push_raw), ("push", functools.partial(push, repo))],
            ]
            if not cfg.quick:  # two more fsync'd layers per trial: the full run only
                steps.append([("raw_push2", push_raw), ("upload", functools.partial(upload, up_repo))])
            # Pulls read the page cache and write nothing: three pairs per repository, so that the
            # pull figure rests on 15 pairs, not 5 (it is the one the disk does not dominate).
            steps += [[("raw_pull", pull_raw), ("pull", functools.partial(pull, repo))]] * PULLS_PER_TRIAL
            for i, pair in enumerate(steps):
                for key, fn in pair if (number + i) % 2 == 0 else reversed(pair):
                    start = time.perf_counter()
                    fn()
                    if keep:
                        runs[key].append(time.perf_counter() - start)
            reg.delete_repository(name, force=True)
            reg.delete_repository(name + "-upload", force=True)
            for key in list(store.list("raw-")):
                store.delete(key)

        # Every path warmed once (thread pools, the KMS hot path, the registry's caches) on a small
        # layer, then the kept trials on the large one.
        warm = root / "warm.bin"
        write_source(warm, 4 * MiB)
        trial(0, warm, 4 * MiB, keep=False)
        for number in range(1, cfg.reps + 1):
            trial(number, src, total, keep=True)
        results = {
            "push": Paired(runs["raw_push"], runs["push"]),
            "upload": Paired(runs["raw_push2"], runs["upload"]),
            "pull": Paired(runs["raw_pull"], runs["pull"]),
        }
        if cfg.quick:
            del results["upload"]
        labels = {
            "push": "ECR push_layer (digest first)",
            "upload": "ECR chunked upload (digest last, body first)",
            "pull": "ECR pull_layer (digest verified)",
        }
        for key, result in results.items():
            report.add(f"ecr_{key}_gbps", labels[key], gbps(total, result.cand_s), "GB/s", note)
            report.add(
                f"raw_{key}_pipeline_gbps", f"{labels[key]}: its raw pipeline", gbps(total, result.base_s), "GB/s", note
            )
            report.spread(
                f"{key}_pipeline_ratio",
                f"{key} ÷ raw AES + SHA-256 + the same file I/O (paired)",
                result.speed(),
                "target ≥ 0.85" if key != "upload" else "",
            )
    finally:
        pipe.close()
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
