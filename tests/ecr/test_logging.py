"""The library logs through ``logging`` (``ecrcrypt.*``, NullHandler) and never logs key material."""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import pytest

import ecrcrypt
from ecrcrypt import Digest, Registry
from ecrcrypt.errors import EcrCryptError
from tests.cli.support import ok, run
from tests.ecr.support import kms_config, layer, make_env
from tests.ecr.test_recovery import _FlakyStore  # a store whose deletes fail on demand


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


def _messages(caplog: pytest.LogCaptureFixture, logger: str) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name.startswith(logger)]


def test_kms_calls_are_logged_by_name_caller_and_key_never_their_data(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="ecrcrypt")
    env = make_env()
    kms = env.registry.kms()
    key = kms.create_key(description="logged")
    data_key = kms.generate_data_key(key_id=key.arn, key_spec="AES_256", encryption_context={"k": "v"})
    plain = kms.decrypt(ciphertext_blob=data_key.ciphertext_blob, encryption_context={"k": "v"}).plaintext
    sealed = kms.encrypt(key_id=key.arn, plaintext=b"top secret text").ciphertext_blob
    kms.disable_key(key_id=key.arn)
    with pytest.raises(EcrCryptError):
        kms.encrypt(key_id=key.arn, plaintext=b"top secret text")
    logged = _messages(caplog, "ecrcrypt.kms")
    assert (logging.INFO, f"CreateKey by {env.registry.caller} on {[key.arn]}: ok") in logged
    assert (logging.INFO, f"DisableKey by {env.registry.caller} on {[key.arn]}: ok") in logged
    assert any(
        lvl == logging.INFO and m.startswith("Encrypt by") and m.endswith("DisabledException") for lvl, m in logged
    )
    assert any(lvl == logging.DEBUG and m.startswith("GenerateDataKey by") for lvl, m in logged)
    text = "\n".join(m for _, m in logged)
    for secret in (data_key.plaintext, plain, data_key.ciphertext_blob, sealed, b"top secret text"):
        for form in (secret.hex(), base64.b64encode(secret).decode(), repr(secret), secret.decode("latin-1")):
            assert form not in text


def test_recovery_and_garbage_collection_say_what_they_did(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ecrcrypt")
    store = _FlakyStore()
    env = make_env(store=store)
    env.registry.create_repository("team/app", encryption_configuration=kms_config(env.customer_key()))
    data, digest = layer(2000)
    env.registry.repository("team/app").push_layer(data, digest=digest)
    store.failing = True
    with pytest.raises(OSError):
        env.registry.delete_repository("team/app", force=True)
    store.failing = False
    caplog.clear()
    report = env.registry.recover()
    (warning,) = [m for lvl, m in _messages(caplog, "ecrcrypt.ecr.recovery") if lvl == logging.WARNING]
    assert "deletions finished ['team/app']" in warning and all(g in warning for g in report.grants_retired)

    stranger = f"{env.registry.account}/{'e' * 32}/layers/sha256:{'0' * 64}.x"
    with store.open_write(stranger) as w:
        w.write(b"z")
        w.commit()
    caplog.clear()
    env.registry.collect_garbage(unknown_repositories=True)
    assert _messages(caplog, "ecrcrypt.ecr.gc") == [
        (logging.INFO, f"garbage collection: deleted 1 unreferenced blobs: {[stranger]}")
    ]
    caplog.clear()
    assert (
        env.registry.recover().clean and _messages(caplog, "ecrcrypt.ecr.recovery") == []
    )  # nothing done, nothing said
