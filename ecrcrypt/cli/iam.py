"""``ecrcrypt iam ...``: the aws CLI's ``iam`` commands over the registry's local IAM model.

Users, roles (with trust policies), inline and managed policies live in the registry's
local KMS store (``kms.local.iam``), where the KMS and the registry read them. Flag
names are the aws CLI's (botocore's IAM members: ``--user-name``, ``--policy-document``,
``--assume-role-policy-document``, ``--policy-arn``, ...); documents are JSON text or
``file://path``; each command prints its operation's response (``{"User": {...}}``,
``{"PolicyNames": [...]}``), the policy documents decoded as boto3 decodes them.

Every call is the ``--caller``'s (default: the registry account's root): it reaches that
principal's account and needs the operation's ``iam:`` action in its identity policies,
as on AWS (``LocalIam.as_caller``). The list operations print every item (no paging:
a local registry holds few entities).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from ecrcrypt.cli.errors import ConfigurationError, command
from ecrcrypt.cli.params import load_text
from ecrcrypt.cli.session import check_region, emit, require_registry, settings_of
from ecrcrypt.ecr.directory import open_directory
from ecrcrypt.ecr.registry_kms import AWS
from ecrcrypt.errors import RegistryStateError
from ecrcrypt.kms.local.iam import AttachedPolicy, InlinePolicy, LocalIam

__all__ = ["iam"]


@click.group()
def iam() -> None:
    """AWS Identity and Access Management: users, roles and their policies, in the registry's local KMS."""


@contextmanager
def _local_iam(ctx: click.Context) -> Iterator[LocalIam]:
    """The IAM of the ``--caller``'s account, acting as the caller, in the registry of ``--dir``."""
    settings = settings_of(ctx)
    if settings.kms == AWS:
        raise ConfigurationError(
            "ecrcrypt iam manages the local KMS's IAM model; with --kms aws the principals and policies are AWS "
            "IAM's (aws iam ...)"
        )
    require_registry(settings.directory)
    try:
        opened = open_directory(settings.directory, metadata=settings.metadata_url)
    except RegistryStateError as exc:
        raise ConfigurationError(f"{settings.directory}: {exc}") from exc
    try:
        check_region(settings, opened.manifest.region)
        if opened.local_kms is None:
            raise ConfigurationError(
                f"the registry in {str(settings.directory)!r} uses an outside KMS: its IAM is that KMS's account's"
            )
        yield opened.local_kms.iam.as_caller(settings.caller or opened.local_kms.root_principal)
    finally:
        opened.close()


def _with_iam(ctx: click.Context, call: Callable[[LocalIam], dict[str, Any] | None]) -> None:
    with _local_iam(ctx) as local:
        response = call(local)
    emit(ctx, response)


user_option = click.option("--user-name", required=True, help="the user's name")
role_option = click.option("--role-name", required=True, help="the role's name")
policy_name_option = click.option("--policy-name", required=True, help="the policy's name")
document_option = click.option("--policy-document", required=True, help="the policy: JSON text or file://")
policy_arn_option = click.option("--policy-arn", required=True, help="the managed policy's ARN")
path_option = click.option("--path", default="/", show_default=True, help="the entity's path")
path_prefix_option = click.option("--path-prefix", default="/", show_default=True, help="only entities under it")


# -- users --------------------------------------------------------------------------------
@command(iam, "create-user", "CreateUser")
@user_option
@path_option
def create_user(ctx: click.Context, user_name: str, path: str) -> None:
    """CreateUser: a user with no policies (it may do nothing until one is put or attached)."""
    _with_iam(ctx, lambda i: {"User": i.create_user(user_name=user_name, path=path).to_api()})


@command(iam, "get-user", "GetUser")
@user_option
def get_user(ctx: click.Context, user_name: str) -> None:
    """GetUser."""
    _with_iam(ctx, lambda i: {"User": i.get_user(user_name=user_name).to_api()})


@command(iam, "list-users", "ListUsers")
@path_prefix_option
def list_users(ctx: click.Context, path_prefix: str) -> None:
    """ListUsers: the users of the caller's account."""
    _with_iam(ctx, lambda i: {"Users": [u.to_api() for u in i.list_users(path_prefix=path_prefix)]})


@command(iam, "delete-user", "DeleteUser")
@user_option
def delete_user(ctx: click.Context, user_name: str) -> None:
    """DeleteUser (its policies must be deleted or detached first; prints nothing)."""
    _with_iam(ctx, lambda i: i.delete_user(user_name=user_name))


# -- roles --------------------------------------------------------------------------------
@command(iam, "create-role", "CreateRole")
@role_option
@click.option("--assume-role-policy-document", required=True, help="the trust policy: JSON text or file://")
@path_option
def create_role(ctx: click.Context, role_name: str, assume_role_policy_document: str, path: str) -> None:
    """CreateRole: a role its trust policy lets principals assume."""
    trust = load_text(assume_role_policy_document)
    _with_iam(
        ctx,
        lambda i: {"Role": i.create_role(role_name=role_name, assume_role_policy_document=trust, path=path).to_api()},
    )


@command(iam, "get-role", "GetRole")
@role_option
def get_role(ctx: click.Context, role_name: str) -> None:
    """GetRole (with its trust policy)."""
    _with_iam(ctx, lambda i: {"Role": i.get_role(role_name=role_name).to_api()})


@command(iam, "list-roles", "ListRoles")
@path_prefix_option
def list_roles(ctx: click.Context, path_prefix: str) -> None:
    """ListRoles: the roles of the caller's account."""
    _with_iam(ctx, lambda i: {"Roles": [r.to_api() for r in i.list_roles(path_prefix=path_prefix)]})


