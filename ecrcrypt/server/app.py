"""The OCI Distribution API v2 as an ASGI application (Starlette), over an ecrcrypt registry.

Every operation is the library's: blobs are layers pushed through :class:`~ecrcrypt.ecr.uploads.LayerUploads`
(chunked, durable across requests and processes) or :meth:`Repository.push_layer` (monolithic), read
through the verifying reader or, for a ``Range``, :meth:`Repository.read_layer_range` (only the frames
it spans are decrypted); manifests go through :class:`~ecrcrypt.ecr.images.ImageApi`. The library is
blocking, so each call runs in a worker thread; request bodies reach it through a blocking reader
that pulls the ASGI stream one chunk at a time (constant memory whatever the blob's size), and
responses stream from the decrypting reader the same way.

Authentication is ECR's: HTTP Basic, user ``AWS``, the password from GetAuthorizationToken; every
request then runs as the token's principal (the audit trail names it). Anonymous requests get a 401
with a ``WWW-Authenticate: Basic`` challenge, which is what clients answer with their credentials.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import re
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import anyio
import anyio.from_thread
import anyio.to_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ecrcrypt.digest import Digest
from ecrcrypt.ecr.authorization import USERNAME, authenticate
from ecrcrypt.ecr.codec import COPY_CHUNK, VerifyingReader
from ecrcrypt.ecr.images import MANIFEST_MEDIA_TYPES, OCI_INDEX, ImageApi, ImageIdentifier, manifest_subject
from ecrcrypt.ecr.registry import Registry
from ecrcrypt.ecr.registry_kms import open_registry_with
from ecrcrypt.ecr.repository import Repository
from ecrcrypt.ecr.types import OCI_MAX_TAG_LENGTH
from ecrcrypt.ecr.uploads import LayerUploads, collect_abandoned_uploads
from ecrcrypt.errors import (
    EcrCryptError,
    ImageAlreadyExistsError,
    InvalidParameterError,
    LayersNotFoundError,
    RepositoryAlreadyExistsError,
    RepositoryNotFoundError,
    ValidationError,
)
from ecrcrypt.server.errors import DistributionError, from_library
from ecrcrypt.server.options import ServerOptions

__all__ = ["app_from_environment", "create_app", "open_registry"]

T = TypeVar("T")

_API_VERSION = ("Docker-Distribution-API-Version", "registry/2.0")
# Repository handles a server process keeps for its pull routes, at most (past it, all go).
_KNOWN_REPOSITORIES = 1024
#: How often a server process removes abandoned uploads (seconds).
COLLECT_EVERY = 3600.0
#: The distribution spec: registries SHOULD accept manifests of at least 4 MiB.
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
_PATHS = (
    ("catalog", re.compile(r"_catalog")),
    ("tags", re.compile(r"(?P<name>.+)/tags/list")),
    ("referrers", re.compile(r"(?P<name>.+)/referrers/(?P<digest>[^/]+)")),
    ("manifest", re.compile(r"(?P<name>.+)/manifests/(?P<reference>[^/]+)")),
    ("upload", re.compile(r"(?P<name>.+)/blobs/uploads/?(?P<upload>[^/]*)")),
    ("blob", re.compile(r"(?P<name>.+)/blobs/(?P<digest>[^/]+)")),
)
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
_CONTENT_RANGE = re.compile(r"(?:bytes[ =])?(\d+)-(\d+)(?:/\d+|/\*)?")


async def _run(fn: Callable[[], T]) -> T:
    return await anyio.to_thread.run_sync(fn)


class _RequestBody:
    """A blocking ``read(size)`` over the request body, for the library running in a worker thread:
    it pulls one ASGI chunk at a time from the event loop, so memory stays at one chunk."""

    def __init__(self, request: Request) -> None:
        self._chunks = request.stream().__aiter__()
        self._buffer = memoryview(b"")
        self._eof = False

    async def _pull(self) -> bytes | None:
        try:
            return await self._chunks.__anext__()
        except StopAsyncIteration:
            return None

    def _fill(self) -> None:
        while not self._buffer and not self._eof:
            chunk = anyio.from_thread.run(self._pull)
            if chunk is None:
                self._eof = True
            else:
                self._buffer = memoryview(chunk)

    def at_end(self) -> bool:
        self._fill()
        return self._eof and not self._buffer

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            parts = []
            while data := self.read(COPY_CHUNK):
                parts.append(data)
            return b"".join(parts)
        self._fill()
        out = bytes(self._buffer[:size])
        self._buffer = self._buffer[size:]
        return out


def _digest(text: str | None) -> Digest:
    if not text:
        raise DistributionError(400, "DIGEST_INVALID", "a digest is required")
    try:
        return Digest.parse(text)
    except (ValidationError, EcrCryptError):
        raise DistributionError(400, "DIGEST_INVALID", f"invalid digest {text!r}") from None


def _reference(reference: str) -> ImageIdentifier:
    return ImageIdentifier(digest=reference) if ":" in reference else ImageIdentifier(tag=reference)


def _accepted(request: Request) -> set[str]:
    return {
        part.split(";", 1)[0].strip()
        for header in request.headers.getlist("accept")
        for part in header.split(",")
        if part.strip()
    }


def _stream(reader: Any) -> Iterator[bytes]:
    # A sync iterator: Starlette runs it in a worker thread, one chunk per step.
    try:
        while data := reader.read(COPY_CHUNK):
            yield data
    finally:
        reader.close()


def _range_stream(repo: Repository, digest: Digest, first: int, last: int) -> Iterator[bytes]:
    step = 8 * COPY_CHUNK
    for offset in range(first, last + 1, step):
        yield repo.read_layer_range(digest, offset, min(step, last + 1 - offset))


def _page(items: list[str], request: Request, link: str) -> tuple[list[str], dict[str, str]]:
    """The spec's ``n``/``last`` pagination over lexically ordered ``items``."""
    last = request.query_params.get("last")
    if last:
        items = [i for i in items if i > last]
    n_text = request.query_params.get("n")
    if n_text is None:
        return items, {}
    if not n_text.isdigit():
        raise DistributionError(400, "PAGINATION_NUMBER_INVALID", "n must be a non-negative integer")
    n = int(n_text)
    page = items[:n]
    if len(items) > n and page:
        return page, {"Link": f'<{link}?n={n}&last={quote(page[-1])}>; rel="next"'}
    return page, {}


