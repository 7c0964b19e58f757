"""``ecrcrypt kms ...``: the aws CLI's ``kms`` commands that the local KMS implements.

Flag names and value forms are the aws CLI's (``--key-id``, ``--grant-id``,
``--encryption-context k=v,...``, blobs as base64 or ``fileb://``), and each command
prints its operation's response shape, built by the response type's ``to_api()``.

With ``--kms aws`` the same commands go to AWS KMS (``Boto3Kms`` over boto3's default session) and
need no registry: in the Region of the registry at ``--dir`` when there is one (which must have been
made for AWS KMS), else ``--region`` or boto3's. They never fall back on a local KMS.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from ecrcrypt.cli.errors import ConfigurationError, command
from ecrcrypt.cli.pagination import page_options, paginate
from ecrcrypt.cli.params import blob, load_text, structure
from ecrcrypt.cli.session import Settings, aws_region, check_kms, check_region, emit, open_registry, settings_of
from ecrcrypt.ecr.directory import MANIFEST, read_manifest
from ecrcrypt.ecr.registry_kms import AWS, aws_kms, check_kms_choice
from ecrcrypt.errors import RegistryStateError, ValidationError
from ecrcrypt.kms import GrantConstraints, Kms

__all__ = ["kms"]


@click.group()
def kms() -> None:
    """AWS Key Management Service: the registry's local KMS, or AWS KMS with --kms aws."""


def _aws_kms(settings: Settings) -> Kms:
    """AWS KMS in the Region of the registry at ``--dir`` (made for AWS KMS), or of ``--region``/boto3."""
    check_kms(settings)
    directory = settings.directory
    if not (directory / MANIFEST).exists():
        return aws_kms(aws_region(settings))
    try:
        manifest = read_manifest(directory)
        check_kms_choice(directory, manifest, settings.kms)
    except (RegistryStateError, ValidationError) as exc:
        raise ConfigurationError(f"{directory}: {exc}") from exc
    check_region(settings, manifest.region)
    return aws_kms(manifest.region)


def _with_kms(ctx: click.Context, call: Callable[[Kms], dict[str, Any] | None]) -> None:
    settings = settings_of(ctx)
    if settings.kms == AWS:
        response = call(_aws_kms(settings))
    else:
        with open_registry(settings) as registry:
            response = call(registry.kms())
    emit(ctx, response)


def _context(value: str | None, name: str = "--encryption-context") -> dict[str, str] | None:
    if value is None:
        return None
    parsed = structure(value, name)
    if not isinstance(parsed, dict) or not all(isinstance(v, str) for v in parsed.values()):
        raise click.BadParameter(f"{name} takes string pairs: k=v,k2=v2 or a JSON object")
    return parsed


key_id_option = click.option("--key-id", required=True, help="key id, key ARN, alias name or alias ARN")
context_option = click.option("--encryption-context", default=None, help="k=v,... or JSON (file:// too)")
tokens_option = click.option("--grant-tokens", multiple=True, help="grant tokens (space separated)")


@command(kms, "create-key", "CreateKey")
@click.option("--description", default="", help="key description")
@click.option("--key-spec", default="SYMMETRIC_DEFAULT", show_default=True)
@click.option("--key-usage", type=click.Choice(["ENCRYPT_DECRYPT"]), default="ENCRYPT_DECRYPT", show_default=True)
@click.option("--policy", default=None, help="the key policy (JSON text or file://); KMS's default without it")
@click.option("--bypass-policy-lockout-safety-check", is_flag=True)
def create_key(
    ctx: click.Context,
    description: str,
    key_spec: str,
    key_usage: str,
    policy: str | None,
    bypass_policy_lockout_safety_check: bool,
) -> None:
    """CreateKey: a customer managed symmetric encryption key."""
    text = None if policy is None else load_text(policy)
    _with_kms(
        ctx,
        lambda k: {
            "KeyMetadata": k.create_key(
                description=description,
                key_spec=key_spec,
                policy=text,
                bypass_policy_lockout_safety_check=bypass_policy_lockout_safety_check,
            ).to_api()
        },
    )


