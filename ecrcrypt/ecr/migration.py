"""Move a repository's images to a repository with another encryption configuration.

ECR's encryption configuration is immutable ("the encryption settings for a
repository can't be changed once the repository is created", ECR user guide), so
changing it means: create a repository with the new configuration, copy every
image into it -- decrypting with the source's keys and encrypting afresh with the
target's, verifying every digest on both sides -- keep the tags, and retire the
source. :func:`migrate` does exactly that, streaming each layer (constant memory).

It is resumable: a layer or manifest the target already holds is skipped (content
addressing makes "already there" mean "already correct"), so re-running after an
interruption finishes the job without re-copying.
"""

from __future__ import annotations

import attrs

from ecrcrypt.ecr.registry import Registry
from ecrcrypt.ecr.repository import Repository
from ecrcrypt.ecr.rewrap import rewrap_layer
from ecrcrypt.errors import DigestMismatchError, InvalidParameterError

__all__ = ["MigrationReport", "migrate"]


@attrs.frozen(kw_only=True)
class MigrationReport:
    layers_copied: int
    layers_skipped: int
    images_copied: int
    images_skipped: int
    tags: int
    source_deleted: bool
    layers_rewrapped: int = 0  # of layers_copied: given a new header, body reused (``rewrap=True``)

    def to_api(self) -> dict[str, int | bool]:
        return {
            "layersCopied": self.layers_copied,
            "layersSkipped": self.layers_skipped,
            "imagesCopied": self.images_copied,
            "imagesSkipped": self.images_skipped,
            "tags": self.tags,
            "sourceDeleted": self.source_deleted,
        }


def migrate(
    source: Repository, target: Repository, *, delete_source: bool = False, rewrap: bool = False
) -> MigrationReport:
    """Copy every layer, manifest and tag of ``source`` into ``target``; optionally delete ``source``.

    The source is deleted (with ``force``, retiring its grants as the source's
    caller) only after every image has been read back from the target and its
    digest verified. Errors of the pull and push paths propagate unchanged
    (``EcrKmsError`` for an unusable key or grant, ``DigestMismatchError``).

    ``rewrap=True`` re-keys without re-encrypting where it can (:mod:`ecrcrypt.ecr.rewrap`): each
    layer gets a new header under the target's key and context and keeps its encrypted body, so
    the cost is a header per layer; the data keys stay the same (a compromised data key stays
    compromised), which is why full re-encryption is the default.
    """
    if source.arn == target.arn:
        raise InvalidParameterError("source and target of a migration must be different repositories")
    copied = skipped = rewrapped = 0
    for digest in source.list_layers():
        if target.has_layer(digest):
            skipped += 1
            continue
        copied += 1
        if rewrap and rewrap_layer(source, target, digest):
            rewrapped += 1
            continue
        with source.open_layer(digest) as reader:
            target.push_layer(reader, digest=digest)
    images_copied = images_skipped = tags = 0
    by_digest: dict[str, list[str]] = {}
    for image_id in source.list_images():
        names = by_digest.setdefault(str(image_id.digest), [])
        if image_id.tag is not None:
            names.append(image_id.tag)
    existing = {str(i.digest) for i in target.list_images()}
    for image_digest, image_tags in by_digest.items():
        if image_digest in existing and all(_tag_points_to(target, t, image_digest) for t in image_tags):
            images_skipped += 1
            continue
        manifest = source.get_image(digest=image_digest).manifest
        if image_tags:
            for t in image_tags:
                target.put_image(manifest, tag=t)
        else:
            target.put_image(manifest)
        images_copied += 1
        tags += len(image_tags)
    # Read every image back from the target (decrypt + digest check) before touching the source.
    for image_digest in by_digest:
        got = target.get_image(digest=image_digest)
        if str(got.digest) != image_digest:
            raise DigestMismatchError(f"target holds {got.digest} where {image_digest} was copied")
    deleted = False
    if delete_source:
        Registry.of(source).delete_repository(source.name, force=True)
        deleted = True
    return MigrationReport(
        layers_copied=copied,
        layers_skipped=skipped,
        images_copied=images_copied,
        images_skipped=images_skipped,
        tags=tags,
        source_deleted=deleted,
        layers_rewrapped=rewrapped,
    )


def _tag_points_to(repo: Repository, tag: str, digest: str) -> bool:
    try:
        return str(repo.resolve(tag=tag)) == digest
    except LookupError:
        return False
