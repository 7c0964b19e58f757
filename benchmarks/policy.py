"""What key and identity policies cost on the local KMS's hot path.

The same GenerateDataKey + Decrypt pairs (a new ECR-shaped context each time) run on
two keys: one with the default key policy and no identity policies, one with a
realistic policy set -- a 5-statement key policy and a 10-statement identity policy
with conditions on the calling user. Policies are compiled once per write and the
client caches what they decide per key and operation, so the ratio should stay near
1 (issue 11: ``policy_overhead_ratio`` ≤ 1.25).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from benchmarks._harness import Config, Report, need, paired_per_op
from benchmarks.kms import ECR, REGION, REPO, fresh_contexts, pair_fn

ACCOUNT = "123456789012"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
USER = f"arn:aws:iam::{ACCOUNT}:user/pusher"


def key_policy() -> str:
    """Five statements, as a key administrator would write them."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:*", "Resource": "*"},
                {
                    "Sid": "Admins",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/KeyAdmin"},
                    "Action": ["kms:Create*", "kms:Describe*", "kms:Enable*", "kms:Put*", "kms:Update*"],
                    "Resource": "*",
                },
                {
                    "Sid": "ThroughEcr",
                    "Effect": "Allow",
                    "Principal": {"AWS": "*"},
                    "Action": ["kms:Decrypt", "kms:GenerateDataKey*", "kms:CreateGrant", "kms:DescribeKey"],
                    "Resource": "*",
                    "Condition": {"StringEquals": {"kms:ViaService": ECR, "kms:CallerAccount": ACCOUNT}},
                },
                {
                    "Sid": "Partner",
                    "Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:iam::444455556666:role/ci"},
                    "Action": ["kms:Decrypt", "kms:DescribeKey"],
                    "Resource": "*",
                },
                {
                    "Sid": "NoDeletion",
                    "Effect": "Deny",
                    "Principal": {"AWS": "*"},
                    "Action": "kms:ScheduleKeyDeletion",
                    "Resource": "*",
                    "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "false"}},
                },
            ],
        }
    )


def identity_policy(key_arn: str) -> str:
    """Ten statements with conditions: a managed policy attached to the caller (over an inline policy's 2,048)."""
    statements: list[dict[str, Any]] = [
        {"Sid": "Use", "Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": key_arn},
        {"Sid": "Describe", "Effect": "Allow", "Action": "kms:DescribeKey", "Resource": "*"},
        {
            "Sid": "Grants",
            "Effect": "Allow",
            "Action": "kms:CreateGrant",
            "Resource": key_arn,
            "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
        },
        {
            "Sid": "NoOtherRegions",
            "Effect": "Deny",
            "Action": "kms:*",
            "Resource": "*",
            "Condition": {"StringNotEquals": {"aws:RequestedRegion": REGION}, "Null": {"aws:RequestedRegion": "false"}},
        },
    ]
    for i in range(6):
        statements.append(
            {
                "Sid": f"Repo{i}",
                "Effect": "Allow",
                "Action": ["ecr:PutImage", "ecr:BatchGetImage", "ecr:InitiateLayerUpload"],
                "Resource": f"{REPO}-{i}",
                "Condition": {"StringLike": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:user/*"}},
            }
        )
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def run(cfg: Config, report: Report) -> None:
    service_mod = need("ecrcrypt.kms.local.service", "LocalKms")
    kms_mod = need("ecrcrypt.kms", "GrantConstraints")
    n = 2000 if cfg.quick else 20000
    with tempfile.TemporaryDirectory(prefix="ecrcrypt-bench-policy-") as tmp:
        service = service_mod.LocalKms(path=Path(tmp) / "kms.sqlite3", account=ACCOUNT, region=REGION)
        root = service.client(ROOT)
        plain = root.create_key(description="default policy").arn
        governed = root.create_key(description="policy set", policy=key_policy()).arn
        service.iam.create_user(user_name="pusher")
        managed = service.iam.create_policy(policy_name="pusher", policy_document=identity_policy(governed))
        service.iam.attach_user_policy(user_name="pusher", policy_arn=managed.arn)
        mine = kms_mod.GrantConstraints(encryption_context_subset={"aws:ecr:arn": REPO})
        for key in (plain, governed):
            root.create_grant(
                key_id=key, grantee_principal=ECR, operations=["GenerateDataKey", "Decrypt"], constraints=mine
            )
        ecr = service.client(ECR)
        user = service.client(USER)
        distinct = n + 100
        # The account's root on the default key policy: allowed by the policy, no identity policy read.
        # Each ratio is paired (``paired_per_op``): the two pairs alternate batch by batch.
        for who, label, client, baseline, key, title in (
            ("grant", "ECR through a grant", ecr, ecr, "policy_overhead_ratio",
             "policy set / no policies, GenerateDataKey + Decrypt through a grant (paired)"),
            ("user", "an IAM user", user, root, "policy_overhead_user_ratio",
             "policy set (IAM user) / default policy (root), GenerateDataKey + Decrypt (paired)"),
        ):  # fmt: skip
            result = paired_per_op(
                pair_fn(baseline, plain, fresh_contexts(distinct)),
                pair_fn(client, governed, fresh_contexts(distinct)),
                n,
                max(20, cfg.reps),
            )
            report.add(
                f"kms_policy_{who}_none_us",
                f"local KMS GenerateDataKey + Decrypt by {label}, default key policy"
                + ("" if baseline is client else " (the account root)"),
                result.base_s * 1e6,
                "µs",
            )
            report.add(
                f"kms_policy_{who}_set_us",
                f"local KMS GenerateDataKey + Decrypt by {label}, 5-statement key + 10-statement identity policy",
                result.cand_s * 1e6,
                "µs",
            )
            report.spread(key, title, result.cost(), "issue 11 target ≤ 1.25" if who == "grant" else "")
        service.close()
