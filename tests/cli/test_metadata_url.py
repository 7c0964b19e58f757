"""``--metadata-url`` / ``ECRCRYPT_METADATA_URL``: the registry's metadata in PostgreSQL (issue 14).

``init`` makes the metadata, every other command opens it and never makes one; the directory
then holds no registry database and no service-key file (the key is wrapped in the metadata);
the URL's password never appears in any output, message or error.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ecrcrypt.ecr.metadata_url import open_metadata
from ecrcrypt.ecr.service_key import WRAPPED
from ecrcrypt.errors import RegistryStateError
from tests.cli.support import run
from tests.pg_server import PostgresServer

SECRET = "pw-never-shown"


def _with_password(url: str) -> str:
    return url.replace("ecrcrypt@", f"ecrcrypt:{SECRET}@")  # the test server trusts any password


def test_init_creates_the_metadata_and_every_other_command_opens_it(postgres_url: str, tmp_path: Path) -> None:
    url, directory = _with_password(postgres_url), tmp_path / "registry"
    init = run("--metadata-url", url, "init", registry=directory)
    made = init.json()["registry"]
    assert made["created"] and made["metadata"].startswith("postgresql://ecrcrypt@127.0.0.1:")
    assert sorted(p.name for p in directory.iterdir()) == [
        "blobs",
        "kms.sqlite3",
        "kms.sqlite3.rootkey",
        "manifest.json",
    ]
    with open_metadata(postgres_url) as metadata:
        assert metadata.recorded(WRAPPED) is not None  # the service key lives there, wrapped
    # the option after the command, and the environment variable, name the same database
    created = run(
        "ecr", "create-repository", "--repository-name", "team/app", "--metadata-url", url, registry=directory
    )
    assert created.json()["repository"]["repositoryName"] == "team/app"
    env_run = run("ecr", "describe-repositories", registry=directory, env={"ECRCRYPT_METADATA_URL": url})
    assert [r["repositoryName"] for r in env_run.json()["repositories"]] == ["team/app"]
    again = run("--metadata-url", url, "init", registry=directory)
    assert not again.json()["registry"]["created"]
    for result in (init, created, env_run, again):
        assert SECRET not in result.stdout + result.stderr


def test_without_its_url_or_with_another_database_a_command_is_refused(
    postgres_server: PostgresServer, postgres_url: str, tmp_path: Path
) -> None:
    url, directory = _with_password(postgres_url), tmp_path / "registry"
    run("--metadata-url", url, "init", registry=directory).json()
    missing = run("ecr", "describe-repositories", registry=directory)
    assert missing.status == 253 and "--metadata-url" in missing.stderr
    empty = _with_password(postgres_server.create_database())
    other = run("--metadata-url", empty, "ecr", "describe-repositories", registry=directory)
    assert other.status == 253 and "holds no ecrcrypt registry" in other.stderr
    assert SECRET not in other.stderr + other.stdout
    refused = run("--metadata-url", empty, "ecr", "create-repository", "--repository-name", "x/y", registry=directory)
    assert refused.status == 253
    with pytest.raises(RegistryStateError, match="holds no ecrcrypt registry"):
        open_metadata(empty)  # no command but init made anything there


def test_a_directory_s_own_database_named_by_url_is_the_default(tmp_path: Path) -> None:
    directory = tmp_path / "registry"
    own = f"sqlite:///{directory / 'registry.sqlite3'}"
    run("init", registry=directory).json()
    listed = run("--metadata-url", own, "ecr", "describe-repositories", registry=directory)
    assert json.loads(listed.stdout)["repositories"] == []
