"""Small validators shared by the value objects (private)."""

from __future__ import annotations

import re
from typing import Any

from ecrcrypt.errors import ValidationError


def matches(pattern: re.Pattern[str], rule: str, *, error: type[ValidationError] = ValidationError) -> Any:
    """An attrs validator: the value is a str that fully matches ``pattern``."""

    def check(instance: object, attribute: Any, value: object) -> None:
        if not isinstance(value, str):
            raise error(f"{type(instance).__name__}.{attribute.name} must be a str, not {type(value).__name__}")
        if pattern.fullmatch(value) is None:
            raise error(f"{type(instance).__name__}.{attribute.name} {value!r} is invalid: {rule}")

    return check


def length_between(low: int, high: int, *, error: type[ValidationError] = ValidationError) -> Any:
    def check(instance: object, attribute: Any, value: str) -> None:
        if not low <= len(value) <= high:
            raise error(
                f"{type(instance).__name__}.{attribute.name} must be {low} to {high} characters long, got {len(value)}"
            )

    return check
