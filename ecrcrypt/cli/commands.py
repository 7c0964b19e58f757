"""``ecrcrypt``: a small command line over a registry directory (the embedded defaults).

``init`` creates the registry in ``--dir`` (``$ECRCRYPT_DIR``, default
``./ecrcrypt-registry``) -- local KMS, filesystem blob store, metadata; every other
command opens it (never creating anything: a missing or damaged file is reported
with what to do), acts as ``--caller`` and prints JSON shaped like the AWS CLI's output.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from ecrcrypt.cli.serve import SERVE_COMMANDS
from ecrcrypt.digest import Digest
from ecrcrypt.ecr.registry import Registry
from ecrcrypt.errors import EcrCryptError

__all__ = ["main"]

_CHUNK = 1 << 20


@contextmanager
def _progress(label: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A transfer bar on stderr when it is a terminal (rich); silent otherwise (pipes, CI, tests)."""
    if not sys.stderr.isatty():
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    columns = ("[progress.description]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


class _Counting:
    """A write-through destination that reports each write to the progress bar."""

    def __init__(self, inner: Any, advance: Callable[[int], None]) -> None:
        self._inner = inner
        self._advance = advance

    def write(self, data: bytes | memoryview) -> int:
        n: int = self._inner.write(data)
        self._advance(len(data))
        return n


def _size_of(file: Any) -> int | None:
    try:
        return os.fstat(file.fileno()).st_size or None
    except (OSError, ValueError, AttributeError):
        return None


def _emit(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


@contextmanager
def _registry(ctx: click.Context) -> Iterator[Registry]:
    try:
        reg = Registry.open(ctx.obj["dir"])
    except EcrCryptError as exc:
        raise click.ClickException(f"{exc.code}: {exc}") from exc
    view = reg.as_caller(ctx.obj["caller"]) if ctx.obj["caller"] else reg
    try:
        yield view
    except EcrCryptError as exc:
        raise click.ClickException(f"{exc.code}: {exc}") from exc
    finally:
        reg.close()


@click.group()
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="ECRCRYPT_DIR",
    default=Path("ecrcrypt-registry"),
    show_default=True,
    help="registry directory",
)
@click.option("--caller", default=None, help="IAM principal ARN to act as (default: the account root)")
@click.pass_context
def main(ctx: click.Context, directory: Path, caller: str | None) -> None:
    """ECR-style encrypted registry on the embedded defaults."""
    ctx.obj = {"dir": directory, "caller": caller}


@main.command("init")
@click.option("--account", default="111122223333", show_default=True, help="AWS account id of the registry")
@click.option("--region", default="us-east-1", show_default=True, help="AWS Region of the registry")
@click.pass_context
def init(ctx: click.Context, account: str, region: str) -> None:
    """Create the registry directory (idempotent on an existing, healthy registry)."""
    try:
        reg = Registry.create(ctx.obj["dir"], account=account, region=region)
    except EcrCryptError as exc:
        raise click.ClickException(f"{exc.code}: {exc}") from exc
    with reg:
        _emit({"registryId": reg.registry_id, "region": reg.region, "directory": str(ctx.obj["dir"])})


@main.command("create-key")
@click.option("--alias", default=None, help="also create this alias (alias/...)")
@click.option("--description", default="", help="key description")
@click.pass_context
def create_key(ctx: click.Context, alias: str | None, description: str) -> None:
    """Create a customer managed KMS key in the local KMS."""
    with _registry(ctx) as reg:
        meta = reg.kms().create_key(description=description)
        if alias:
            reg.kms().create_alias(alias_name=alias, target_key_id=meta.key_id)
        _emit({"KeyMetadata": {"KeyId": meta.key_id, "Arn": meta.arn, "KeyState": meta.key_state.value}})


@main.command("create-repository")
@click.argument("name")
@click.option(
    "--encryption-type", type=click.Choice(["AES256", "KMS", "KMS_DSSE"]), default="AES256", show_default=True
)
@click.option("--kms-key", default=None, help="key id, key ARN, alias name or alias ARN")
@click.pass_context
def create_repository(ctx: click.Context, name: str, encryption_type: str, kms_key: str | None) -> None:
    """CreateRepository (the encryption configuration can never change afterwards)."""
    config: dict[str, str] = {"encryptionType": encryption_type}
    if kms_key:
        config["kmsKey"] = kms_key
    with _registry(ctx) as reg:
        _emit({"repository": reg.create_repository(name, encryption_configuration=config).to_api()})


@main.command("describe-repositories")
@click.argument("names", nargs=-1)
@click.pass_context
def describe_repositories(ctx: click.Context, names: tuple[str, ...]) -> None:
    """DescribeRepositories (all, or the named ones)."""
    with _registry(ctx) as reg:
        found = reg.describe_repositories(list(names) if names else None)
        _emit({"repositories": [d.to_api() for d in found]})


@main.command("delete-repository")
@click.argument("name")
@click.option("--force", is_flag=True, help="delete even if it holds images")
@click.pass_context
def delete_repository(ctx: click.Context, name: str, force: bool) -> None:
    """DeleteRepository (retires the repository's grants)."""
    with _registry(ctx) as reg:
        _emit({"repository": reg.delete_repository(name, force=force).to_api()})


@main.command("push-layer")
@click.argument("repository")
@click.argument("file", type=click.File("rb"))
@click.pass_context
def push_layer(ctx: click.Context, repository: str, file: Any) -> None:
    """Encrypt and store FILE as a layer ('-' for stdin), in one pass (digest computed on the way)."""
    with _registry(ctx) as reg:
        repo = reg.repository(repository)
        h = hashlib.sha256()
        with _progress("encrypting", _size_of(file)) as advance, repo.start_upload() as up:
            while chunk := file.read(_CHUNK):
                h.update(chunk)
                up.write(chunk)
                advance(len(chunk))
            result = up.complete(Digest(h.hexdigest()))
        _emit(
            {
                "layerDigest": str(result.digest),
                "size": result.size,
                "storedSize": result.stored_size,
                "alreadyExisted": result.already_existed,
            }
        )


@main.command("pull-layer")
@click.argument("repository")
@click.argument("digest")
@click.option("-o", "--output", type=click.File("wb"), default="-", help="destination (default stdout)")
@click.pass_context
def pull_layer(ctx: click.Context, repository: str, digest: str, output: Any) -> None:
    """Decrypt a layer, verify its digest, write the plaintext."""
    with _registry(ctx) as reg:
        with _progress("decrypting", None) as advance:
            reg.repository(repository).pull_layer(digest, _Counting(output, advance))
        output.flush()


@main.command("list-grants")
@click.argument("repository")
@click.pass_context
def list_grants(ctx: click.Context, repository: str) -> None:
    """The KMS grants constrained to REPOSITORY (ListGrants filtered by its ARN)."""
    with _registry(ctx) as reg:
        grants = reg.list_repository_grants(repository)
        _emit(
            {
                "Grants": [
                    {
                        "GrantId": g.grant_id,
                        "KeyId": g.key_id,
                        "GranteePrincipal": g.grantee_principal,
                        "RetiringPrincipal": g.retiring_principal,
                        "Operations": [str(o) for o in g.operations],
                        "Constraints": g.constraints.to_api() if g.constraints else None,
                    }
                    for g in grants
                ]
            }
        )


@main.command("audit")
@click.option("--repository", default=None, help="only events about this repository")
@click.option("--event", "event_name", default=None, help="event name, e.g. BatchGetImage")
@click.option("--source", "event_source", default=None, help="event source, e.g. ecr.amazonaws.com")
@click.pass_context
def audit(ctx: click.Context, repository: str | None, event_name: str | None, event_source: str | None) -> None:
    """Audit events (CloudTrail shape): who did what, and when."""
    with _registry(ctx) as reg:
        trail = reg.audit
        if trail is None:
            raise click.ClickException("this registry keeps no audit trail")
        kwargs: dict[str, Any] = {"event_name": event_name, "event_source": event_source}
        events = trail.query(**kwargs)
        if repository is not None:
            arn = str(reg.repository(repository).arn) if _exists(reg, repository) else None
            events = [
                e
                for e in events
                if (e.request_parameters or {}).get("repositoryName") == repository
                or (arn is not None and e.encryption_context.get("aws:ecr:arn") == arn)
            ]
        _emit({"Events": [e.to_cloudtrail() for e in events]})


def _exists(reg: Registry, name: str) -> bool:
    try:
        reg.repository(name)
    except LookupError:
        return False
    return True


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


for _command in SERVE_COMMANDS:  # `serve` and `get-login-password` live in ecrcrypt/cli/serve.py
    main.add_command(_command)
