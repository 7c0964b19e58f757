"""``ecrcrypt serve --s3-bucket`` and the command line on one registry see each other's blobs (moto's S3).

What the command line pushes, the server serves, and what a client pushes through the server, the
command line pulls: both open the registry on the bucket its metadata records, through one choice
(``ecr.registry_blobs``), and nothing lands in the directory's ``blobs/``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.server.support import cli, ecrcrypt_command, request, running_server

pytestmark = pytest.mark.moto


def _d(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_the_server_and_the_command_line_share_the_bucket(
    moto_reset: str, s3_client: Any, s3_bucket: str, tmp_path: Path
) -> None:
    directory = tmp_path / "registry"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("ECRCRYPT_", "AWS_"))},
        "AWS_ACCESS_KEY_ID": "testing",  # not secrets: moto accepts any
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    s3 = ("--s3-bucket", s3_bucket, "--s3-endpoint-url", moto_reset)
    cli(directory, *s3, "init", env=env)
    cli(directory, *s3, "ecr", "create-repository", "--repository-name", "team/app", env=env)
    password = cli(directory, *s3, "ecr", "get-login-password", env=env).strip()
    by_cli, by_server = os.urandom(300_000), os.urandom(70_000)
    (tmp_path / "layer").write_bytes(by_cli)
    cli(directory, *s3, "ecr", "push-layer", "--repository-name", "team/app", str(tmp_path / "layer"), env=env)

    with running_server(directory, *s3, env=env) as server:  # `serve --s3-bucket B --s3-endpoint-url U`
        got = request(server, "GET", f"/v2/team/app/blobs/{_d(by_cli)}", password=password)
        assert got.status == 200 and got.body == by_cli
        put = request(server, "POST", f"/v2/team/app/blobs/uploads/?digest={_d(by_server)}", body=by_server,
                      password=password)  # fmt: skip
        assert put.status == 201, put.body

    pulled = subprocess.run(
        [*ecrcrypt_command(), "--dir", str(directory), *s3, "ecr", "pull-layer", "--repository-name", "team/app",
         "--layer-digest", _d(by_server), "-", "--no-progress"],
        capture_output=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert pulled.returncode == 0, pulled.stderr.decode()
    assert pulled.stdout == by_server
    assert len(s3_client.list_objects_v2(Bucket=s3_bucket)["Contents"]) == 2
    assert not any(p.is_file() for p in (directory / "blobs").rglob("*"))