@command(iam, "delete-role", "DeleteRole")
@role_option
def delete_role(ctx: click.Context, role_name: str) -> None:
    """DeleteRole (its policies must be deleted or detached first; prints nothing)."""
    _with_iam(ctx, lambda i: i.delete_role(role_name=role_name))


# -- inline and attached policies: the same seven commands for users and for roles --------------
def _policy_commands(kind: str) -> None:
    """``put-/get-/list-/delete-<kind>-policy`` and ``attach-/detach-/list-attached-<kind>-policies``."""
    title, flag, arg = kind.capitalize(), f"--{kind}-name", f"{kind}_name"
    name_option = click.option(flag, arg, required=True, help=f"the {kind}'s name")

    def call(method: str, **params: Any) -> Callable[[LocalIam], Any]:
        return lambda i: getattr(i, method)(**params)

    @command(iam, f"put-{kind}-policy", f"Put{title}Policy")
    @name_option
    @policy_name_option
    @document_option
    def put_policy(ctx: click.Context, policy_name: str, policy_document: str, **name: str) -> None:
        text = load_text(policy_document)
        _with_iam(ctx, call(f"put_{kind}_policy", policy_name=policy_name, policy_document=text, **name))

    @command(iam, f"get-{kind}-policy", f"Get{title}Policy")
    @name_option
    @policy_name_option
    def get_policy(ctx: click.Context, policy_name: str, **name: str) -> None:
        read = call(f"get_{kind}_policy", policy_name=policy_name, **name)
        _with_iam(
            ctx,
            lambda i: InlinePolicy(
                owner_kind=kind, owner_name=name[arg], policy_name=policy_name, policy_document=read(i)
            ).to_api(),
        )

    @command(iam, f"list-{kind}-policies", f"List{title}Policies")
    @name_option
    def list_policies(ctx: click.Context, **name: str) -> None:
        names = call(f"list_{kind}_policies", **name)
        _with_iam(ctx, lambda i: {"PolicyNames": names(i)})

    @command(iam, f"delete-{kind}-policy", f"Delete{title}Policy")
    @name_option
    @policy_name_option
    def delete_policy(ctx: click.Context, policy_name: str, **name: str) -> None:
        _with_iam(ctx, call(f"delete_{kind}_policy", policy_name=policy_name, **name))

    @command(iam, f"attach-{kind}-policy", f"Attach{title}Policy")
    @name_option
    @policy_arn_option
    def attach_policy(ctx: click.Context, policy_arn: str, **name: str) -> None:
        _with_iam(ctx, call(f"attach_{kind}_policy", policy_arn=policy_arn, **name))

    @command(iam, f"detach-{kind}-policy", f"Detach{title}Policy")
    @name_option
    @policy_arn_option
    def detach_policy(ctx: click.Context, policy_arn: str, **name: str) -> None:
        _with_iam(ctx, call(f"detach_{kind}_policy", policy_arn=policy_arn, **name))

    @command(iam, f"list-attached-{kind}-policies", f"ListAttached{title}Policies")
    @name_option
    def list_attached(ctx: click.Context, **name: str) -> None:
        arns = call(f"list_attached_{kind}_policies", **name)
        _with_iam(ctx, lambda i: {"AttachedPolicies": [AttachedPolicy(arn).to_api() for arn in arns(i)]})

    docs = {
        put_policy: f"Put{title}Policy: add or replace an inline policy of a {kind} (prints nothing).",
        get_policy: f"Get{title}Policy: the inline policy's document.",
        list_policies: f"List{title}Policies: the names of the {kind}'s inline policies.",
        delete_policy: f"Delete{title}Policy (prints nothing).",
        attach_policy: f"Attach{title}Policy: attach a managed policy (prints nothing).",
        detach_policy: f"Detach{title}Policy (prints nothing).",
        list_attached: f"ListAttached{title}Policies: the managed policies attached to the {kind}.",
    }
    for cmd, text in docs.items():
        cmd.help = text


_policy_commands("user")
_policy_commands("role")


# -- managed policies ---------------------------------------------------------------------
@command(iam, "create-policy", "CreatePolicy")
@policy_name_option
@document_option
@path_option
def create_policy(ctx: click.Context, policy_name: str, policy_document: str, path: str) -> None:
    """CreatePolicy: a customer managed policy, to attach to users and roles."""
    text = load_text(policy_document)
    _with_iam(
        ctx,
        lambda i: {"Policy": i.create_policy(policy_name=policy_name, policy_document=text, path=path).to_api()},
    )


@command(iam, "get-policy", "GetPolicy")
@policy_arn_option
def get_policy(ctx: click.Context, policy_arn: str) -> None:
    """GetPolicy (its metadata; the document is version v1's)."""
    _with_iam(ctx, lambda i: {"Policy": i.get_policy(policy_arn=policy_arn).to_api()})


@command(iam, "list-policies", "ListPolicies")
@click.option("--scope", type=click.Choice(["All", "AWS", "Local"]), default="All", show_default=True)
@click.option("--only-attached", is_flag=True, help="only policies attached to a user or role")
@path_prefix_option
def list_policies(ctx: click.Context, scope: str, only_attached: bool, path_prefix: str) -> None:
    """ListPolicies: the account's customer managed policies (AWS managed policies are not modelled)."""
    _with_iam(
        ctx,
        lambda i: {
            "Policies": [
                p.to_api() for p in i.list_policies(scope=scope, only_attached=only_attached, path_prefix=path_prefix)
            ]
        },
    )


@command(iam, "delete-policy", "DeletePolicy")
@policy_arn_option
def delete_policy(ctx: click.Context, policy_arn: str) -> None:
    """DeletePolicy (detach it first; prints nothing)."""
    _with_iam(ctx, lambda i: i.delete_policy(policy_arn=policy_arn))
