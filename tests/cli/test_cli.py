"""The ``ecrcrypt`` console script, through click's CliRunner."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from click.testing import CliRunner

from ecrcrypt.cli.commands import main


def _run(runner: CliRunner, root: Path, *args: str, ok: bool = True) -> str:
    result = runner.invoke(main, ["--dir", str(root), *args], catch_exceptions=False)
    assert (result.exit_code == 0) is ok, result.output
    return result.output


def test_cli_story(tmp_path: Path) -> None:
    runner = CliRunner()
    root = tmp_path / "reg"
    assert "RegistryStateException: there is no registry" in _run(runner, root, "describe-repositories", ok=False)
    assert json.loads(_run(runner, root, "init"))["registryId"] == "111122223333"
    key = json.loads(_run(runner, root, "create-key", "--alias", "alias/cli"))["KeyMetadata"]
    created = json.loads(
        _run(runner, root, "create-repository", "cli/app", "--encryption-type", "KMS", "--kms-key", "alias/cli")
    )["repository"]
    assert created["encryptionConfiguration"] == {"encryptionType": "KMS", "kmsKey": key["Arn"]}
    _run(runner, root, "create-repository", "cli/plain")
    names = [r["repositoryName"] for r in json.loads(_run(runner, root, "describe-repositories"))["repositories"]]
    assert names == ["cli/app", "cli/plain"]

    payload = bytes(range(256)) * 5000
    src = tmp_path / "layer.tar"
    src.write_bytes(payload)
    pushed = json.loads(_run(runner, root, "push-layer", "cli/app", str(src)))
    assert pushed["layerDigest"] == "sha256:" + hashlib.sha256(payload).hexdigest()
    assert pushed["size"] == len(payload) and not pushed["alreadyExisted"]
    out = tmp_path / "out.tar"
    _run(runner, root, "pull-layer", "cli/app", pushed["layerDigest"], "-o", str(out))
    assert out.read_bytes() == payload

    grants = json.loads(_run(runner, root, "list-grants", "cli/app"))["Grants"]
    assert len(grants) == 2
    # ECR's constraint plus the repository's uid (one value, the same in both grants).
    subsets = [g["Constraints"]["EncryptionContextSubset"] for g in grants]
    assert all(
        s["aws:ecr:arn"] == created["repositoryArn"] and set(s) == {"aws:ecr:arn", "ecrcrypt:repository-uid"}
        for s in subsets
    )
    assert subsets[0] == subsets[1]

    events = json.loads(_run(runner, root, "audit", "--source", "ecr.amazonaws.com", "--repository", "cli/app"))
    assert {e["eventName"] for e in events["Events"]} == {
        "CreateRepository",
        "CompleteLayerUpload",
        "GetDownloadUrlForLayer",
    }

    err = _run(runner, root, "delete-repository", "cli/app", ok=False)
    assert "RepositoryNotEmptyException" in err
    _run(runner, root, "delete-repository", "cli/app", "--force")
    assert json.loads(_run(runner, root, "list-grants", "cli/plain"))["Grants"] == []
    missing = _run(runner, root, "describe-repositories", "cli/app", ok=False)
    assert "RepositoryNotFoundException" in missing
    bad = _run(runner, root, "create-repository", "Bad_Name", ok=False)
    assert "InvalidParameterException" in bad
