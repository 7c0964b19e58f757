"""botocore's ClientError at the edge: read its code, turn it into ecrcrypt's exception (private).

Duck-typed on ``exc.response["Error"]`` so that no botocore import is needed here.
"""

from __future__ import annotations

from typing import Any

from ecrcrypt.errors import EcrCryptError, error_for_code

__all__ = ["client_error_code", "client_error_message", "translate_client_error"]


def client_error_code(exc: BaseException) -> str | None:
    """The AWS error code of a botocore ``ClientError`` (``None`` for any other exception)."""
    response: Any = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    error = response.get("Error")
    if not isinstance(error, dict):
        return None
    code = error.get("Code")
    return str(code) if code is not None else None


def client_error_message(exc: BaseException) -> str:
    response: Any = getattr(exc, "response", None)
    if isinstance(response, dict) and isinstance(response.get("Error"), dict):
        message = response["Error"].get("Message")
        if message:
            return str(message)
    return str(exc)


def translate_client_error(exc: BaseException) -> EcrCryptError | None:
    """The ecrcrypt exception for a ``ClientError`` (keeping AWS's code and message), else ``None``.

    Raise it ``from exc`` so the botocore error stays attached as ``__cause__``.
    """
    code = client_error_code(exc)
    if code is None:
        return None
    return error_for_code(code, client_error_message(exc))
