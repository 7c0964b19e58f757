"""``ecrcrypt ecr set-repository-policy|get-repository-policy|delete-repository-policy``.

The aws CLI's flags (``--repository-name``, ``--policy-text`` as JSON text or ``file://``,
``--force``) and ECR's response shape (``registryId``, ``repositoryName``, ``policyText``,
from ``RepositoryPolicy.to_api()``). The commands are the ``--caller``'s requests: each
needs its ``ecr:`` action on the repository (identity policy or the repository policy).
Without ``--force`` a policy that would lock the caller out of setting another one is
refused, as ECR does. They live in a group of their own, added to ``ecr`` by ``cli.main``.
"""

from __future__ import annotations

import click

from ecrcrypt.cli.errors import command
from ecrcrypt.cli.params import load_text
from ecrcrypt.cli.session import emit, open_registry, settings_of

__all__ = ["policy_commands"]

policy_commands = click.Group("repository-policy", help="ECR repository policies (commands of `ecrcrypt ecr`).")
name_option = click.option("--repository-name", required=True, help="the repository's name")


@command(policy_commands, "set-repository-policy", "SetRepositoryPolicy")
@name_option
@click.option("--policy-text", required=True, help="the repository policy: JSON text or file://")
@click.option("--force", is_flag=True, help="set it even if it would stop you from setting another one")
def set_repository_policy(ctx: click.Context, repository_name: str, policy_text: str, force: bool) -> None:
    """SetRepositoryPolicy: replace the repository's policy (who may push, pull, ... from any account)."""
    text = load_text(policy_text)
    with open_registry(settings_of(ctx)) as registry:
        response = registry.set_repository_policy(repository_name, text, force=force).to_api()
    emit(ctx, response)


@command(policy_commands, "get-repository-policy", "GetRepositoryPolicy")
@name_option
def get_repository_policy(ctx: click.Context, repository_name: str) -> None:
    """GetRepositoryPolicy (RepositoryPolicyNotFoundException when it has none)."""
    with open_registry(settings_of(ctx)) as registry:
        response = registry.get_repository_policy(repository_name).to_api()
    emit(ctx, response)


@command(policy_commands, "delete-repository-policy", "DeleteRepositoryPolicy")
@name_option
def delete_repository_policy(ctx: click.Context, repository_name: str) -> None:
    """DeleteRepositoryPolicy: prints the policy that was deleted."""
    with open_registry(settings_of(ctx)) as registry:
        response = registry.delete_repository_policy(repository_name).to_api()
    emit(ctx, response)
