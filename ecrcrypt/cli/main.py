"""The ``ecrcrypt`` root command: global options, ``init``, and how a run ends.

Global options are the aws CLI's where they mean the same (``--region``,
``--output``, ``--query``, ``--no-progress``) plus ecrcrypt's ``--dir`` (the registry
directory, ``$ECRCRYPT_DIR``) and ``--caller`` (the IAM principal to act as, since
there are no credentials). Like the aws CLI's they may stand before or after the
command -- the source documents write ``--region us-west-2`` last -- so they are
moved to the front before click parses the line. List parameters take several
values (``--operations Decrypt GenerateDataKey``) as in the aws CLI.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import click

from ecrcrypt import __version__
from ecrcrypt.cli.audit import audit
from ecrcrypt.cli.ecr import ecr
from ecrcrypt.cli.ecr_policy import policy_commands
from ecrcrypt.cli.errors import (
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_SERVICE,
    EXIT_USAGE,
    ConfigurationError,
    ServiceError,
    command,
)
from ecrcrypt.cli.iam import iam
from ecrcrypt.cli.kms import kms
from ecrcrypt.cli.output import OUTPUT_FORMATS, QueryError
from ecrcrypt.cli.serve import get_login_password, serve
from ecrcrypt.cli.session import Settings, emit, open_registry, settings_of
from ecrcrypt.demo import demo_command
from ecrcrypt.ecr.registry_blobs import BlobStoreChoice
from ecrcrypt.ecr.registry_kms import KMS_CHOICES, LOCAL
from ecrcrypt.errors import ValidationError

__all__ = ["cli", "hoist_global_options", "main"]

_GLOBAL_WITH_VALUE = (
    "--dir",
    "--metadata-url",
    "--kms",
    "--s3-bucket",
    "--s3-endpoint-url",
    "--region",
    "--caller",
    "--output",
    "--query",
)
_GLOBAL_FLAGS = ("--no-progress", "--version", "--debug")
# Parameters whose aws CLI type is a list: every value up to the next option belongs to them.
_LIST_OPTIONS = frozenset(
    {
        "--operations",
        "--grant-tokens",
        "--repository-names",
        "--image-ids",
        "--lookup-attributes",
        "--accepted-media-types",
    }
)

# botocore's errors for a missing or broken configuration (credentials, Region, profile), by class name:
# botocore is optional and not imported here.
_AWS_CONFIGURATION_ERRORS = frozenset(
    {"NoCredentialsError", "PartialCredentialsError", "NoRegionError", "ProfileNotFound"}
)

_USAGE = """usage: ecrcrypt [options] <command> <subcommand> [parameters]
To see help text, you can run:

  ecrcrypt --help
  ecrcrypt <command> --help
  ecrcrypt <command> <subcommand> --help
