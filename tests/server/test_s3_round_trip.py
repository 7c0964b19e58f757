"""The skopeo round trip with the blobs in S3 (a moto server on 127.0.0.1), metadata and KMS local."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from ecrcrypt.ecr.authorization import get_authorization_token
from ecrcrypt.ecr.registry import Registry
from tests.server.support import build_oci_layout, layer_tar_gz, running_server, skopeo, skopeo_round_trip

pytestmark = [
    pytest.mark.moto,
    pytest.mark.slow,
    pytest.mark.skipif(skopeo() is None, reason="skopeo is not installed (make deps installs it from Debian)"),
]


def test_push_and_pull_with_blobs_in_s3(tmp_path: Path, s3_client: Any, s3_bucket: str, moto_reset: str) -> None:
    directory = tmp_path / "registry"
    with Registry.create(directory) as reg:
        reg.create_repository("team/app")
        password = get_authorization_token(reg).password
    layers = [layer_tar_gz(2000, "small"), layer_tar_gz(12 * 1024 * 1024, "multipart")]
    manifest = build_oci_layout(tmp_path / "layout", layers)
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1"}  # fmt: skip
    env.pop("AWS_PROFILE", None)
    with running_server(directory, "--s3-bucket", s3_bucket, "--s3-endpoint-url", moto_reset, env=env) as server:
        skopeo_round_trip(tmp_path / "layout", server.address, password, tmp_path / "back")
    for name in os.listdir(tmp_path / "layout" / "blobs" / "sha256"):
        original = (tmp_path / "layout" / "blobs" / "sha256" / name).read_bytes()
        assert (tmp_path / "back" / "blobs" / "sha256" / name).read_bytes() == original
    keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket=s3_bucket).get("Contents", [])]
    assert len(keys) == 4  # two layers, the config, the manifest: no upload part is left behind
    samples = [x[len(x) // 2 : len(x) // 2 + 48] for x in layers] + [manifest[:48]]
    for key in keys:
        data = s3_client.get_object(Bucket=s3_bucket, Key=key)["Body"].read()
        assert data[:3] == b"\x02\x04\x78", key
        assert not any(s in data for s in samples), key
    assert not (directory / "blobs").exists() or not any(p.is_file() for p in (directory / "blobs").rglob("*"))