@command(kms, "get-key-policy", "GetKeyPolicy")
@key_id_option
@click.option("--policy-name", default="default", show_default=True)
def get_key_policy(ctx: click.Context, key_id: str, policy_name: str) -> None:
    """GetKeyPolicy: the key policy document as written (`--query Policy --output text` for the JSON)."""
    _with_kms(ctx, lambda k: {"Policy": k.get_key_policy(key_id=key_id, policy_name=policy_name)})


@command(kms, "put-key-policy", "PutKeyPolicy")
@key_id_option
@click.option("--policy", required=True, help="the key policy: JSON text or file://")
@click.option("--policy-name", default="default", show_default=True)
@click.option("--bypass-policy-lockout-safety-check", is_flag=True)
def put_key_policy(
    ctx: click.Context, key_id: str, policy: str, policy_name: str, bypass_policy_lockout_safety_check: bool
) -> None:
    """PutKeyPolicy: replace the key policy (prints nothing)."""
    text = load_text(policy)
    _with_kms(
        ctx,
        lambda k: k.put_key_policy(
            key_id=key_id,
            policy=text,
            policy_name=policy_name,
            bypass_policy_lockout_safety_check=bypass_policy_lockout_safety_check,
        ),
    )


@command(kms, "list-key-policies", "ListKeyPolicies")
@key_id_option
@page_options()
def list_key_policies(ctx: click.Context, key_id: str, **paging: Any) -> None:
    """ListKeyPolicies: the key's policy names (``default``)."""
    _with_kms(
        ctx,
        lambda k: paginate(
            lambda n, m: k.list_key_policies(key_id=key_id, limit=n, marker=m).to_api(), "PolicyNames", **paging
        ),
    )


@command(kms, "describe-key", "DescribeKey")
@key_id_option
@tokens_option
def describe_key(ctx: click.Context, key_id: str, grant_tokens: tuple[str, ...]) -> None:
    """DescribeKey: the key's metadata, in every key state."""
    _with_kms(ctx, lambda k: {"KeyMetadata": k.describe_key(key_id=key_id, grant_tokens=grant_tokens).to_api()})


@command(kms, "list-keys", "ListKeys")
@page_options()
def list_keys(ctx: click.Context, **paging: Any) -> None:
    """ListKeys: the keys of the account and Region (every page unless --max-items or --no-paginate)."""
    _with_kms(ctx, lambda k: paginate(lambda n, m: k.list_keys(limit=n, marker=m).to_api(), "Keys", **paging))


@command(kms, "create-alias", "CreateAlias")
@click.option("--alias-name", required=True, help="alias/<name>")
@click.option("--target-key-id", required=True, help="key id or key ARN")
def create_alias(ctx: click.Context, alias_name: str, target_key_id: str) -> None:
    """CreateAlias (prints nothing, as the aws CLI)."""
    _with_kms(ctx, lambda k: k.create_alias(alias_name=alias_name, target_key_id=target_key_id))


@command(kms, "update-alias", "UpdateAlias")
@click.option("--alias-name", required=True, help="alias/<name>")
@click.option("--target-key-id", required=True, help="key id or key ARN")
def update_alias(ctx: click.Context, alias_name: str, target_key_id: str) -> None:
    """UpdateAlias: point an alias at another key (prints nothing)."""
    _with_kms(ctx, lambda k: k.update_alias(alias_name=alias_name, target_key_id=target_key_id))


@command(kms, "delete-alias", "DeleteAlias")
@click.option("--alias-name", required=True, help="alias/<name>")
def delete_alias(ctx: click.Context, alias_name: str) -> None:
    """DeleteAlias (prints nothing)."""
    _with_kms(ctx, lambda k: k.delete_alias(alias_name=alias_name))


@command(kms, "list-aliases", "ListAliases")
@click.option("--key-id", default=None, help="only this key's aliases")
@page_options()
def list_aliases(ctx: click.Context, key_id: str | None, **paging: Any) -> None:
    """ListAliases (every page unless --max-items or --no-paginate)."""
    _with_kms(
        ctx,
        lambda k: paginate(lambda n, m: k.list_aliases(key_id=key_id, limit=n, marker=m).to_api(), "Aliases", **paging),
    )


