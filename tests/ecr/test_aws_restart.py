"""The durable AWS set-up of docs/aws.md survives a process restart (issue 10), on a moto server.

The Python of docs/aws.md is run as written, in child processes: the only changes are
the environment (the moto endpoint through ``AWS_ENDPOINT_URL``, dummy credentials, the
database path through ``ECRCRYPT_REGISTRY_DB``, which the document reads). One process
sets the registry up, creates an AES256 and a KMS repository and pushes to both
(header-first and body-first), then ends without closing anything; a second process
opens the registry and pulls every layer back, digests verified, and deletes the KMS
repository, retiring the grants recorded before the restart; a third, whose database
went missing, is refused instead of starting empty.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.moto_server import make_client

pytestmark = pytest.mark.moto

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "aws.md"
REGION = "eu-west-1"  # the document's Region
BUCKET = "my-registry-bucket"  # the document's bucket
SERVICE_KEY_ALIAS = "alias/ecrcrypt-service-key"  # the document's wrapping key

_CHILD = textwrap.dedent(
    """
    import json, os, sys
    exec(compile(open(sys.argv[1]).read(), "docs/aws.md", "exec"))  # the document's Python, as written
    from ecrcrypt import Digest, build_manifest
    from ecrcrypt.errors import RegistryStateError

    phase, kms_key = sys.argv[2], sys.argv[3]
    small, big = bytes(range(256)) * 300, os.urandom(3 << 20)
    if phase == "push":
        set_up_registry()
        set_up_registry()  # idempotent
        registry = open_registry()
        out = {}
        for name, config in (("restart/aes", None), ("restart/kms", {"encryptionType": "KMS", "kmsKey": kms_key})):
            registry.create_repository(name, encryption_configuration=config)
            repo = registry.repository(name)
            first = repo.push_layer(small, digest=Digest.of(small))
            with repo.start_upload() as upload:
                for i in range(0, len(big), 1 << 20):
                    upload.write(big[i : i + (1 << 20)])
                second = upload.complete(Digest.of(big))
            repo.put_image(build_manifest([first, second]), tag="v1")
            out[name] = [str(Digest.of(small)), str(Digest.of(big))]
        out["big"] = big.hex()
        print(json.dumps(out), flush=True)
        os._exit(0)  # no close, no checkpoint: what a killed server leaves
    if phase == "pull":
        expected = json.loads(sys.stdin.read())
        big = bytes.fromhex(expected.pop("big"))
        registry = open_registry()
        out = {"repositories": [d.repository_name for d in registry.describe_repositories()]}
        for name, digests in expected.items():
            repo = registry.repository(name)
            image = repo.get_image(tag="v1")
            assert [str(d) for d in image.layer_digests] == digests
            assert repo.read_layer(Digest.parse(digests[0])) == small
            assert repo.read_layer(Digest.parse(digests[1])) == big
            assert repo.read_layer_range(Digest.parse(digests[1]), 1 << 20, 100) == big[1 << 20 : (1 << 20) + 100]
            out[name] = {"grants": len(registry.list_repository_grants(name))}
        registry.delete_repository("restart/kms", force=True)  # retires the grants recorded before the restart
        out["after_delete"] = [d.repository_name for d in registry.describe_repositories()]
        print(json.dumps(out), flush=True)
    if phase == "lost":
        try:
            open_registry()
        except RegistryStateError as exc:
            print(json.dumps({"code": exc.code, "path": exc.path, "message": str(exc)}), flush=True)
    """
)


def _doc_python() -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert any("def open_registry" in b for b in blocks), "docs/aws.md lost its restart-proof set-up"
    return "\n".join(blocks)


def _run(tmp_path: Path, endpoint: str, phase: str, kms_key: str, stdin: str = "") -> dict[str, Any]:
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",  # not a secret: moto accepts any
        "ECRCRYPT_REGISTRY_DB": str(tmp_path / "state" / "registry.sqlite3"),
        "PYTHONPATH": str(ROOT),
    }
    env.pop("AWS_PROFILE", None)
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(tmp_path / "aws_doc.py"), phase, kms_key],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_a_restart_between_push_and_pull_loses_nothing(moto_reset: str, boto3_session: Any, tmp_path: Path) -> None:
    import boto3

    session = boto3.session.Session(region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
    kms, s3 = make_client(session, "kms", moto_reset), make_client(session, "s3", moto_reset)
    wrapping = kms.create_key(Description="wraps the registry's AES256 key")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=SERVICE_KEY_ALIAS, TargetKeyId=wrapping)
    layers_key = kms.create_key(Description="layers")["KeyMetadata"]["Arn"]
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    (tmp_path / "aws_doc.py").write_text(_doc_python())

    pushed = _run(tmp_path, moto_reset, "push", layers_key)

    # The server keeps no key file: the AES256 key is in the database, wrapped under KMS.
    state = tmp_path / "state"
    assert {p.name for p in state.iterdir()} <= {"registry.sqlite3", "registry.sqlite3-wal", "registry.sqlite3-shm"}
    conn = sqlite3.connect(state / "registry.sqlite3")
    records = dict(conn.execute("SELECT k, v FROM registry").fetchall())
    conn.close()
    assert records["service_key.kms_key"].endswith(wrapping) and records["service_key.wrapped"]

    pulled = _run(tmp_path, moto_reset, "pull", layers_key, stdin=json.dumps(pushed))
    assert pulled["repositories"] == ["restart/aes", "restart/kms"]
    assert pulled["restart/kms"] == {"grants": 2} and pulled["restart/aes"] == {"grants": 0}
    assert pulled["after_delete"] == ["restart/aes"]
    assert kms.list_grants(KeyId=layers_key)["Grants"] == []  # retired by the second process

    for name in os.listdir(state):
        os.unlink(state / name)
    lost = _run(tmp_path, moto_reset, "lost", layers_key)
    assert lost["code"] == "RegistryStateException"
    assert lost["path"] == str(state / "registry.sqlite3") and "is missing" in lost["message"]
    assert os.listdir(state) == []  # refused, not recreated empty
