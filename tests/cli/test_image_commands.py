"""The image commands through the console script: put-image, describe-images, list-images, batch-delete-image."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.cli.support import ok, run

REPO = ("--repository-name", "team/app")


@pytest.fixture
def reg(tmp_path: Path) -> Path:
    ok("--dir", str(tmp_path / "reg"), "init")
    ok("ecr", "create-repository", *REPO, registry=tmp_path / "reg")
    return tmp_path / "reg"


def _image(reg: Path, tmp_path: Path, payload: bytes, *tag: str) -> dict[str, Any]:
    """Push ``payload`` as a layer and an image listing it; put-image's ``image``."""
    layer = tmp_path / "layer"
    layer.write_bytes(payload)
    pushed = ok("ecr", "push-layer", *REPO, str(layer), registry=reg)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", **_ref(pushed)},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", **_ref(pushed)}],
        },
        indent=2,
    )
    tags = ("--image-tag", tag[0]) if tag else ()
    image = ok("ecr", "put-image", *REPO, "--image-manifest", manifest, *tags, registry=reg)["image"]
    assert isinstance(image, dict)
    return image


def _ref(pushed: dict[str, Any]) -> dict[str, Any]:
    return {"digest": pushed["layerDigest"], "size": pushed["size"]}


def test_put_image_keeps_the_bytes_and_media_type(reg: Path, tmp_path: Path) -> None:
    image = _image(reg, tmp_path, b"a" * 1000, "v1")
    assert image["imageManifestMediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert image["imageId"]["imageDigest"] == "sha256:" + hashlib.sha256(image["imageManifest"].encode()).hexdigest()
    wrong = run(
        "ecr",
        "put-image",
        *REPO,
        "--image-manifest",
        image["imageManifest"],
        "--image-digest",
        "sha256:" + "0" * 64,
        registry=reg,
    )
    assert wrong.status == 254 and "(ImageDigestDoesNotMatchException)" in wrong.stderr
    assert image["imageId"]["imageDigest"] in wrong.stderr  # names the manifest's real digest
    again = run(
        "ecr", "put-image", *REPO, "--image-manifest", image["imageManifest"], "--image-tag", "v1", registry=reg
    )
    assert again.status == 254 and "(ImageAlreadyExistsException)" in again.stderr


def test_describe_images_prints_ecrs_image_detail(reg: Path, tmp_path: Path) -> None:
    image = _image(reg, tmp_path, b"b" * 1000, "v1")
    (detail,) = ok("ecr", "describe-images", *REPO, registry=reg)["imageDetails"]
    pushed_at = detail.pop("imagePushedAt")
    assert datetime.fromisoformat(pushed_at).tzinfo is not None  # ISO 8601, as the aws CLI v2 prints it
    assert detail == {
        "registryId": detail["registryId"],
        "repositoryName": "team/app",
        "imageDigest": image["imageId"]["imageDigest"],
        "imageTags": ["v1"],
        "imageSizeInBytes": 2000,  # config and layer, as ECR counts them
        "imageManifestMediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "artifactMediaType": "application/vnd.docker.container.image.v1+json",
        "imageStatus": "ACTIVE",
    }
    missing = run("ecr", "describe-images", *REPO, "--image-ids", "imageTag=nope", registry=reg)
    assert missing.status == 254 and "(ImageNotFoundException)" in missing.stderr and "nope" in missing.stderr


def test_list_and_describe_filter_and_page(reg: Path, tmp_path: Path) -> None:
    digests = [_image(reg, tmp_path, bytes([i]) * 10, f"t{i}")["imageId"]["imageDigest"] for i in range(2)]
    untagged = _image(reg, tmp_path, b"u" * 10)["imageId"]["imageDigest"]
    assert ok("ecr", "list-images", *REPO, "--filter", "tagStatus=UNTAGGED", registry=reg) == {
        "imageIds": [{"imageDigest": untagged}]
    }
    first = ok("ecr", "describe-images", *REPO, "--max-items", "1", registry=reg)
    assert [d["imageDigest"] for d in first["imageDetails"]] == digests[:1]
    rest = ok("ecr", "describe-images", *REPO, "--starting-token", first["NextToken"], registry=reg)
    assert [d["imageDigest"] for d in rest["imageDetails"]] == [digests[1], untagged]
    one_page = ok("ecr", "describe-images", *REPO, "--max-results", "1", registry=reg)
    assert len(one_page["imageDetails"]) == 1 and "nextToken" in one_page  # the API's own page, as returned


def test_batch_delete_image_in_shorthand_and_json(reg: Path, tmp_path: Path) -> None:
    image = _image(reg, tmp_path, b"a" * 10, "a1")
    a = image["imageId"]
    ok("ecr", "put-image", *REPO, "--image-manifest", image["imageManifest"], "--image-tag", "a2", registry=reg)
    b = _image(reg, tmp_path, b"b" * 10, "b1")["imageId"]

    # By tag: untags; the image stays while another tag names it.
    out = ok("ecr", "batch-delete-image", *REPO, "--image-ids", "imageTag=a1", "imageTag=nope", registry=reg)
    assert out == {
        "imageIds": [{"imageDigest": a["imageDigest"], "imageTag": "a1"}],
        "failures": [
            {
                "imageId": {"imageTag": "nope"},
                "failureCode": "ImageNotFound",
                "failureReason": "Requested image not found",
            }
        ],
    }
    assert {i.get("imageTag") for i in ok("ecr", "list-images", *REPO, registry=reg)["imageIds"]} == {"a2", "b1"}

    # By digest, JSON form: the image and every tag it had.
    ids = json.dumps([{"imageDigest": a["imageDigest"]}, {"imageDigest": "sha256:bad"}])
    out = ok("ecr", "batch-delete-image", *REPO, "--image-ids", ids, registry=reg)
    assert out["imageIds"] == [{"imageDigest": a["imageDigest"], "imageTag": "a2"}]
    assert [f["failureCode"] for f in out["failures"]] == ["InvalidImageDigest"]
    assert ok("ecr", "list-images", *REPO, registry=reg) == {"imageIds": [b]}

    usage = run("ecr", "batch-delete-image", *REPO, "--image-ids", "imageName=x", registry=reg)
    assert usage.status == 252 and "--image-ids" in usage.stderr
    assert run("ecr", "batch-delete-image", *REPO, registry=reg).status == 252  # --image-ids is required
