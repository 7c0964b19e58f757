"""``ecrcrypt serve`` and ``ecrcrypt ecr get-login-password``: the registry server and its password.

The server itself is :mod:`ecrcrypt.server.app`; uvicorn imports it by name in each worker process
(so this module, and the rest of the command line, load neither Starlette nor uvicorn until
``serve`` runs). Its options travel in the environment (:class:`ServerOptions`), ``--kms`` among them,
and ``--s3-bucket``: a global option since every command opens the registry on its blob store, so
``serve --s3-bucket B`` is the global one, moved to the front like the others.
"""

from __future__ import annotations

import ipaddress
import os

import click

from ecrcrypt.cli.session import open_registry, settings_of
from ecrcrypt.ecr.authorization import get_authorization_token
from ecrcrypt.server.options import ENVIRONMENT_VARIABLE, ServerOptions

__all__ = ["SERVE_COMMANDS", "get_login_password", "serve"]


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on (loopback by default)")
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--create-on-push", is_flag=True, help="a push to a missing repository creates it (default encryption)")
@click.option("--certfile", type=click.Path(exists=True, dir_okay=False), default=None, help="TLS certificate (PEM)")
@click.option("--keyfile", type=click.Path(exists=True, dir_okay=False), default=None, help="TLS private key (PEM)")
@click.option("--workers", default=1, show_default=True, type=int, help="server processes sharing the registry")
@click.pass_context
def serve(
    ctx: click.Context,
    host: str,
    port: int,
    create_on_push: bool,
    certfile: str | None,
    keyfile: str | None,
    workers: int,
) -> None:
    """Serve the registry over the OCI Distribution API (log in as AWS with get-login-password).

    Blobs in S3: the global --s3-bucket (and --s3-endpoint-url), which may also be written after `serve`."""
    try:
        import uvicorn
    except ImportError:
        raise click.ClickException("the server needs the server extra: pip install 'ecrcrypt[server]'") from None
    if (certfile is None) != (keyfile is None):
        raise click.UsageError("give both --certfile and --keyfile, or neither")
    if certfile is None and not _loopback(host):
        # Basic credentials and image bytes would cross the network in the clear.
        click.echo(f"warning: serving {host} without TLS; give --certfile and --keyfile", err=True)
    settings = settings_of(ctx)
    directory = settings.directory
    with open_registry(settings):  # fail here, not in each worker: no healthy registry, or another blob store
        pass
    os.environ[ENVIRONMENT_VARIABLE] = ServerOptions(
        directory=str(directory),
        create_on_push=create_on_push,
        s3_bucket=settings.blobs.s3_bucket,  # the global --s3-bucket (`serve --s3-bucket B` is hoisted to it)
        s3_endpoint_url=settings.blobs.s3_endpoint_url,
        metadata_url=settings.metadata_url,
        kms=settings.kms,  # each worker reaches AWS KMS with boto3's own chain: no credential in the options
    ).to_json()
    uvicorn.run(
        "ecrcrypt.server.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        ssl_certfile=certfile,
        ssl_keyfile=keyfile,
        log_level="warning",
    )


@click.command("get-login-password")
@click.pass_context
def get_login_password(ctx: click.Context) -> None:
    """GetAuthorizationToken: the password (12 hours) for user AWS, as the --caller principal."""
    with open_registry(settings_of(ctx)) as registry:
        click.echo(get_authorization_token(registry).password)


SERVE_COMMANDS = (serve, get_login_password)
