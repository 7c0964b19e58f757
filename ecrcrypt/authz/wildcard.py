"""AWS policy wildcards: ``*`` (any run of characters) and ``?`` (exactly one).

Patterns are translated to a regular expression once, when a policy is parsed, so
that matching a request costs one ``fullmatch``. Everything except the two
wildcards is literal (``[``, ``.``, ``\\`` have no special meaning in IAM).
"""

from __future__ import annotations

import re

import attrs

__all__ = ["Wildcard", "wildcard_regex"]


def wildcard_regex(pattern: str, *, run: str = ".*", one: str = ".") -> str:
    """The regular expression source that matches what ``pattern`` matches, whole-string.

    ``run`` and ``one`` replace ``*`` and ``?``; ARN components use ``[^:]*`` and
    ``[^:]`` so that a wildcard stays inside its component.
    """
    parts: list[str] = []
    for char in pattern:
        if char == "*":
            parts.append(run)
        elif char == "?":
            parts.append(one)
        else:
            parts.append(re.escape(char))
    return "".join(parts)


def _compile(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    # DOTALL: a wildcard in AWS matches any character, newline included.
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.compile(wildcard_regex(pattern), flags)


@attrs.frozen(kw_only=True)
class Wildcard:
    """One compiled pattern; ``ignore_case`` for actions, which AWS compares case-insensitively."""

    pattern: str = attrs.field(validator=attrs.validators.instance_of(str))
    ignore_case: bool = False
    _regex: re.Pattern[str] = attrs.field(init=False, repr=False, eq=False)

    @_regex.default
    def _compile_regex(self) -> re.Pattern[str]:
        return _compile(self.pattern, self.ignore_case)

    @property
    def is_literal(self) -> bool:
        return "*" not in self.pattern and "?" not in self.pattern

    def matches(self, value: str) -> bool:
        return self._regex.fullmatch(value) is not None