class DistributionApp:
    """The request handlers, bound to one registry (shared by every request of the process)."""

    def __init__(self, registry: Registry, *, create_on_push: bool = False) -> None:
        self.registry = registry
        self.create_on_push = create_on_push
        # Repositories this process has found, by name, for the pull routes (see _pulling).
        self._known: dict[str, Repository] = {}
        realm = f"https://{registry.account}.dkr.ecr.{registry.region}.amazonaws.com/"
        self._challenge = f'Basic realm="{realm}",service="ecr.amazonaws.com"'

    # -- plumbing -------------------------------------------------------------------------------------
    async def handle(self, request: Request) -> Response:
        try:
            principal = await self._principal(request)
            response = await self._dispatch(request, principal)
        except EcrCryptError as exc:
            response = self._error(from_library(exc))
        except DistributionError as exc:
            response = self._error(exc)
        response.headers.append(*_API_VERSION)
        return response

    def _error(self, exc: DistributionError) -> Response:
        return JSONResponse(exc.body(), status_code=exc.status, headers=dict(exc.headers))

    async def _principal(self, request: Request) -> str:
        header = request.headers.get("authorization", "")
        if header[:6].lower() == "basic ":
            try:
                user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                user, password = "", ""
            principal = await _run(lambda: authenticate(self.registry, user, password))
            if principal is not None:
                return principal
        raise DistributionError(
            401,
            "UNAUTHORIZED",
            f"authentication required: HTTP Basic, user {USERNAME}, password from GetAuthorizationToken",
            headers=(("WWW-Authenticate", self._challenge),),
        )

    async def _dispatch(self, request: Request, principal: str) -> Response:
        path = request.path_params.get("path", "")
        method = request.method
        if path == "":
            return JSONResponse({})
        for kind, pattern in _PATHS:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            handler = getattr(self, f"_{kind}_{'get' if method == 'HEAD' else method.lower()}", None)
            if handler is None:
                raise DistributionError(405, "UNSUPPORTED", f"{method} is not supported on {path}")
            response: Response = await handler(request, principal, **match.groupdict())
            return response
        raise DistributionError(404, "NAME_UNKNOWN", f"no such endpoint: {path}")

    def _repository(self, principal: str, name: str, *, create: bool = False) -> Repository:
        registry = self.registry.as_caller(principal)
        try:
            return registry.repository(name)
        except InvalidParameterError as exc:
            raise DistributionError(400, "NAME_INVALID", str(exc)) from None
        except RepositoryNotFoundError:
            if not (create and self.create_on_push):
                raise
        with contextlib.suppress(RepositoryAlreadyExistsError):  # created by a concurrent push
            registry.create_repository(name)
        return registry.repository(name)

    def _pulling(self, principal: str, name: str, action: Callable[[Repository], T]) -> T:
        """``action`` on the repository ``name``, found from this process's memory when it can be.

        A pull request's one lookup (``find_image``/``find_object``) checks, in its own statement,
        that the repository whose record the handle holds (its uid) is still live: the memory
        saves the request its read of the repository, a round trip on a shared database. When the
        lookup finds that repository gone, the memory is dropped and the request runs once more on
        a fresh read, so a repository deleted meanwhile is answered as gone and one re-created
        under the same name is served as the new one.
        """
        known = self._known.get(name)
        if known is not None:
            try:
                return action(known.as_caller(principal))
            except RepositoryNotFoundError:
                self._known.pop(name, None)
        repo = self._repository(principal, name)
        if len(self._known) >= _KNOWN_REPOSITORIES:
            self._known.clear()
        self._known[name] = repo
        return action(repo)

    # -- catalog and tags -------------------------------------------------------------------------
    async def _catalog_get(self, request: Request, principal: str) -> Response:
        found = await _run(lambda: self.registry.as_caller(principal).describe_repositories())
        names, headers = _page(sorted(d.repository_name for d in found), request, "/v2/_catalog")
        return JSONResponse({"repositories": names}, headers=headers)

    async def _tags_get(self, request: Request, principal: str, name: str) -> Response:
        tags = await _run(lambda: ImageApi(self._repository(principal, name)).tags())
        page, headers = _page(tags, request, f"/v2/{name}/tags/list")
        return JSONResponse({"name": name, "tags": page}, headers=headers)

    async def _referrers_get(self, request: Request, principal: str, name: str, digest: str) -> Response:
        d = _digest(digest)
        artifact_type = request.query_params.get("artifactType")
        index = await _run(
            lambda: ImageApi(self._repository(principal, name)).referrers(d, artifact_type=artifact_type)
        )
        headers = {"OCI-Filters-Applied": "artifactType"} if artifact_type else {}
        return JSONResponse(index, headers=headers, media_type=OCI_INDEX)

    # -- blobs ------------------------------------------------------------------------------------
    async def _blob_get(self, request: Request, principal: str, name: str, digest: str) -> Response:
        d = _digest(digest)
        wanted = request.headers.get("range")
        whole = request.method == "GET" and not wanted

        def look(repo: Repository) -> tuple[Repository, int | None, VerifyingReader | None]:
            # One read of the metadata: the layer's record with the repository's liveness.
            if whole:
                opened = ImageApi(repo).open_layer(d)
                return (repo, None, None) if opened is None else (repo, *opened)
            layers, _ = ImageApi(repo).batch_check_layer_availability([d])
            return repo, (layers[0].size if layers else None), None

        try:
            repo, size, reader = await _run(lambda: self._pulling(principal, name, look))
        except LayersNotFoundError:  # deleted meanwhile
            raise DistributionError(404, "BLOB_UNKNOWN", f"blob {d} is not in repository {name}") from None
        if size is None:
            raise DistributionError(404, "BLOB_UNKNOWN", f"blob {d} is not in repository {name}")
        headers = {
            "Docker-Content-Digest": str(d),
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
        }
        if request.method == "HEAD":
            return Response(status_code=200, headers={**headers, "Content-Length": str(size)})
        if reader is None:
            m = _RANGE.fullmatch((wanted or "").strip())
            first, last = self._range(m, size)
            headers["Content-Range"] = f"bytes {first}-{last}/{size}"
            headers["Content-Length"] = str(last - first + 1)
            return StreamingResponse(_range_stream(repo, d, first, last), status_code=206, headers=headers)
        return StreamingResponse(_stream(reader), headers={**headers, "Content-Length": str(size)})

    @staticmethod
    def _range(m: re.Match[str] | None, size: int) -> tuple[int, int]:
        if m is not None and (m.group(1) or m.group(2)):
            if m.group(1):
                first = int(m.group(1))
                last = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
            else:  # a suffix: the last N bytes
                first, last = max(size - int(m.group(2)), 0), size - 1
            if first <= last:
                return first, last
        raise DistributionError(
            416, "BLOB_UNKNOWN", "range not satisfiable", headers=(("Content-Range", f"bytes */{size}"),)
        )

    async def _blob_delete(self, request: Request, principal: str, name: str, digest: str) -> Response:
        raise DistributionError(405, "UNSUPPORTED", "blobs are deleted by garbage collection, not by clients")

    # -- uploads ----------------------------------------------------------------------------------
    def _upload_headers(self, name: str, upload_id: str, received: int) -> dict[str, str]:
        return {
            "Location": f"/v2/{name}/blobs/uploads/{upload_id}",
            "Docker-Upload-UUID": upload_id,
            "Range": f"0-{max(received - 1, 0)}",
            "Content-Length": "0",
        }

    def _blob_created(self, name: str, digest: Digest) -> Response:
        headers = {"Location": f"/v2/{name}/blobs/{digest}", "Docker-Content-Digest": str(digest)}
        return Response(status_code=201, headers={**headers, "Content-Length": "0"})

    async def _upload_post(self, request: Request, principal: str, name: str, upload: str) -> Response:
        if upload:
            raise DistributionError(405, "UNSUPPORTED", "POST starts an upload: /v2/<name>/blobs/uploads/")
        query = request.query_params
        repo = await _run(lambda: self._repository(principal, name, create=True))
        mount, source = query.get("mount"), query.get("from")
        if mount and source:
            d = _digest(mount)
            if await _run(lambda: self._mount(principal, repo, source, d)):
                return self._blob_created(name, d)
        if query.get("digest"):
            d = _digest(query.get("digest"))
            body = _RequestBody(request)
            await _run(lambda: repo.push_layer(body, digest=d))
            return self._blob_created(name, d)
        status = await _run(lambda: LayerUploads(repo).initiate_layer_upload())
        return Response(status_code=202, headers=self._upload_headers(name, status.upload_id, 0))

    def _mount(self, principal: str, repo: Repository, source_name: str, digest: Digest) -> bool:
        """Cross-repository mount: the layer is re-encrypted under this repository's context (its
        context names the repository); ``False`` (the client then uploads) when it cannot be read."""
        if repo.has_layer(digest):
            return True
        try:
            source = self.registry.as_caller(principal).repository(source_name)
            if not source.has_layer(digest):
                return False
            with source.open_layer(digest) as reader:
                repo.push_layer(reader, digest=digest)
        except EcrCryptError:
            return False
        return True

    async def _upload_get(self, request: Request, principal: str, name: str, upload: str) -> Response:
        status = await _run(lambda: LayerUploads(self._repository(principal, name)).describe_upload(upload))
        return Response(status_code=204, headers=self._upload_headers(name, upload, status.received))

    async def _upload_patch(self, request: Request, principal: str, name: str, upload: str) -> Response:
        uploads = await _run(lambda: LayerUploads(self._repository(principal, name)))
        first: int | None = None
        last: int | None = None
        if request.headers.get("content-range"):
            m = _CONTENT_RANGE.fullmatch(request.headers["content-range"].strip())
            if m is None:
                raise DistributionError(416, "BLOB_UPLOAD_INVALID", "malformed Content-Range")
            first, last = int(m.group(1)), int(m.group(2))
        body = _RequestBody(request)

        def append() -> int:
            start = uploads.describe_upload(upload).received if first is None else first
            return uploads.upload_layer_part(upload, body, part_first_byte=start, part_last_byte=last).received

        received = await _run(append)
        return Response(status_code=202, headers=self._upload_headers(name, upload, received))

    async def _upload_put(self, request: Request, principal: str, name: str, upload: str) -> Response:
        d = _digest(request.query_params.get("digest"))
        uploads = await _run(lambda: LayerUploads(self._repository(principal, name)))
        body = _RequestBody(request)

        def finish() -> None:
            if not body.at_end():  # the last chunk came with the PUT
                start = uploads.describe_upload(upload).received
                uploads.upload_layer_part(upload, body, part_first_byte=start)
            uploads.complete_layer_upload(upload, [d])

        await _run(finish)
        return self._blob_created(name, d)

    async def _upload_delete(self, request: Request, principal: str, name: str, upload: str) -> Response:
        await _run(lambda: LayerUploads(self._repository(principal, name)).abort_layer_upload(upload))
        return Response(status_code=204)

    # -- manifests --------------------------------------------------------------------------------
    async def _manifest_get(self, request: Request, principal: str, name: str, reference: str) -> Response:
        ident = _reference(reference)
        accepted = _accepted(request)

        def accepts(media_type: str) -> bool:
            return not accepted or media_type in accepted or "*/*" in accepted

        found = await _run(
            lambda: self._pulling(
                principal,
                name,
                lambda repo: ImageApi(repo).get_manifest(ident, body=request.method == "GET", accepts=accepts),
            )
        )
        if found is None:
            raise DistributionError(404, "MANIFEST_UNKNOWN", f"manifest {reference} is not in repository {name}")
        if not accepts(found.media_type):
            raise DistributionError(
                404,
                "MANIFEST_UNKNOWN",
                f"manifest {reference} is a {found.media_type}, which the request does not accept",
            )
        headers = {"Docker-Content-Digest": str(found.digest), "Content-Type": found.media_type}
        if found.manifest is None:  # HEAD
            return Response(status_code=200, headers={**headers, "Content-Length": str(found.size)})
        return Response(found.manifest, headers=headers, media_type=found.media_type)

    async def _manifest_put(self, request: Request, principal: str, name: str, reference: str) -> Response:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_MANIFEST_BYTES:
            raise DistributionError(413, "SIZE_INVALID", f"manifests are limited to {MAX_MANIFEST_BYTES} bytes")
        manifest = bytearray()
        async for chunk in request.stream():
            manifest += chunk
            if len(manifest) > MAX_MANIFEST_BYTES:
                raise DistributionError(413, "SIZE_INVALID", f"manifests are limited to {MAX_MANIFEST_BYTES} bytes")
        content_type = request.headers.get("content-type", "").split(";", 1)[0].strip()
        media_type = content_type if content_type in MANIFEST_MEDIA_TYPES else None
        ident = _reference(reference)
        if ident.tag is not None and len(ident.tag) > OCI_MAX_TAG_LENGTH:
            # ECR's API takes tags of up to 300 characters; a push through the OCI route follows the
            # distribution spec's grammar (at most 128). Reads find any tag the registry holds.
            raise DistributionError(
                400,
                "TAG_INVALID",
                f"tag {ident.tag[:16]}... has {len(ident.tag)} characters: at most 128 in the OCI API",
            )
        digest = Digest.of(bytes(manifest))

        def put() -> str | None:
            api = ImageApi(self._repository(principal, name, create=True))
            with contextlib.suppress(ImageAlreadyExistsError):  # pushed again: the spec's PUT is idempotent
                api.put_image(bytes(manifest), media_type=media_type, tag=ident.tag, digest=ident.digest)
            # From the bytes the client sent (stored under their digest): no read, so no read permission.
            return manifest_subject(bytes(manifest), media_type)

        subject = await _run(put)
        headers = {"Location": f"/v2/{name}/manifests/{digest}", "Docker-Content-Digest": str(digest)}
        if subject is not None:
            headers["OCI-Subject"] = subject  # tells the client the referrers API is supported
        return Response(status_code=201, headers={**headers, "Content-Length": "0"})

    async def _manifest_delete(self, request: Request, principal: str, name: str, reference: str) -> Response:
        ident = _reference(reference)
        deleted, _ = await _run(lambda: ImageApi(self._repository(principal, name)).batch_delete_image([ident]))
        if not deleted:
            raise DistributionError(404, "MANIFEST_UNKNOWN", f"manifest {reference} is not in repository {name}")
        return Response(status_code=202)


