"""``kms create-grant`` / ``list-grants`` / ``list-retirable-grants`` with service principals (aws CLI flags)."""

from __future__ import annotations

from pathlib import Path

from tests.cli.support import ok, run

SERVICE = "ecr.us-west-2.amazonaws.com"
SOURCE = "arn:aws:ecr:us-west-2:111122223333:repository/app"


def test_a_grant_to_a_service_principal_with_a_source_arn(tmp_path: Path) -> None:
    reg = tmp_path / "reg"
    ok("--dir", str(reg), "init", "--region", "us-west-2")
    key = ok("kms", "create-key", "--query", "KeyMetadata.Arn", registry=reg)
    base = ("kms", "create-grant", "--key-id", key, "--grantee-service-principal", SERVICE, "--operations", "Decrypt")
    refused = run(*base, registry=reg)
    assert refused.status == 254
    assert "(ValidationException) when calling the CreateGrant operation" in refused.stderr
    assert "SourceArn" in refused.stderr
    made = ok(*base, "--retiring-service-principal", SERVICE, "--constraints", f"SourceArn={SOURCE}", registry=reg)
    listed = ok("kms", "list-grants", "--key-id", key, "--grantee-service-principal", SERVICE, registry=reg)
    (grant,) = listed["Grants"]
    assert grant["GrantId"] == made["GrantId"] and "GranteePrincipal" not in grant
    assert (grant["GranteeServicePrincipal"], grant["RetiringServicePrincipal"]) == (SERVICE, SERVICE)
    assert grant["Constraints"] == {"SourceArn": SOURCE}
    retirable = ok("kms", "list-retirable-grants", "--retiring-service-principal", SERVICE, registry=reg)
    assert [g["GrantId"] for g in retirable["Grants"]] == [made["GrantId"]]
    assert ok("kms", "list-grants", "--key-id", key, "--grantee-principal", SERVICE, registry=reg) == {"Grants": []}