@command(kms, "enable-key", "EnableKey")
@key_id_option
def enable_key(ctx: click.Context, key_id: str) -> None:
    """EnableKey."""
    _with_kms(ctx, lambda k: k.enable_key(key_id=key_id))


@command(kms, "disable-key", "DisableKey")
@key_id_option
def disable_key(ctx: click.Context, key_id: str) -> None:
    """DisableKey."""
    _with_kms(ctx, lambda k: k.disable_key(key_id=key_id))


@command(kms, "schedule-key-deletion", "ScheduleKeyDeletion")
@key_id_option
@click.option("--pending-window-in-days", type=int, default=30, show_default=True)
def schedule_key_deletion(ctx: click.Context, key_id: str, pending_window_in_days: int) -> None:
    """ScheduleKeyDeletion (7-30 days)."""
    _with_kms(
        ctx,
        lambda k: k.schedule_key_deletion(key_id=key_id, pending_window_in_days=pending_window_in_days).to_api(),
    )


@command(kms, "cancel-key-deletion", "CancelKeyDeletion")
@key_id_option
def cancel_key_deletion(ctx: click.Context, key_id: str) -> None:
    """CancelKeyDeletion (the key becomes Disabled)."""
    _with_kms(ctx, lambda k: k.cancel_key_deletion(key_id=key_id).to_api())


@command(kms, "enable-key-rotation", "EnableKeyRotation")
@key_id_option
@click.option("--rotation-period-in-days", type=int, default=None)
def enable_key_rotation(ctx: click.Context, key_id: str, rotation_period_in_days: int | None) -> None:
    """EnableKeyRotation (90-2560 days, default 365)."""
    _with_kms(
        ctx,
        lambda k: k.enable_key_rotation(key_id=key_id, rotation_period_in_days=rotation_period_in_days),
    )


@command(kms, "disable-key-rotation", "DisableKeyRotation")
@key_id_option
def disable_key_rotation(ctx: click.Context, key_id: str) -> None:
    """DisableKeyRotation."""
    _with_kms(ctx, lambda k: k.disable_key_rotation(key_id=key_id))


@command(kms, "rotate-key-on-demand", "RotateKeyOnDemand")
@key_id_option
def rotate_key_on_demand(ctx: click.Context, key_id: str) -> None:
    """RotateKeyOnDemand: new key material now; earlier ciphertexts still decrypt."""
    _with_kms(ctx, lambda k: k.rotate_key_on_demand(key_id=key_id).to_api())


@command(kms, "get-key-rotation-status", "GetKeyRotationStatus")
@key_id_option
def get_key_rotation_status(ctx: click.Context, key_id: str) -> None:
    """GetKeyRotationStatus."""
    _with_kms(ctx, lambda k: k.get_key_rotation_status(key_id=key_id).to_api())


def _data_key_options(fn: Callable[..., None]) -> Callable[..., None]:
    """The flags GenerateDataKey and GenerateDataKeyWithoutPlaintext share (botocore: the same request members)."""
    for option in reversed(
        (
            key_id_option,
            click.option("--number-of-bytes", type=int, default=None),
            click.option("--key-spec", type=click.Choice(["AES_256", "AES_128"]), default=None),
            context_option,
            tokens_option,
        )
    ):
        fn = option(fn)
    return fn


def _generate(ctx: click.Context, with_plaintext: bool, encryption_context: str | None, **request: Any) -> None:
    """Both data-key commands: one request, answered with or without the plaintext key."""
    context = _context(encryption_context)

    def call(k: Kms) -> dict[str, Any]:
        generate = k.generate_data_key if with_plaintext else k.generate_data_key_without_plaintext
        return generate(encryption_context=context, **request).to_api()

    _with_kms(ctx, call)


@command(kms, "generate-data-key", "GenerateDataKey")
@_data_key_options
def generate_data_key(ctx: click.Context, **request: Any) -> None:
    """GenerateDataKey: a data key in plaintext (base64) and encrypted under the key."""
    _generate(ctx, True, **request)


