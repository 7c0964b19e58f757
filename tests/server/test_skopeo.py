"""skopeo, a real container client, pushes an OCI image to `ecrcrypt serve` and pulls it back.

Everything is real: the server is the ``ecrcrypt serve`` command (uvicorn) on 127.0.0.1, the client is
Debian's skopeo (``make deps`` installs it), the registry is a directory with the local KMS.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ecrcrypt.ecr.authorization import get_authorization_token
from ecrcrypt.ecr.registry import Registry, find_repository_grants
from tests.server.support import Server, build_oci_layout, layer_tar_gz, request, running_server, skopeo

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(skopeo() is None, reason="skopeo is not installed (make deps installs it from Debian)"),
]

BIG = 64 * 1024 * 1024 + 12345  # one layer of at least 64 MiB, not a multiple of the frame length


def _skopeo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def registry_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("skopeo") / "registry"


@pytest.fixture(scope="module")
def setup(registry_dir: Path) -> tuple[str, str]:
    """A KMS repository (so that its grants can be checked) and a login password."""
    with Registry.create(registry_dir) as reg:
        key = reg.kms().create_key(description="skopeo")
        reg.create_repository("team/app", encryption_configuration={"encryptionType": "KMS", "kmsKey": key.arn})
        return str(key.arn), get_authorization_token(reg).password


@pytest.fixture(scope="module")
def server(registry_dir: Path, setup: tuple[str, str]) -> Iterator[Server]:
    with running_server(registry_dir) as s:
        yield s


def _vm(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field}")


def test_push_and_pull_back_byte_identical_and_stored_encrypted(
    tmp_path: Path, server: Server, registry_dir: Path, setup: tuple[str, str]
) -> None:
    key_arn, password = setup
    layers = [layer_tar_gz(3000, "small"), layer_tar_gz(BIG, "big"), layer_tar_gz(1_500_000, "medium")]
    manifest = build_oci_layout(tmp_path / "layout", layers)
    dest = f"docker://{server.address}/team/app:v1"
    before = _vm(server.process.pid, "VmRSS")
    pushed = _skopeo("copy", "--preserve-digests", "--dest-creds", f"AWS:{password}", "--dest-tls-verify=false",
                     f"oci:{tmp_path / 'layout'}:v1", dest)  # fmt: skip
    assert pushed.returncode == 0, pushed.stderr
    # Uploads stream: the server's peak memory grew by far less than the 64 MiB layer.
    assert _vm(server.process.pid, "VmHWM") - before < 32 * 1024 * 1024

    pulled = _skopeo("copy", "--src-creds", f"AWS:{password}", "--src-tls-verify=false", dest,
                     f"oci:{tmp_path / 'back'}:v1")  # fmt: skip
    assert pulled.returncode == 0, pulled.stderr
    index = json.loads((tmp_path / "back" / "index.json").read_text())
    manifest_digest = index["manifests"][0]["digest"]
    assert manifest_digest == "sha256:" + hashlib.sha256(manifest).hexdigest()
    for name in os.listdir(tmp_path / "layout" / "blobs" / "sha256"):
        original = (tmp_path / "layout" / "blobs" / "sha256" / name).read_bytes()
        assert (tmp_path / "back" / "blobs" / "sha256" / name).read_bytes() == original

    # Every stored object is an ESDK v2 message (version 2, suite 0x0478) holding none of the plaintext.
    stored = [p for p in (registry_dir / "blobs").rglob("*") if p.is_file()]
    assert len(stored) == 5  # 3 layers, the config, the manifest
    # (the manifest's start: its end names digests, which the objects' encryption contexts name too)
    samples = [x[i : i + 48] for x in layers for i in (len(x) // 3, len(x) - 5000)] + [manifest[:48]]
    for path in stored:
        data = path.read_bytes()
        assert data[:3] == b"\x02\x04\x78", path
        assert not [(i, data.find(s)) for i, s in enumerate(samples) if s in data], path

    # The client's other verbs: tags list, inspect (manifest and config), delete (by digest).
    creds = ["--creds", f"AWS:{password}", "--tls-verify=false"]
    tags = _skopeo("list-tags", *creds, f"docker://{server.address}/team/app")
    assert tags.returncode == 0, tags.stderr
    assert json.loads(tags.stdout)["Tags"] == ["v1"]
    inspected = _skopeo("inspect", *creds, dest)
    assert inspected.returncode == 0, inspected.stderr
    assert json.loads(inspected.stdout)["Digest"] == manifest_digest
    deleted = _skopeo("delete", *creds, dest)
    assert deleted.returncode == 0, deleted.stderr
    assert _skopeo("inspect", *creds, dest).returncode != 0

    # Deleting the repository retires both of its grants.
    with Registry.open(registry_dir) as reg:
        arn = reg.repository("team/app").arn
        assert len(find_repository_grants(reg.kms(), key_arn, arn)) == 2
        reg.delete_repository("team/app", force=True)
        assert find_repository_grants(reg.kms(), key_arn, arn) == []


def test_anonymous_and_wrong_credentials_are_refused(tmp_path: Path, server: Server, setup: tuple[str, str]) -> None:
    _, password = setup
    for auth in (None, password + "x"):
        reply = request(server, "GET", "/v2/team/app/tags/list", password=auth)
        assert reply.status == 401
        assert reply.headers["www-authenticate"].startswith('Basic realm="https://')
        assert reply.json() == {"errors": [{"code": "UNAUTHORIZED", "message": reply.json()["errors"][0]["message"],  # type: ignore[index]
                                            "detail": None}]}  # fmt: skip
    build_oci_layout(tmp_path / "layout", [layer_tar_gz(100, "x")])
    anonymous = _skopeo("copy", "--dest-tls-verify=false", f"oci:{tmp_path / 'layout'}:v1",
                        f"docker://{server.address}/team/other:v1")  # fmt: skip
    assert anonymous.returncode != 0
    assert "401" in anonymous.stderr or "unauthorized" in anonymous.stderr.lower()