"""


def hoist_global_options(argv: Sequence[str]) -> list[str]:
    """Global options moved before the command, and list values split into repeated options.

    ``kms list-grants --key-id K --region us-west-2`` → ``--region us-west-2 kms list-grants --key-id K``;
    ``--operations Decrypt Encrypt`` → ``--operations Decrypt --operations Encrypt``.
    Nothing after ``--`` is touched.
    """
    front: list[str] = []
    rest: list[str] = []
    args = list(argv)
    i = 0
    while i < len(args):
        token = args[i]
        if token == "--":  # noqa: S105 (the end-of-options marker)
            rest.extend(args[i:])
            break
        name = token.split("=", 1)[0]
        if name in _GLOBAL_WITH_VALUE:
            if "=" in token:
                front.append(token)
                i += 1
            else:
                front.extend(args[i : i + 2])
                i += 2
            continue
        if token in _GLOBAL_FLAGS:
            front.append(token)
            i += 1
            continue
        if token in _LIST_OPTIONS:
            i += 1
            values = []
            while i < len(args) and not args[i].startswith("--"):
                values.append(args[i])
                i += 1
            if not values:
                rest.append(token)  # click reports the missing value
            for v in values:
                rest.extend([token, v])
            continue
        rest.append(token)
        i += 1
    return front + rest


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="ECRCRYPT_DIR",
    default=Path("ecrcrypt-registry"),
    show_default=True,
    help="registry directory (made by `ecrcrypt init`); env ECRCRYPT_DIR",
)
@click.option(
    "--metadata-url",
    envvar="ECRCRYPT_METADATA_URL",
    default=None,
    help="the registry's metadata in an outside database: postgresql://user:password@host/db or "
    "sqlite:///path (default: the --dir's registry.sqlite3); init creates it, other commands open it; "
    "env ECRCRYPT_METADATA_URL",
)
@click.option(
    "--kms",
    "kms_choice",
    type=click.Choice(KMS_CHOICES),
    envvar="ECRCRYPT_KMS",
    default=LOCAL,
    show_default=True,
    help="the registry's KMS: local (the --dir's own) or aws (AWS KMS with boto3's credentials, Region and "
    "endpoint configuration, e.g. AWS_ENDPOINT_URL_KMS); init records it, other commands must name it; "
    "env ECRCRYPT_KMS",
)
@click.option(
    "--s3-bucket",
    envvar="ECRCRYPT_S3_BUCKET",
    default=None,
    help="keep the registry's blobs in this S3 bucket (boto3's credentials and configuration) instead of the "
    "--dir's blobs/, as every host of a fleet must; init records it, other commands must name it; "
    "env ECRCRYPT_S3_BUCKET",
)
@click.option(
    "--s3-endpoint-url",
    envvar="ECRCRYPT_S3_ENDPOINT_URL",
    default=None,
    help="an S3-compatible endpoint for --s3-bucket (default: boto3's, e.g. AWS_ENDPOINT_URL_S3); "
    "env ECRCRYPT_S3_ENDPOINT_URL",
)
@click.option(
    "--region", envvar="ECRCRYPT_REGION", default=None, help="AWS Region (default: the registry's, set by init)"
)
@click.option("--caller", default=None, help="IAM principal ARN to act as (default: the account root)")
@click.option("--output", type=click.Choice(OUTPUT_FORMATS), default="json", show_default=True)
@click.option("--query", default=None, help="JMESPath query applied to the response")
@click.option("--no-progress", is_flag=True, help="never draw progress bars")
@click.option("--debug", is_flag=True, help="log ecrcrypt's operations to stderr")
@click.version_option(__version__, "--version", prog_name="ecrcrypt", message="%(prog)s %(version)s")
@click.pass_context
def cli(
    ctx: click.Context,
    directory: Path,
    metadata_url: str | None,
    kms_choice: str,
    s3_bucket: str | None,
    s3_endpoint_url: str | None,
    region: str | None,
    caller: str | None,
    output: str,
    query: str | None,
    no_progress: bool,
    debug: bool,
) -> None:
    """ecrcrypt: ECR's encryption at rest on a local registry, with the aws CLI's commands.

    Exit status: 0 success, 252 usage error, 253 no registry at --dir, 254 service error.
    """
    try:
        blobs = BlobStoreChoice(s3_bucket=s3_bucket, s3_endpoint_url=s3_endpoint_url)
    except ValidationError as exc:
        raise click.UsageError(str(exc)) from None
    if debug:
        logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    ctx.obj = Settings(
        directory=directory,
        region=region,
        caller=caller,
        output=output,
        query=query,
        progress=not no_progress,
        metadata_url=metadata_url,
        kms=kms_choice,
        blobs=blobs,
    )


cli.add_command(kms)
cli.add_command(ecr)
cli.add_command(audit)
cli.add_command(iam)
for _policy_command in policy_commands.commands.values():  # ecr set-/get-/delete-repository-policy
    ecr.add_command(_policy_command)
# `aws cloudtrail lookup-events ...` with `aws` replaced by `ecrcrypt` works too.
cli.add_command(click.Group("cloudtrail", commands=audit.commands, hidden=True, help=audit.help))
cli.add_command(demo_command, "demo")
cli.add_command(serve)
ecr.add_command(get_login_password)  # aws ecr get-login-password
# ... and at the top, as the registry's own login helper (`ecrcrypt get-login-password`).
cli.add_command(
    click.Command(
        "get-login-password",
        callback=get_login_password.callback,
        params=get_login_password.params,
        help=get_login_password.help,
        hidden=True,
    )
)


@command(cli, "init", "Init")
@click.option(
    "--service-key-wrapping-key",
    default=None,
    help="with --kms aws and --metadata-url: the AWS KMS key (id, ARN or alias) the registry's AES256 service "
    "key is made and kept wrapped under, in the metadata",
)
def init(ctx: click.Context, service_key_wrapping_key: str | None) -> None:
    """Create the registry directory in --region (idempotent: an existing registry is left as it is)."""
    settings = settings_of(ctx)
    existed = settings.directory.is_dir() and any(settings.directory.iterdir())
    with open_registry(settings, create=True, wrapping_key=service_key_wrapping_key) as registry:
        response = {
            "registry": {
                "directory": str(settings.directory),
                "metadata": registry.metadata_location,  # never the URL's password
                "registryId": registry.registry_id,
                "region": registry.region,
                "kms": settings.kms,
                "blobs": settings.blobs.identity,
                "created": not existed,
            }
        }
    emit(ctx, response)


def _fail(message: str, status: int) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(status)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """The console script: run one command line and exit with the aws CLI's status codes."""
    args = hoist_global_options(sys.argv[1:] if argv is None else argv)
    try:
        cli.main(args=args, prog_name="ecrcrypt", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help() if exc.ctx else _USAGE)
        sys.exit(EXIT_USAGE)
    except (click.UsageError, QueryError) as exc:
        _fail(
            f"{_USAGE}\necrcrypt: error: {exc.format_message() if isinstance(exc, click.UsageError) else exc}",
            EXIT_USAGE,
        )
    except ServiceError as exc:
        _fail("\n" + exc.message(), EXIT_SERVICE)
    except ConfigurationError as exc:
        _fail(f"ecrcrypt: error: {exc}", EXIT_CONFIG)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        _fail("", 130)
    except click.ClickException as exc:
        _fail(f"ecrcrypt: error: {exc.format_message()}", EXIT_FAILED)
    except BrokenPipeError:
        # `ecrcrypt ... | head`: the reader left; not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    except Exception as exc:
        if type(exc).__module__.startswith("botocore") and type(exc).__name__ in _AWS_CONFIGURATION_ERRORS:
            # --kms aws found no credentials, Region or profile: the environment, as the aws CLI says (253).
            _fail(f"ecrcrypt: error: {exc} (boto3's configuration, used by --kms aws)", EXIT_CONFIG)
        # Not a service error nor a usage error (a file that cannot be written, a broken
        # registry): the aws CLI's 255, one line unless --debug asks for the traceback.
        if "--debug" in args:
            traceback.print_exc()
        _fail(f"ecrcrypt: error: {type(exc).__name__}: {exc}", EXIT_FAILED)
    sys.stdout.flush()
    sys.exit(0)
