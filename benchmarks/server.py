"""The registry server with a real client, next to an unencrypted registry; re-keying by re-wrapping.

* skopeo pushes and pulls one image with a 256 MiB layer (32 MiB in quick mode) to ``ecrcrypt serve``
  (AES256 and KMS repositories) and to Debian's ``docker-registry`` (CNCF distribution, no
  encryption) on 127.0.0.1, same machine, same client;
* ``migrate(rewrap=True)`` against the full re-encrypting ``migrate`` on a 1 GiB repository (128 MiB
  in quick mode), KMS key to KMS key.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks._harness import Config, GiB, MiB, Report, Skip
from tests.server.support import build_oci_layout, free_port, layer_tar_gz, request, running_server


def _ratio(rep: Report, key: str, label: str, numerator: str, denominator: str) -> None:
    """One run of each side, same machine, one after the other: a rough comparison, not a paired spread."""
    values = {r.key: r.value for r in rep.rows}
    if values.get(numerator) is not None and values.get(denominator):
        rep.add(key, label, values[numerator] / values[denominator], "x", "single runs, not paired")


def _skopeo(*args: str) -> float:
    started = time.perf_counter()
    subprocess.run(["skopeo", *args], check=True, capture_output=True, timeout=1800)
    return time.perf_counter() - started


def _round_trip(layout: Path, address: str, creds: list[str], out: Path) -> tuple[float, float]:
    dest = f"docker://{address}/bench/app:v1"
    push = _skopeo("copy", "--preserve-digests", *[f"--dest-{c}" for c in creds], "--dest-tls-verify=false",
                   f"oci:{layout}:v1", dest)  # fmt: skip
    pull = _skopeo("copy", *[f"--src-{c}" for c in creds], "--src-tls-verify=false", dest, f"oci:{out}:v1")
    return push, pull


@contextmanager
def _docker_registry(root: Path) -> Iterator[str]:
    port = free_port()
    root.mkdir(parents=True, exist_ok=True)
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {root / 'data'}\nhttp:\n  addr: 127.0.0.1:{port}\n"
    )
    process = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        for _ in range(100):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/v2/")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=15)


def _servers(cfg: Config, rep: Report, tmp: Path) -> None:
    if shutil.which("skopeo") is None:
        raise Skip("skopeo is not installed (make deps)")
    from ecrcrypt.ecr.authorization import get_authorization_token
    from ecrcrypt.ecr.registry import Registry

    size = 32 * MiB if cfg.quick else 256 * MiB
    layout = tmp / "layout"
    build_oci_layout(layout, [layer_tar_gz(size, "big")])
    mib = size / MiB
    for etype in ("AES256", "KMS"):
        directory = tmp / f"registry-{etype}"
        with Registry.create(directory) as reg:
            config = {"encryptionType": etype}
            if etype == "KMS":
                config["kmsKey"] = str(reg.kms().create_key(description="bench").arn)
            reg.create_repository("bench/app", encryption_configuration=config)
            password = get_authorization_token(reg).password
        with running_server(directory) as server:
            assert request(server, "GET", "/v2/").status == 401
            push, pull = _round_trip(layout, server.address, [f"creds=AWS:{password}"], tmp / f"out-{etype}")
        key = etype.lower()
        rep.add(f"server_{key}_push_mibs", f"skopeo push through ecrcrypt serve ({etype})", mib / push, "MiB/s")
        rep.add(f"server_{key}_pull_mibs", f"skopeo pull through ecrcrypt serve ({etype})", mib / pull, "MiB/s")
    if shutil.which("docker-registry") is None:
        rep.skip(
            "server-docker-registry", "Debian's docker-registry is not installed (apt-get install docker-registry)"
        )
        return
    with _docker_registry(tmp / "distribution") as address:
        push, pull = _round_trip(layout, address, [], tmp / "out-distribution")
    rep.add("distribution_push_mibs", "skopeo push to docker-registry (unencrypted)", mib / push, "MiB/s")
    rep.add("distribution_pull_mibs", "skopeo pull from docker-registry (unencrypted)", mib / pull, "MiB/s")
    _ratio(rep, "server_push_vs_distribution", "ecrcrypt serve (KMS) push / docker-registry push",
              "server_kms_push_mibs", "distribution_push_mibs")  # fmt: skip
    _ratio(rep, "server_pull_vs_distribution", "ecrcrypt serve (KMS) pull / docker-registry pull",
              "server_kms_pull_mibs", "distribution_pull_mibs")  # fmt: skip


def _rewrap(cfg: Config, rep: Report, tmp: Path, *, s3: bool = False) -> None:
    """Full re-encryption against re-wrapping, KMS key to KMS key; on S3 (moto) the body is copied
    server-side, on a filesystem it is still written again."""
    from ecrcrypt.digest import Digest
    from ecrcrypt.ecr.migration import migrate
    from ecrcrypt.ecr.registry import Registry

    total = 128 * MiB if cfg.quick else GiB
    with contextlib.ExitStack() as stack:
        store = None
        if s3:
            from benchmarks import _moto
            from ecrcrypt.store.s3 import S3BlobStore

            client = _moto.client("s3", stack.enter_context(_moto.moto_server()))
            client.create_bucket(Bucket="bench-rewrap")
            client.meta.events.register("request-created.s3", _count_request)
            client.meta.events.register("after-call.s3", _count_response)
            store = S3BlobStore(client, "bench-rewrap")
        reg = stack.enter_context(Registry.create(tmp / ("migrate-s3" if s3 else "migrate"), store=store))
        keys = [str(reg.kms().create_key(description=n).arn) for n in ("src", "full", "rewrap")]
        for name, key in zip(("src", "full", "rewrap"), keys, strict=True):
            reg.create_repository(f"m/{name}", encryption_configuration={"encryptionType": "KMS", "kmsKey": key})
        source = reg.repository("m/src")
        chunk = os.urandom(128 * MiB)
        for i in range(total // (128 * MiB)):
            data = bytes([i]) + chunk[1:]
            source.push_layer(data, digest=Digest.of(data))
        del chunk
        _MOVED[0] = 0
        started = time.perf_counter()
        migrate(source, reg.repository("m/full"))
        full = time.perf_counter() - started
        full_moved, _MOVED[0] = _MOVED[0], 0
        started = time.perf_counter()
        report = migrate(source, reg.repository("m/rewrap"), rewrap=True)
        rewrap = time.perf_counter() - started
        rewrap_moved = _MOVED[0]
        assert report.layers_rewrapped == report.layers_copied
    gib = total / GiB
    where = " (S3 on moto)" if s3 else ""
    key = "migrate_s3" if s3 else "migrate"
    note = "body copied by S3 (UploadPartCopy)" if s3 else "filesystem: body bytes still written again"
    rep.add(f"{key}_full_s", f"migrate, full re-encryption, {gib:g} GiB{where}", full, "s")
    rep.add(f"{key}_rewrap_s", f"migrate(rewrap=True), {gib:g} GiB{where}", rewrap, "s", note)
    _ratio(rep, f"{key}_rewrap_ratio", f"rewrap / full re-encryption{where}", f"{key}_rewrap_s", f"{key}_full_s")
    if s3:
        # moto serves a ranged read or a part copy by handling the whole object, so its timings say little
        # about S3; what the client sends and receives does.
        rep.add(
            "migrate_s3_full_client_mib", "bytes through the client, full re-encryption (S3)", full_moved / MiB, "MiB"
        )
        rep.add("migrate_s3_rewrap_client_mib", "bytes through the client, rewrap (S3)", rewrap_moved / MiB, "MiB")
        _ratio(rep, "migrate_s3_client_ratio", "rewrap / full, bytes through the client (S3)",
                  "migrate_s3_rewrap_client_mib", "migrate_s3_full_client_mib")  # fmt: skip


#: bytes the benchmark's S3 client sent and received (request bodies, response Content-Length)
_MOVED = [0]


def _count_request(request: Any, **_: Any) -> None:
    body = request.body
    if isinstance(body, bytes | bytearray):
        _MOVED[0] += len(body)
    elif body is not None and hasattr(body, "seek") and hasattr(body, "tell"):
        here = body.tell()
        _MOVED[0] += body.seek(0, 2) - here
        body.seek(here)


def _count_response(http_response: Any, model: Any, **_: Any) -> None:
    if model.name != "HeadObject":  # a HEAD's Content-Length is the object's, with no body
        _MOVED[0] += int(http_response.headers.get("content-length", 0) or 0)


def run(cfg: Config, rep: Report) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="ecrcrypt-bench-server-"))
    try:
        _servers(cfg, rep, tmp)
        _rewrap(cfg, rep, tmp)
        _rewrap(cfg, rep, tmp, s3=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
