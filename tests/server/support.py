"""Builders for the server tests: a registry server process, OCI layouts, HTTP requests (no tests here)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.client
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import attrs

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@attrs.frozen
class Server:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


def ecrcrypt_command() -> list[str]:
    return [sys.executable, "-c", "from ecrcrypt.cli import main; main()"]


def cli(directory: Path, *args: str, env: dict[str, str] | None = None) -> str:
    out = subprocess.run(
        [*ecrcrypt_command(), "--dir", str(directory), *args], capture_output=True, timeout=60, env=env, check=False
    )
    assert out.returncode == 0, out.stderr.decode()
    return out.stdout.decode()


@contextmanager
def running_server(directory: Path, *extra: str, env: dict[str, str] | None = None) -> Iterator[Server]:
    port = free_port()
    process = subprocess.Popen(
        [*ecrcrypt_command(), "--dir", str(directory), "serve", "--host", "127.0.0.1", "--port", str(port), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if request(Server(port, process), "GET", "/v2/").status == 401:
                    break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                output = process.stdout.read().decode() if process.stdout else ""
                raise RuntimeError(f"the server did not start: {output}")
            time.sleep(0.1)
        yield Server(port, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@attrs.frozen
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        return json.loads(self.body)


def request(
    server: Server,
    method: str,
    path: str,
    *,
    body: bytes | None = None,
    password: str | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    try:
        sent = dict(headers or {})
        if password is not None:
            sent["Authorization"] = "Basic " + base64.b64encode(f"AWS:{password}".encode()).decode()
        conn.request(method, path, body=body, headers=sent)
        resp = conn.getresponse()
        data = resp.read()
        return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
    finally:
        conn.close()


def _blob(layout: Path, data: bytes) -> dict[str, object]:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def layer_tar_gz(size: int, name: str) -> bytes:
    """A gzip'd tar holding one file of ``size`` random bytes (level 0: fast, still real gzip, so
    that clients keep it as is instead of compressing it)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = size
        tar.addfile(info, io.BytesIO(os.urandom(size)))
    return gzip.compress(raw.getvalue(), compresslevel=0, mtime=0)


def build_oci_layout(layout: Path, layers: list[bytes], *, tag: str = "v1") -> bytes:
    """An OCI image layout directory with one image of ``layers``; returns the manifest's bytes."""
    (layout / "blobs" / "sha256").mkdir(parents=True)
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    diff_ids = [f"sha256:{hashlib.sha256(gzip.decompress(x)).hexdigest()}" for x in layers]
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **_blob(layout, config)},
            "layers": [{"mediaType": LAYER_GZIP, **_blob(layout, x)} for x in layers],
        },
        indent=2,
    ).encode()
    ref = {
        "mediaType": OCI_MANIFEST,
        **_blob(layout, manifest),
        "annotations": {"org.opencontainers.image.ref.name": tag},
    }
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [ref]}))
    return manifest


def skopeo() -> str | None:
    return shutil.which("skopeo")


def skopeo_round_trip(layout: Path, address: str, password: str, back: Path, *, reference: str = "team/app:v1") -> None:
    """``skopeo copy`` the OCI layout's ``v1`` to the server and back into ``back``, as user AWS."""
    dest = f"docker://{address}/{reference}"
    for args in (
        ["--preserve-digests", "--dest-creds", f"AWS:{password}", "--dest-tls-verify=false", f"oci:{layout}:v1", dest],
        ["--src-creds", f"AWS:{password}", "--src-tls-verify=false", dest, f"oci:{back}:v1"],
    ):
        done = subprocess.run(["skopeo", "copy", *args], capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr
