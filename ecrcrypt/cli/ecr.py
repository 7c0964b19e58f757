"""``ecrcrypt ecr ...``: the aws CLI's ``ecr`` commands the registry model implements, and ecrcrypt's own verbs.

``create-repository``, ``describe-repositories``, ``delete-repository``, ``put-image``,
``batch-get-image``, ``batch-delete-image``, ``list-images`` and ``describe-images`` take the aws CLI's flags and
print its response shapes. ``push-layer``, ``pull-layer`` and ``migrate-repository`` are
ecrcrypt's: ECR pushes a layer in three API calls a CLI user never makes by hand, and
migration is how an immutable encryption configuration changes.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import IO, Any

import click

from ecrcrypt.cli.errors import command
from ecrcrypt.cli.pagination import page_options, paginate
from ecrcrypt.cli.params import load_text, structure, structure_list
from ecrcrypt.cli.progress import Counting, progress
from ecrcrypt.cli.session import emit, open_registry, settings_of
from ecrcrypt.digest import Digest
from ecrcrypt.ecr.images import ImageApi, ImageFailure
from ecrcrypt.ecr.migration import migrate
from ecrcrypt.ecr.types import ImageDetail, RepositoryDescription

__all__ = ["ecr"]

_CHUNK = 1 << 20


@click.group()
def ecr() -> None:
    """Amazon Elastic Container Registry, on the registry directory."""


def _repository(description: RepositoryDescription) -> dict[str, Any]:
    api = description.to_api()
    # The aws CLI v2 prints timestamps as ISO 8601; ECR's wire form is epoch seconds.
    api["createdAt"] = datetime.fromtimestamp(description.created_at, UTC)
    return api


name_option = click.option("--repository-name", required=True, help="the repository's name")


@command(ecr, "create-repository", "CreateRepository")
@name_option
@click.option(
    "--encryption-configuration",
    default=None,
    help="encryptionType=AES256|KMS|KMS_DSSE[,kmsKey=<key id, ARN or alias>], JSON or file://",
)
def create_repository(ctx: click.Context, repository_name: str, encryption_configuration: str | None) -> None:
    """CreateRepository (the encryption configuration can never change afterwards)."""
    config = (
        None if encryption_configuration is None else structure(encryption_configuration, "--encryption-configuration")
    )
    with open_registry(settings_of(ctx)) as registry:
        created = registry.create_repository(repository_name, encryption_configuration=config)
    emit(ctx, {"repository": _repository(created)})


@command(ecr, "describe-repositories", "DescribeRepositories")
@click.option("--repository-names", multiple=True, help="names (space separated); all when omitted")
@page_options(limit="--max-results", marker="--next-token")
def describe_repositories(ctx: click.Context, repository_names: tuple[str, ...], **paging: Any) -> None:
    """DescribeRepositories (every page unless --max-items or --no-paginate)."""
    with open_registry(settings_of(ctx)) as registry:
        if repository_names:
            response = {
                "repositories": [_repository(d) for d in registry.describe_repositories(list(repository_names))]
            }
        else:

            def page(n: int | None, token: str | None) -> dict[str, Any]:
                found, following = registry.describe_repositories_page(max_results=n or 100, next_token=token)
                out: dict[str, Any] = {"repositories": [_repository(d) for d in found]}
                if following is not None:
                    out["nextToken"] = following
                return out

            response = paginate(page, "repositories", next_key="nextToken", **paging)
    emit(ctx, response)


@command(ecr, "delete-repository", "DeleteRepository")
@name_option
@click.option("--force", is_flag=True, help="delete even if it holds images")
def delete_repository(ctx: click.Context, repository_name: str, force: bool) -> None:
    """DeleteRepository (retires the repository's grants with the caller's credentials)."""
    with open_registry(settings_of(ctx)) as registry:
        deleted = registry.delete_repository(repository_name, force=force)
    emit(ctx, {"repository": _repository(deleted)})


@command(ecr, "put-image", "PutImage")
@name_option
@click.option("--image-manifest", required=True, help="the manifest JSON, or file://<path>")
@click.option("--image-manifest-media-type", default=None, help="the manifest's media type (its mediaType if omitted)")
@click.option("--image-tag", default=None)
@click.option("--image-digest", default=None, help="sha256:<hex> the manifest must have")
def put_image(
    ctx: click.Context,
    repository_name: str,
    image_manifest: str,
    image_manifest_media_type: str | None,
    image_tag: str | None,
    image_digest: str | None,
) -> None:
    """PutImage: store a manifest, byte for byte, whose config and layers the repository holds."""
    manifest = load_text(image_manifest).encode()
    with open_registry(settings_of(ctx)) as registry:
        image = ImageApi(registry.repository(repository_name)).put_image(
            manifest, media_type=image_manifest_media_type, tag=image_tag, digest=image_digest
        )
    emit(ctx, {"image": image.to_api()})


image_ids_option = click.option(
    "--image-ids",
    multiple=True,
    required=True,
    help="imageTag=<tag> or imageDigest=<digest> items (space separated), or a JSON list",
)


def _image_ids(values: tuple[str, ...]) -> list[dict[str, str]]:
    ids = structure_list(values, "--image-ids")
    for i in ids:
        if not isinstance(i, dict) or not set(i) <= {"imageTag", "imageDigest"} or not i:
            raise click.BadParameter("--image-ids takes imageTag=<tag> or imageDigest=<digest> items")
    return ids


def _image_batch(
    ctx: click.Context,
    repository_name: str,
    image_ids: tuple[str, ...],
    call: Callable[[ImageApi, list[dict[str, str]]], tuple[list[Any], list[ImageFailure]]],
    result_key: str,
) -> None:
    """The batch image operations: items done and items failed, each in ECR's shape."""
    wanted = _image_ids(image_ids)
    with open_registry(settings_of(ctx)) as registry:
        done, failures = call(ImageApi(registry.repository(repository_name)), wanted)
    emit(ctx, {result_key: [d.to_api() for d in done], "failures": [f.to_api() for f in failures]})


@command(ecr, "batch-get-image", "BatchGetImage")
@name_option
@image_ids_option
@click.option("--accepted-media-types", multiple=True, help="manifest media types the caller accepts")
def batch_get_image(
    ctx: click.Context, repository_name: str, image_ids: tuple[str, ...], accepted_media_types: tuple[str, ...]
) -> None:
    """BatchGetImage: decrypt and print manifests; ids that do not resolve are listed as failures."""
    accepted = list(accepted_media_types) or None
    _image_batch(
        ctx,
        repository_name,
        image_ids,
        lambda api, ids: api.batch_get_image(ids, accepted_media_types=accepted),
        "images",
    )


@command(ecr, "batch-delete-image", "BatchDeleteImage")
@name_option
@image_ids_option
def batch_delete_image(ctx: click.Context, repository_name: str, image_ids: tuple[str, ...]) -> None:
    """BatchDeleteImage: by tag, untag (the image goes with its last tag); by digest, the image and its tags."""
    _image_batch(ctx, repository_name, image_ids, lambda api, ids: api.batch_delete_image(ids), "imageIds")


def _tag_status(value: str | None) -> str | None:
    if value is None:
        return None
    parsed = structure(value, "--filter")
    if not isinstance(parsed, dict) or set(parsed) != {"tagStatus"}:
        raise click.BadParameter("--filter takes tagStatus=TAGGED|UNTAGGED|ANY")
    return str(parsed["tagStatus"])


filter_option = click.option("--filter", "filter_", default=None, help="tagStatus=TAGGED|UNTAGGED|ANY")


@command(ecr, "list-images", "ListImages")
@name_option
@filter_option
@page_options(limit="--max-results", marker="--next-token")
def list_images(ctx: click.Context, repository_name: str, filter_: str | None, **paging: Any) -> None:
    """ListImages: one image id per tag (and one per untagged manifest)."""
    status = _tag_status(filter_)
    with open_registry(settings_of(ctx)) as registry:
        api = ImageApi(registry.repository(repository_name))

        def page(n: int | None, token: str | None) -> dict[str, Any]:
            ids, following = api.list_images(tag_status=status, max_results=n, next_token=token)
            return {"imageIds": [i.to_api() for i in ids], **({"nextToken": following} if following else {})}

        response = paginate(page, "imageIds", next_key="nextToken", **paging)
    emit(ctx, response)


def _detail(detail: ImageDetail) -> dict[str, Any]:
    api = detail.to_api()
    # The aws CLI v2 prints timestamps as ISO 8601; ECR's wire form is epoch seconds.
    api["imagePushedAt"] = datetime.fromtimestamp(detail.pushed_at, UTC)
    return api


@command(ecr, "describe-images", "DescribeImages")
@name_option
@click.option("--image-ids", multiple=True, help="imageTag=<tag> or imageDigest=<digest> items; all when omitted")
@filter_option
@page_options(limit="--max-results", marker="--next-token")
def describe_images(
    ctx: click.Context, repository_name: str, image_ids: tuple[str, ...], filter_: str | None, **paging: Any
) -> None:
    """DescribeImages: digest, tags, size, push time and media types of each image (nothing is decrypted)."""
    ids = _image_ids(image_ids) if image_ids else None
    status = _tag_status(filter_)
    with open_registry(settings_of(ctx)) as registry:
        api = ImageApi(registry.repository(repository_name))

        def page(n: int | None, token: str | None) -> dict[str, Any]:
            details, following = api.describe_images(ids, tag_status=status, max_results=n, next_token=token)
            return {"imageDetails": [_detail(d) for d in details], **({"nextToken": following} if following else {})}

        response = paginate(page, "imageDetails", next_key="nextToken", **paging)
    emit(ctx, response)


# -- ecrcrypt's own verbs -----------------------------------------------------------------
def _size_of(file: IO[bytes]) -> int | None:
    try:
        st = os.fstat(file.fileno())
    except (OSError, ValueError, AttributeError):
        return None
    # A regular file has a size; a pipe's st_size means nothing.
    return st.st_size if st.st_mode & 0o170000 == 0o100000 else None


@command(ecr, "push-layer", "PushLayer")
@name_option
@click.argument("file", type=click.File("rb"))
def push_layer(ctx: click.Context, repository_name: str, file: IO[bytes]) -> None:
    """Encrypt FILE ('-' for stdin) as a layer in one pass; its digest is computed on the way."""
    settings = settings_of(ctx)
    with open_registry(settings) as registry:
        repo = registry.repository(repository_name)
        h = hashlib.sha256()
        with progress("encrypting", _size_of(file), enabled=settings.progress) as advance, repo.start_upload() as up:
            while chunk := file.read(_CHUNK):
                h.update(chunk)
                up.write(chunk)
                advance(len(chunk))
            pushed = up.complete(Digest(h.hexdigest()))
    emit(ctx, pushed.to_api())


@command(ecr, "pull-layer", "PullLayer")
@name_option
@click.option("--layer-digest", required=True, help="sha256:<hex>")
@click.argument("outfile", type=click.File("wb"))
def pull_layer(ctx: click.Context, repository_name: str, layer_digest: str, outfile: IO[bytes]) -> None:
    """Decrypt a layer into OUTFILE ('-' for stdout), verifying its digest at the end."""
    settings = settings_of(ctx)
    with open_registry(settings) as registry:
        repo = registry.repository(repository_name)
        total = repo.layer_size(layer_digest)
        with progress("decrypting", total, enabled=settings.progress) as advance:
            repo.pull_layer(layer_digest, Counting(outfile, advance))
        outfile.flush()


@command(ecr, "migrate-repository", "MigrateRepository")
@click.option("--source-repository-name", required=True)
@click.option("--target-repository-name", required=True)
@click.option(
    "--target-encryption-configuration",
    default=None,
    help="create the target with this configuration first (shorthand, JSON or file://)",
)
@click.option("--delete-source", is_flag=True, help="delete the source once every image is verified in the target")
def migrate_repository(
    ctx: click.Context,
    source_repository_name: str,
    target_repository_name: str,
    target_encryption_configuration: str | None,
    delete_source: bool,
) -> None:
    """Copy every image to a repository with another encryption configuration (resumable)."""
    with open_registry(settings_of(ctx)) as registry:
        if target_encryption_configuration is not None:
            config = structure(target_encryption_configuration, "--target-encryption-configuration")
            registry.create_repository(target_repository_name, encryption_configuration=config)
        report = migrate(
            registry.repository(source_repository_name),
            registry.repository(target_repository_name),
            delete_source=delete_source,
        )
        target = registry.repository(target_repository_name).describe()
    emit(ctx, {"migration": report.to_api(), "repository": _repository(target)})