def create_app(registry: Registry, *, create_on_push: bool = False, close_registry: bool = False) -> Starlette:
    """The ASGI application serving ``registry`` (closed at shutdown when ``close_registry``)."""
    handlers = DistributionApp(registry, create_on_push=create_on_push)
    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]

    async def collect() -> None:
        # Abandoned uploads (their parts) go after UPLOAD_TTL; every server process may do it.
        while True:
            await _run(lambda: collect_abandoned_uploads(registry._core.metadata, registry.store))
            await anyio.sleep(COLLECT_EVERY)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(collect)
                yield
                tasks.cancel_scope.cancel()
        finally:
            if close_registry:
                registry.close()

    return Starlette(
        routes=[
            Route("/v2/", handlers.handle, methods=methods),
            Route("/v2/{path:path}", handlers.handle, methods=methods),
        ],
        lifespan=lifespan,
    )


def app_from_environment() -> Starlette:
    """uvicorn's application factory (``--factory``): the options ``ecrcrypt serve`` put in the environment."""
    options = ServerOptions.from_environment()
    return create_app(open_registry(options), create_on_push=options.create_on_push, close_registry=True)


def open_registry(options: ServerOptions) -> Registry:
    """The registry the options describe, on its KMS (S3 blobs and AWS KMS need boto3: the ``aws`` extra)."""
    return open_registry_with(
        Path(options.directory), kms=options.kms, metadata=options.metadata_url, blobs=options.blobs
    )
