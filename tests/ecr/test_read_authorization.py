"""Every read of a repository's contents asks for the ``ecr:`` action AWS uses for it.

ECR's API reference: BatchCheckLayerAvailability says whether layers exist and their size
(``Repository.has_layer``, ``layer_size``, ``list_layers``), DescribeImages what an image id
resolves to (``resolve``), ListImages lists image ids, DescribeRepositories describes the
repository. An operation that reads on its way asks only for its own action: a pull by tag
(BatchGetImage) needs no DescribeImages, a PutImage no BatchCheckLayerAvailability.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from ecrcrypt import MemoryBlobStore, errors
from ecrcrypt.digest import Digest
from ecrcrypt.ecr.images import ImageApi
from ecrcrypt.ecr.permissions import EcrAuthorization
from ecrcrypt.ecr.registry import Registry
from ecrcrypt.ecr.repository import Repository
from ecrcrypt.ecr.types import LayerPush, build_manifest
from ecrcrypt.kms.local.service import LocalKms, ManualClock

ACCOUNT = "123456789012"
REGION = "us-east-1"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
DEV = f"arn:aws:iam::{ACCOUNT}:user/dev"
REPO_ARN = f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/app"
LAYER = b"layer bytes " * 50
DIGEST = Digest.of(LAYER)
MANIFEST = build_manifest([LayerPush(digest=DIGEST, size=len(LAYER), stored_size=0, already_existed=False)])

READS: dict[str, tuple[str, Callable[[Repository], Any]]] = {
    "has_layer": ("ecr:BatchCheckLayerAvailability", lambda r: r.has_layer(DIGEST)),
    "layer_size": ("ecr:BatchCheckLayerAvailability", lambda r: r.layer_size(DIGEST)),
    "list_layers": ("ecr:BatchCheckLayerAvailability", lambda r: r.list_layers()),
    "resolve": ("ecr:DescribeImages", lambda r: r.resolve(tag="v1")),
    "list_images": ("ecr:ListImages", lambda r: r.list_images()),
    "describe": ("ecr:DescribeRepositories", lambda r: r.describe()),
    "get_image": ("ecr:BatchGetImage", lambda r: r.get_image(tag="v1")),
    "read_layer": ("ecr:GetDownloadUrlForLayer", lambda r: r.read_layer(DIGEST)),
}


def policy(*statements: Mapping[str, object]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


@pytest.fixture
def local(clock: ManualClock) -> LocalKms:
    kms = LocalKms(account=ACCOUNT, region=REGION, clock=clock, strict_iam=True)
    kms.iam.create_user(user_name="dev")
    return kms


@pytest.fixture
def registry(local: LocalKms) -> Registry:
    registry = Registry(
        kms=local.client,
        store=MemoryBlobStore(),
        account=ACCOUNT,
        region=REGION,
        audit=local.audit,
        authorization=EcrAuthorization(identities=local),
    )
    registry.create_repository("app")
    repo = registry.repository("app")
    repo.push_layer(LAYER, digest=DIGEST)
    repo.put_image(MANIFEST, tag="v1")
    return registry


def allow_dev(local: LocalKms, *actions: str) -> None:
    local.iam.put_user_policy(
        user_name="dev",
        policy_name="ecr",
        policy_document=policy({"Effect": "Allow", "Action": list(actions), "Resource": REPO_ARN}),
    )


@pytest.mark.parametrize("read", sorted(READS))
def test_each_read_needs_its_action_and_the_denial_names_it(registry: Registry, local: LocalKms, read: str) -> None:
    action, call = READS[read]
    expected = call(registry.repository("app"))  # the root needs no policy in its own account
    dev = registry.as_caller(DEV).repository("app")
    with pytest.raises(errors.AccessDeniedError) as denied:
        call(dev)
    message = str(denied.value)
    assert f"User: {DEV} is not authorized to perform: {action} on resource: {REPO_ARN}" in message
    assert "because no identity policy allows it" in message
    # Every other ecr: action is not enough ...
    others = sorted({a for a, _ in READS.values()} - {action})
    allow_dev(local, *others)
    with pytest.raises(errors.AccessDeniedError, match=action):
        call(dev)
    # ... and the action alone is.
    allow_dev(local, action)
    assert call(dev) == expected


def test_the_denial_is_in_the_audit_trail(registry: Registry, local: LocalKms) -> None:
    with pytest.raises(errors.AccessDeniedError):
        registry.as_caller(DEV).repository("app").has_layer(DIGEST)
    events = local.audit.query(event_source="ecr.amazonaws.com", event_name="BatchCheckLayerAvailability", errors=True)
    assert [e.error_code for e in events] == ["AccessDeniedException"]
    assert "ecr:BatchCheckLayerAvailability" in (events[0].error_message or "")


def test_an_operation_that_reads_on_its_way_needs_only_its_own_action(registry: Registry, local: LocalKms) -> None:
    dev = registry.as_caller(DEV).repository("app")
    allow_dev(local, "ecr:BatchGetImage")
    assert dev.get_image(tag="v1").manifest == MANIFEST  # the tag is resolved without ecr:DescribeImages
    allow_dev(local, "ecr:PutImage")
    assert dev.put_image(MANIFEST, tag="v2").digest == Digest.of(MANIFEST)  # layers checked without the action
    assert ImageApi(dev).put_image(MANIFEST, tag="v3").image_id.tag == "v3"
    allow_dev(local, "ecr:DescribeImages")
    details, _ = ImageApi(dev).describe_images()  # lists the images without ecr:ListImages
    assert {t for d in details for t in d.tags} == {"v1", "v2", "v3"}


def test_a_decision_follows_every_policy_change(registry: Registry, local: LocalKms) -> None:
    # The registry keeps decisions while the policies that made them stay the same objects; each
    # write (repository policy set or deleted, identity policy put or deleted) must be seen at once.
    dev = registry.as_caller(DEV).repository("app")
    statement = {"Sid": "dev", "Effect": "Allow", "Principal": {"AWS": DEV}, "Action": "ecr:DescribeImages"}
    for _ in range(2):
        with pytest.raises(errors.AccessDeniedError):
            dev.resolve(tag="v1")
        registry.set_repository_policy("app", policy(statement))
        assert dev.resolve(tag="v1") == Digest.of(MANIFEST)
        registry.set_repository_policy("app", policy({**statement, "Effect": "Deny"}), force=True)
        allow_dev(local, "ecr:DescribeImages")
        with pytest.raises(errors.AccessDeniedError, match="explicit deny in statement 'dev'"):
            dev.resolve(tag="v1")
        registry.delete_repository_policy("app")
        assert dev.resolve(tag="v1") == Digest.of(MANIFEST)
        local.iam.delete_user_policy(user_name="dev", policy_name="ecr")