@command(kms, "generate-data-key-without-plaintext", "GenerateDataKeyWithoutPlaintext")
@_data_key_options
def generate_data_key_without_plaintext(ctx: click.Context, **request: Any) -> None:
    """GenerateDataKeyWithoutPlaintext: only the encrypted data key (what ECR asks for on push)."""
    _generate(ctx, False, **request)


@command(kms, "re-encrypt", "ReEncrypt")
@click.option("--ciphertext-blob", required=True, help="base64 text, or fileb://<path> for raw bytes")
@click.option("--destination-key-id", required=True)
@click.option("--source-encryption-context", default=None, help="k=v,... or JSON (file:// too)")
@click.option("--destination-encryption-context", default=None, help="k=v,... or JSON (file:// too)")
@click.option("--source-key-id", default=None)
@tokens_option
def re_encrypt(
    ctx: click.Context,
    ciphertext_blob: str,
    destination_key_id: str,
    source_encryption_context: str | None,
    destination_encryption_context: str | None,
    source_key_id: str | None,
    grant_tokens: tuple[str, ...],
) -> None:
    """ReEncrypt: decrypt under the source key and encrypt under the destination, inside KMS."""
    data = blob(ciphertext_blob, "--ciphertext-blob")
    source = _context(source_encryption_context, "--source-encryption-context")
    destination = _context(destination_encryption_context, "--destination-encryption-context")
    _with_kms(
        ctx,
        lambda k: k.re_encrypt(
            ciphertext_blob=data,
            destination_key_id=destination_key_id,
            source_encryption_context=source,
            destination_encryption_context=destination,
            source_key_id=source_key_id,
            grant_tokens=grant_tokens,
        ).to_api(),
    )


@command(kms, "encrypt", "Encrypt")
@key_id_option
@click.option("--plaintext", required=True, help="base64 text, or fileb://<path> for raw bytes")
@context_option
@tokens_option
def encrypt(
    ctx: click.Context, key_id: str, plaintext: str, encryption_context: str | None, grant_tokens: tuple[str, ...]
) -> None:
    """Encrypt up to 4096 bytes."""
    data, context = blob(plaintext, "--plaintext"), _context(encryption_context)
    _with_kms(
        ctx,
        lambda k: k.encrypt(
            key_id=key_id, plaintext=data, encryption_context=context, grant_tokens=grant_tokens
        ).to_api(),
    )


@command(kms, "decrypt", "Decrypt")
@click.option("--ciphertext-blob", required=True, help="base64 text, or fileb://<path> for raw bytes")
@click.option("--key-id", default=None)
@context_option
@tokens_option
def decrypt(
    ctx: click.Context,
    ciphertext_blob: str,
    key_id: str | None,
    encryption_context: str | None,
    grant_tokens: tuple[str, ...],
) -> None:
    """Decrypt a blob made by Encrypt or GenerateDataKey (Plaintext prints in base64)."""
    data, context = blob(ciphertext_blob, "--ciphertext-blob"), _context(encryption_context)
    _with_kms(
        ctx,
        lambda k: k.decrypt(
            ciphertext_blob=data, key_id=key_id, encryption_context=context, grant_tokens=grant_tokens
        ).to_api(),
    )


