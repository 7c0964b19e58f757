"""How the command line fails: exit statuses 252 / 253 / 254 and the aws CLI's messages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.support import ok, run


@pytest.fixture
def reg(tmp_path: Path) -> Path:
    ok("--dir", str(tmp_path / "reg"), "init")
    return tmp_path / "reg"


def test_a_missing_registry_is_an_error_and_is_not_created(tmp_path: Path) -> None:
    typo = tmp_path / "regsitry"
    result = run("ecr", "describe-repositories", registry=typo)
    assert result.status == 253
    assert "does not exist" in result.stderr and f"ecrcrypt --dir {typo} init" in result.stderr
    assert result.stdout == ""
    assert not typo.exists()


def test_a_directory_that_is_no_registry_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    result = run("kms", "list-keys", "--dir", str(tmp_path))
    assert result.status == 253
    assert "is not an ecrcrypt registry" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_init_is_idempotent(tmp_path: Path) -> None:
    reg = tmp_path / "reg"
    assert ok("--dir", str(reg), "init")["registry"]["created"] is True
    key = ok("kms", "create-key", "--query", "KeyMetadata.KeyId", registry=reg)
    assert ok("--dir", str(reg), "init")["registry"]["created"] is False
    assert ok("kms", "list-keys", "--query", "Keys[].KeyId", registry=reg) == [key]


def test_usage_errors_exit_252(reg: Path) -> None:
    missing = run("kms", "describe-key", registry=reg)
    assert missing.status == 252
    assert missing.stderr.startswith("usage: ecrcrypt")
    assert "ecrcrypt: error: Missing option '--key-id'" in missing.stderr
    unknown = run("ecr", "create-repository", "--repository-name", "a", "--image-scanning", "x", registry=reg)
    assert unknown.status == 252 and "No such option '--image-scanning'" in unknown.stderr
    bad_query = run("kms", "list-keys", "--query", "Keys[", registry=reg)
    assert bad_query.status == 252 and "Bad value for --query" in bad_query.stderr
    bad_shorthand = run(
        "ecr",
        "create-repository",
        "--repository-name",
        "a",
        "--encryption-configuration",
        "encryptionType",
        registry=reg,
    )
    assert (
        bad_shorthand.status == 252 and "Error parsing parameter '--encryption-configuration'" in bad_shorthand.stderr
    )
    no_file = run("kms", "decrypt", "--ciphertext-blob", "fileb:///nonexistent/blob", registry=reg)
    assert no_file.status == 252 and "Unable to load paramfile fileb:///nonexistent/blob" in no_file.stderr
    assert run("no-such-command", registry=reg).status == 252


def test_service_errors_exit_254_in_the_aws_cli_form(reg: Path) -> None:
    result = run("kms", "describe-key", "--key-id", "alias/nope", registry=reg)
    assert result.status == 254
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("An error occurred (NotFoundException) when calling the DescribeKey operation: ")
    assert "alias/nope" in lines[0]

    bad_name = run("ecr", "create-repository", "--repository-name", "Bad_Name", registry=reg)
    assert bad_name.status == 254
    assert "(InvalidParameterException) when calling the CreateRepository operation" in bad_name.stderr

    missing = run("ecr", "describe-repositories", "--repository-names", "nope", registry=reg)
    assert "(RepositoryNotFoundException) when calling the DescribeRepositories operation" in missing.stderr
    assert "'nope'" in missing.stderr


def test_help_and_version() -> None:
    version = run("--version")
    assert (version.status, version.stdout.strip()) == (0, "ecrcrypt 0.1.0")
    helped = run("kms", "--help")
    assert helped.status == 0
    for command in ("create-key", "list-grants", "retire-grant", "revoke-grant", "list-retirable-grants"):
        assert command in helped.stdout


def test_without_the_cli_extra_the_script_prints_an_install_hint() -> None:
    # The console script exists with the core package; without click it says what to install.
    code = "import sys; sys.modules['click'] = None; from ecrcrypt.cli import main; main()"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 255
    assert proc.stderr.strip() == "ecrcrypt: the command line needs click: pip install 'ecrcrypt[cli]'"


def test_other_failures_exit_255_in_one_line(reg: Path, tmp_path: Path) -> None:
    ok("ecr", "create-repository", "--repository-name", "app", registry=reg)
    layer = tmp_path / "layer"
    layer.write_bytes(b"x" * 1000)
    digest = ok("ecr", "push-layer", "--repository-name", "app", str(layer), "--query", "layerDigest", registry=reg)
    # A destination that cannot take the bytes: neither the service's error nor the user's.
    result = run("ecr", "pull-layer", "--repository-name", "app", "--layer-digest", digest, "/dev/full", registry=reg)
    assert result.status == 255
    assert result.stderr.startswith("ecrcrypt: error: OSError") and "Traceback" not in result.stderr


def test_a_damaged_registry_is_refused_naming_the_file(reg: Path) -> None:
    # Never recreated in place (a new key would orphan every object): exit 253, the file named.
    (reg / "registry.sqlite3").write_bytes(b"not a database" * 100)
    result = run("ecr", "describe-repositories", registry=reg)
    assert result.status == 253
    assert "registry.sqlite3" in result.stderr and "restore it from backup" in result.stderr
