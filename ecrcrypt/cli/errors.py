"""How the command line fails: the aws CLI's messages and exit statuses.

Scripts written for the aws CLI branch on its return codes (AWS CLI user guide,
"Command line return codes"): 252 for a command line that does not parse, 253 for an
invalid environment or configuration (here: ``--dir`` names no registry), 254 for an
error the service returned, 255 for anything else. A service error prints as
``An error occurred (<Code>) when calling the <Operation> operation: <message>`` on
stderr, the code being the AWS error code the library's exception carries.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import click

from ecrcrypt.errors import EcrCryptError

__all__ = [
    "EXIT_CONFIG",
    "EXIT_FAILED",
    "EXIT_SERVICE",
    "EXIT_USAGE",
    "ConfigurationError",
    "ServiceError",
    "command",
    "operation",
]

EXIT_USAGE = 252
EXIT_CONFIG = 253
EXIT_SERVICE = 254
EXIT_FAILED = 255

OPERATION = "ecrcrypt.operation"
P = ParamSpec("P")
R = TypeVar("R")


class ServiceError(Exception):
    """A library error, tagged with the operation the command called."""

    def __init__(self, error: EcrCryptError, operation: str) -> None:
        super().__init__(str(error))
        self.error = error
        self.operation = operation

    def message(self) -> str:
        lines = [f"An error occurred ({self.error.code}) when calling the {self.operation} operation: {self.error}"]
        # Notes carry what a failure left behind (e.g. the ids of grants not retired).
        lines.extend(getattr(self.error, "__notes__", ()))
        return "\n".join(lines)


class ConfigurationError(Exception):
    """The environment is not usable: e.g. ``--dir`` names a directory that is no registry."""


def operation(name: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Name the service operation a command calls, for its error message and table title."""

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            ctx = click.get_current_context(silent=True)
            if ctx is not None:
                ctx.meta[OPERATION] = name
            try:
                return fn(*args, **kwargs)
            except EcrCryptError as exc:
                raise ServiceError(exc, name) from exc

        return wrapper

    return decorate


def command(group: click.Group, name: str, op: str) -> Callable[[Callable[..., None]], click.Command]:
    """``group``'s command ``name`` calling the service operation ``op``; it receives the click context."""

    def decorate(fn: Callable[..., None]) -> click.Command:
        wrapped: Any = click.pass_context(operation(op)(fn))
        return group.command(name)(wrapped)

    return decorate
