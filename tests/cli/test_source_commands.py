"""The source documents' command lines C1-C3 and ``list-keys``, with ``aws`` replaced by ``ecrcrypt``.

C1 (the article): ``create-repository --repository-name my-app --encryption-configuration
encryptionType=KMS,kmsKey=<key ARN>``; C2 (ECR user guide): ``kms list-grants --key-id <id>
--region us-west-2``; C3: ``kms retire-grant --key-id <id> --grant-id <GrantId> --region
us-west-2``. Key ids and the account are the embedded store's; the flags, their order
(``--region`` last) and the output shapes are the documents' / the aws CLI's.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.cli.support import ok, run

KEY_METADATA_MEMBERS = {
    "AWSAccountId",
    "KeyId",
    "Arn",
    "CreationDate",
    "Enabled",
    "Description",
    "KeyUsage",
    "KeyState",
    "Origin",
    "KeyManager",
    "CustomerMasterKeySpec",
    "KeySpec",
    "EncryptionAlgorithms",
    "MultiRegion",
}
ISO_8601 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00")


def test_c1_c2_c3_and_list_keys(tmp_path: Path) -> None:
    reg = tmp_path / "reg"
    assert ok("--dir", str(reg), "init", "--region", "us-west-2")["registry"]["region"] == "us-west-2"
    meta = ok("kms", "create-key", "--description", "ecr images", registry=reg)["KeyMetadata"]
    assert set(meta) == KEY_METADATA_MEMBERS
    assert ISO_8601.fullmatch(meta["CreationDate"])
    assert meta["Arn"] == f"arn:aws:kms:us-west-2:111122223333:key/{meta['KeyId']}"
    assert (meta["KeyState"], meta["Enabled"], meta["KeyManager"]) == ("Enabled", True, "CUSTOMER")

    # ECR-UG troubleshooting: "list keys with the list-keys command".
    # The aws CLI pages through ListKeys and prints the merged list alone (botocore's paginator:
    # result key "Keys"; Truncated / NextMarker are the paging, not the result).
    keys = ok("kms", "list-keys", registry=reg)
    assert keys == {"Keys": [{"KeyId": meta["KeyId"], "KeyArn": meta["Arn"]}]}

    # C1
    repo = ok(
        "ecr",
        "create-repository",
        "--repository-name",
        "my-app",
        "--encryption-configuration",
        f"encryptionType=KMS,kmsKey={meta['Arn']}",
        registry=reg,
    )["repository"]
    assert repo["encryptionConfiguration"] == {"encryptionType": "KMS", "kmsKey": meta["Arn"]}
    assert repo["repositoryArn"] == "arn:aws:ecr:us-west-2:111122223333:repository/my-app"
    assert set(repo) >= {"repositoryArn", "registryId", "repositoryName", "repositoryUri", "createdAt"}

    # C2: the repository's grants, found by the repository ARN in EncryptionContextSubset.
    listed = ok("kms", "list-grants", "--key-id", meta["KeyId"], "--region", "us-west-2", registry=reg)
    assert set(listed) == {"Grants"}  # as the aws CLI prints it (the ECR guide's example output)
    grants = listed["Grants"]
    assert len(grants) == 2
    for g in grants:
        # The ECR guide's constraint (the repository ARN), plus ecrcrypt's repository uid (docs/ecr-model.md).
        subset = g["Constraints"]["EncryptionContextSubset"]
        assert subset["aws:ecr:arn"] == repo["repositoryArn"] and set(subset) == {
            "aws:ecr:arn",
            "ecrcrypt:repository-uid",
        }
        assert g["KeyId"] == meta["Arn"] and g["RetiringPrincipal"] == "ecr.us-west-2.amazonaws.com"
        assert {"GrantId", "GranteePrincipal", "IssuingAccount", "Operations", "CreationDate"} <= set(g)
    grant_id = grants[0]["GrantId"]

    # C3: retire it; the aws CLI prints nothing for RetireGrant.
    retired = run(
        "kms", "retire-grant", "--key-id", meta["KeyId"], "--grant-id", grant_id, "--region", "us-west-2", registry=reg
    )
    assert (retired.status, retired.stdout, retired.stderr) == (0, "", "")
    left = ok(
        "kms",
        "list-grants",
        "--key-id",
        meta["KeyId"],
        "--region",
        "us-west-2",
        "--query",
        "Grants[].GrantId",
        registry=reg,
    )
    assert left == [grants[1]["GrantId"]]

    # Retiring it again is the service's NotFoundException, in the aws CLI's form and status.
    again = run("kms", "retire-grant", "--key-id", meta["KeyId"], "--grant-id", grant_id, registry=reg)
    assert again.status == 254
    assert again.stderr.strip().startswith(
        "An error occurred (NotFoundException) when calling the RetireGrant operation:"
    )


def test_delete_repository_then_check_its_grants_are_gone(tmp_path: Path) -> None:
    # The reason C2 exists: after DeleteRepository, list-grants --key-id shows what is left.
    reg = tmp_path / "reg"
    ok("--dir", str(reg), "init")
    key = ok("kms", "create-key", "--query", "KeyMetadata.Arn", registry=reg)
    ok(
        "ecr",
        "create-repository",
        "--repository-name",
        "gone",
        "--encryption-configuration",
        f'{{"encryptionType": "KMS", "kmsKey": "{key}"}}',
        registry=reg,
    )
    assert ok("kms", "list-grants", "--key-id", key, "--query", "length(Grants)", registry=reg) == 2
    ok("ecr", "delete-repository", "--repository-name", "gone", registry=reg)
    assert ok("kms", "list-grants", "--key-id", key, "--query", "length(Grants)", registry=reg) == 0
