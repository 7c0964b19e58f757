"""The registry server with a real client, next to an unencrypted registry; re-keying by re-wrapping.

* skopeo pushes and pulls one image with a 256 MiB layer (32 MiB in quick mode) to ``ecrcrypt serve``
  (AES256 and KMS repositories) and to Debian's ``docker-registry`` (CNCF distribution, no
  encryption) on 127.0.0.1, same machine, same client;
* ``migrate(rewrap=True)`` against the full re-encrypting ``migrate`` on a 1 GiB repository (128 MiB
  in quick mode), KMS key to KMS key.
"""

from __future__ import annotations

import http.client
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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


def _rewrap(cfg: Config, rep: Report, tmp: Path) -> None:
    from ecrcrypt.digest import Digest
    from ecrcrypt.ecr.migration import migrate
    from ecrcrypt.ecr.registry import Registry

    total = 128 * MiB if cfg.quick else GiB
    with Registry.create(tmp / "migrate") as reg:
        keys = [str(reg.kms().create_key(description=n).arn) for n in ("src", "full", "rewrap")]
        for name, key in zip(("src", "full", "rewrap"), keys, strict=True):
            reg.create_repository(f"m/{name}", encryption_configuration={"encryptionType": "KMS", "kmsKey": key})
        source = reg.repository("m/src")
        chunk = os.urandom(128 * MiB)
        for i in range(total // (128 * MiB)):
            data = bytes([i]) + chunk[1:]
            source.push_layer(data, digest=Digest.of(data))
        del chunk
        started = time.perf_counter()
        migrate(source, reg.repository("m/full"))
        full = time.perf_counter() - started
        started = time.perf_counter()
        report = migrate(source, reg.repository("m/rewrap"), rewrap=True)
        rewrap = time.perf_counter() - started
        assert report.layers_rewrapped == report.layers_copied
    gib = total / GiB
    rep.add("migrate_full_s", f"migrate, full re-encryption, {gib:g} GiB", full, "s")
    rep.add(
        "migrate_rewrap_s",
        f"migrate(rewrap=True), {gib:g} GiB",
        rewrap,
        "s",
        "filesystem store: body bytes still copied",
    )
    _ratio(rep, "migrate_rewrap_ratio", "rewrap / full re-encryption", "migrate_rewrap_s", "migrate_full_s")


def run(cfg: Config, rep: Report) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="ecrcrypt-bench-server-"))
    try:
        _servers(cfg, rep, tmp)
        _rewrap(cfg, rep, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