@command(kms, "create-grant", "CreateGrant")
@key_id_option
@click.option("--grantee-principal", default=None, help="an AWS principal's ARN (or --grantee-service-principal)")
@click.option("--operations", multiple=True, required=True, help="e.g. --operations Decrypt GenerateDataKey")
@click.option("--retiring-principal", default=None)
@click.option("--constraints", default=None, help="EncryptionContextSubset={k=v}, SourceArn=<ARN>, or JSON")
@click.option("--grantee-service-principal", default=None, help="a service principal; needs a SourceArn constraint")
@click.option("--retiring-service-principal", default=None)
@click.option("--name", default=None)
@tokens_option
def create_grant(
    ctx: click.Context,
    key_id: str,
    grantee_principal: str,
    operations: tuple[str, ...],
    retiring_principal: str | None,
    constraints: str | None,
    name: str | None,
    grant_tokens: tuple[str, ...],
    grantee_service_principal: str | None,
    retiring_service_principal: str | None,
) -> None:
    """CreateGrant: to --grantee-principal, or to --grantee-service-principal with a SourceArn constraint."""
    ops = [op for value in operations for op in _list_items(value, "--operations")]
    parsed = None if constraints is None else GrantConstraints.from_api(structure(constraints, "--constraints"))
    _with_kms(
        ctx,
        lambda k: k.create_grant(
            key_id=key_id,
            grantee_principal=grantee_principal,
            operations=ops,
            retiring_principal=retiring_principal,
            constraints=parsed,
            name=name,
            grant_tokens=grant_tokens,
            grantee_service_principal=grantee_service_principal,
            retiring_service_principal=retiring_service_principal,
        ).to_api(),
    )


def _list_items(value: str, name: str) -> list[str]:
    """One item, or a JSON list of strings (the aws CLI accepts both)."""
    if value.startswith("["):
        parsed = structure(value, name)
        if not isinstance(parsed, list) or not all(isinstance(v, str) for v in parsed):
            raise click.BadParameter(f"{name} takes strings")
        return parsed
    return [value]


@command(kms, "list-grants", "ListGrants")
@key_id_option
@click.option("--grant-id", default=None)
@click.option("--grantee-principal", default=None)
@click.option("--grantee-service-principal", default=None)
@page_options()
def list_grants(
    ctx: click.Context,
    key_id: str,
    grant_id: str | None,
    grantee_principal: str | None,
    grantee_service_principal: str | None,
    **paging: Any,
) -> None:
    """ListGrants on a key, in every key state (every page unless --max-items or --no-paginate)."""

    def page(k: Kms, n: int | None, m: str | None) -> dict[str, Any]:
        return k.list_grants(
            key_id=key_id,
            grant_id=grant_id,
            grantee_principal=grantee_principal,
            grantee_service_principal=grantee_service_principal,
            limit=n,
            marker=m,
        ).to_api()

    _with_kms(ctx, lambda k: paginate(lambda n, m: page(k, n, m), "Grants", **paging))


@command(kms, "list-retirable-grants", "ListRetirableGrants")
@click.option("--retiring-principal", default=None)
@click.option("--retiring-service-principal", default=None)
@page_options()
def list_retirable_grants(
    ctx: click.Context, retiring_principal: str | None, retiring_service_principal: str | None, **paging: Any
) -> None:
    """ListRetirableGrants of --retiring-principal or --retiring-service-principal (every page unless --max-items)."""

    def page(k: Kms, n: int | None, m: str | None) -> dict[str, Any]:
        return k.list_retirable_grants(
            retiring_principal=retiring_principal,
            retiring_service_principal=retiring_service_principal,
            limit=n,
            marker=m,
        ).to_api()

    _with_kms(ctx, lambda k: paginate(lambda n, m: page(k, n, m), "Grants", **paging))


@command(kms, "retire-grant", "RetireGrant")
@click.option("--grant-token", default=None)
@click.option("--key-id", default=None, help="key ARN (with --grant-id)")
@click.option("--grant-id", default=None)
def retire_grant(ctx: click.Context, grant_token: str | None, key_id: str | None, grant_id: str | None) -> None:
    """RetireGrant: by --grant-token, or by --key-id and --grant-id (prints nothing)."""
    if grant_token is None and (key_id is None or grant_id is None):
        raise click.UsageError("retire-grant needs --grant-token, or --key-id and --grant-id")
    _with_kms(ctx, lambda k: k.retire_grant(grant_token=grant_token, key_id=key_id, grant_id=grant_id))


@command(kms, "revoke-grant", "RevokeGrant")
@key_id_option
@click.option("--grant-id", required=True)
def revoke_grant(ctx: click.Context, key_id: str, grant_id: str) -> None:
    """RevokeGrant (prints nothing)."""
    _with_kms(ctx, lambda k: k.revoke_grant(key_id=key_id, grant_id=grant_id))
