"""The library logs through ``logging`` (``ecrcrypt.*``, NullHandler) and never logs key material."""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import pytest

import ecrcrypt
from ecrcrypt import Digest, Registry
from tests.cli.support import ok, run


def test_the_package_logger_has_a_null_handler() -> None:
    handlers = logging.getLogger("ecrcrypt").handlers
    assert any(isinstance(h, logging.NullHandler) for h in handlers)
    assert ecrcrypt.__name__ == "ecrcrypt"


def test_registry_operations_are_logged_without_key_material(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="ecrcrypt")
    with Registry.create(tmp_path / "reg") as registry:
        key = registry.kms().create_key()
        registry.create_repository("team/app", encryption_configuration={"encryptionType": "KMS", "kmsKey": key.arn})
        repo = registry.repository("team/app")
        repo.push_layer(b"secret layer", digest=Digest.of(b"secret layer"))
        data_key = registry.kms().generate_data_key(key_id=key.arn, key_spec="AES_256")
        registry.delete_repository("team/app", force=True)
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("ecrcrypt")]
    assert any("created repository arn:aws:ecr:" in m and key.arn in m for m in messages)
    assert any("deleted repository team/app" in m for m in messages)
    service_key = (tmp_path / "reg" / "service-key").read_bytes()
    secrets = [service_key, data_key.plaintext, b"secret layer"]
    text = "\n".join(messages)
    for secret in secrets:
        for form in (secret.hex(), base64.b64encode(secret).decode(), repr(secret)):
            assert form not in text


def test_the_cli_debug_flag_prints_the_library_log(tmp_path: Path) -> None:
    ok("--dir", str(tmp_path / "reg"), "init")
    result = run("ecr", "create-repository", "--repository-name", "app", "--debug", registry=tmp_path / "reg")
    assert result.status == 0 and "ecrcrypt.ecr.registry INFO created repository" in result.stderr
