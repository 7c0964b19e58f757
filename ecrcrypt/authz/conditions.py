"""The ``Condition`` element: operators, set qualifiers and ``IfExists``, compiled once.

Semantics follow the IAM User Guide, "IAM JSON policy elements: Condition
operators" and "Conditions with multiple context keys or values"
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html,
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_multi-value-conditions.html):

* operators in a block, and keys under one operator, are ANDed; the values listed
  for one key are ORed (NORed for a negated operator);
* a key missing from the request makes a positive operator false and a negated
  one (``StringNotEquals``, ``ArnNotLike`` ...) true; ``...IfExists`` is true when
  the key is missing; ``Null`` tests presence itself;
* ``ForAllValues:`` is true when the key is missing or empty (every one of no
  values matches), ``ForAnyValue:`` is false then;
* condition key names are case-insensitive, so they are folded to lower case here
  and in :class:`~ecrcrypt.authz.request.Request`.

A plain (unqualified) operator on a multivalued request value holds when any
value satisfies it (for a negated operator: when no value matches any policy
value), which is how IAM treats a single-valued operator on a list.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TypeAlias

import attrs

from ecrcrypt.authz.errors import MalformedPolicyDocumentError
from ecrcrypt.authz.wildcard import wildcard_regex

__all__ = [
    "Condition",
    "ConditionClause",
    "ContextValue",
    "Qualifier",
    "parse_condition",
]

ContextValue: TypeAlias = str | list[str] | bool | int
"""What a request context holds for one key: a scalar, or a list for a multivalued key."""

_ValueTest: TypeAlias = Callable[[str], bool]

_KEY = re.compile(r"[A-Za-z0-9-]+:[^\s]+")
_ENCRYPTION_CONTEXT_PREFIX = "kms:encryptioncontext:"


class Qualifier(enum.Enum):
    NONE = ""
    FOR_ANY_VALUE = "ForAnyValue"
    FOR_ALL_VALUES = "ForAllValues"


def _string_equals(values: Sequence[str]) -> _ValueTest:
    allowed = frozenset(values)
    return allowed.__contains__


def _string_equals_ignore_case(values: Sequence[str]) -> _ValueTest:
    allowed = frozenset(v.casefold() for v in values)
    return lambda value: value.casefold() in allowed


def _string_like(values: Sequence[str]) -> _ValueTest:
    regex = re.compile("|".join(f"(?:{wildcard_regex(v)})" for v in values), re.DOTALL)
    return lambda value: regex.fullmatch(value) is not None


def _arn_regex(pattern: str) -> str:
    # IAM checks each of the six colon-delimited ARN components separately, so a
    # wildcard in the first five never crosses a colon; the resource part may hold colons.
    parts = pattern.split(":", 5)
    if len(parts) < 6:
        # Fewer than six components cannot line up with an ARN's; only a bare "*" matches anything.
        return ".*" if pattern == "*" else "(?!)"
    head = [wildcard_regex(p, run="[^:]*", one="[^:]") for p in parts[:5]]
    return ":".join([*head, wildcard_regex(parts[5])])


def _arn_like(values: Sequence[str]) -> _ValueTest:
    regex = re.compile("|".join(f"(?:{_arn_regex(v)})" for v in values), re.DOTALL)
    return lambda value: regex.fullmatch(value) is not None


def _number(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _numeric(compare: Callable[[float, float], bool]) -> Callable[[Sequence[str]], _ValueTest]:
    def build(values: Sequence[str]) -> _ValueTest:
        bounds = [_number(v) for v in values]
        numbers = [b for b in bounds if b is not None]

        def test(value: str) -> bool:
            got = _number(value)
            return got is not None and any(compare(got, bound) for bound in numbers)

        return test

    return build


def _bool(values: Sequence[str]) -> _ValueTest:
    allowed = frozenset(v.lower() for v in values)
    return lambda value: value.lower() in allowed


# base operator -> (value-test builder, negated, kind of policy value it needs)
_OPERATORS: dict[str, tuple[Callable[[Sequence[str]], _ValueTest], bool, str]] = {
    "StringEquals": (_string_equals, False, "string"),
    "StringNotEquals": (_string_equals, True, "string"),
    "StringEqualsIgnoreCase": (_string_equals_ignore_case, False, "string"),
    "StringNotEqualsIgnoreCase": (_string_equals_ignore_case, True, "string"),
    "StringLike": (_string_like, False, "string"),
    "StringNotLike": (_string_like, True, "string"),
    "ArnEquals": (_arn_like, False, "string"),
    "ArnLike": (_arn_like, False, "string"),
    "ArnNotEquals": (_arn_like, True, "string"),
    "ArnNotLike": (_arn_like, True, "string"),
    "NumericEquals": (_numeric(lambda a, b: a == b), False, "number"),
    "NumericNotEquals": (_numeric(lambda a, b: a == b), True, "number"),
    "NumericLessThan": (_numeric(lambda a, b: a < b), False, "number"),
    "NumericLessThanEquals": (_numeric(lambda a, b: a <= b), False, "number"),
    "NumericGreaterThan": (_numeric(lambda a, b: a > b), False, "number"),
    "NumericGreaterThanEquals": (_numeric(lambda a, b: a >= b), False, "number"),
    "Bool": (_bool, False, "bool"),
    "Null": (_bool, False, "bool"),
}


def _as_text(value: object) -> str | None:
    """A condition value as IAM reads it: JSON strings, numbers and booleans all compare as text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return value
    return None


def context_text(value: str | bool | int) -> str:
    """A request context scalar as text (``True`` -> ``"true"``)."""
    text = _as_text(value)
    return text if text is not None else str(value)


@attrs.frozen(kw_only=True)
class ConditionClause:
    """One ``operator: {key: values}`` test, with its value test compiled."""

    operator: str
    """As written in the policy, e.g. ``ForAnyValue:StringLikeIfExists``."""
    base: str
    qualifier: Qualifier
    if_exists: bool
    negated: bool
    key: str
    """Lower-cased: condition key names are case-insensitive."""
    values: tuple[str, ...]
    _test: _ValueTest = attrs.field(repr=False, eq=False)

    def evaluate(self, context: Mapping[str, ContextValue]) -> bool:
        raw = context.get(self.key)
        missing = raw is None or (isinstance(raw, list) and not raw)
        if self.base == "Null":
            # Null: "true" asks for the key to be absent, "false" for it to be present.
            return any((v.lower() == "true") == missing for v in self.values)
        if missing:
            if self.if_exists or self.qualifier is Qualifier.FOR_ALL_VALUES:
                return True
            if self.qualifier is Qualifier.FOR_ANY_VALUE:
                return False
            return self.negated
        assert raw is not None
        items = [context_text(v) for v in raw] if isinstance(raw, list) else [context_text(raw)]
        # Each request value satisfies the clause when it matches some policy value
        # (a negated operator: when it matches none).
        results = [self._test(item) != self.negated for item in items]
        if self.qualifier is Qualifier.FOR_ALL_VALUES:
            return all(results)
        if self.qualifier is Qualifier.NONE and self.negated:
            return all(results)
        return any(results)


@attrs.frozen(kw_only=True)
class Condition:
    """A whole ``Condition`` element: every clause must hold."""

    clauses: tuple[ConditionClause, ...] = ()

    def evaluate(self, context: Mapping[str, ContextValue]) -> bool:
        return all(clause.evaluate(context) for clause in self.clauses)

    @property
    def keys(self) -> frozenset[str]:
        return frozenset(clause.key for clause in self.clauses)


def _split_operator(operator: str) -> tuple[Qualifier, str, bool]:
    qualifier = Qualifier.NONE
    rest = operator
    for candidate in (Qualifier.FOR_ANY_VALUE, Qualifier.FOR_ALL_VALUES):
        if operator.startswith(candidate.value + ":"):
            qualifier, rest = candidate, operator[len(candidate.value) + 1 :]
    if_exists = rest.endswith("IfExists") and rest != "IfExists"
    base = rest[: -len("IfExists")] if if_exists else rest
    if base not in _OPERATORS:
        known = ", ".join(sorted(_OPERATORS))
        raise MalformedPolicyDocumentError(
            f"unknown condition operator {operator!r}: ecrcrypt understands {known}, "
            "each optionally with ForAnyValue:/ForAllValues: in front and IfExists behind (not Null)"
        )
    if base == "Null" and (if_exists or qualifier is not Qualifier.NONE):
        raise MalformedPolicyDocumentError(
            f"condition operator {operator!r}: Null takes no IfExists and no set qualifier"
        )
    return qualifier, base, if_exists


def _values(operator: str, key: str, raw: object, *, kind: str, variables: bool) -> tuple[str, ...]:
    listed = raw if isinstance(raw, list) else [raw]
    if not listed:
        raise MalformedPolicyDocumentError(f"condition {operator} on {key!r} lists no values")
    values: list[str] = []
    for item in listed:
        text = _as_text(item)
        if text is None:
            raise MalformedPolicyDocumentError(
                f"condition {operator} on {key!r}: a value must be a string, number or boolean, not {item!r}"
            )
        if kind == "number" and _number(text) is None:
            raise MalformedPolicyDocumentError(f"condition {operator} on {key!r}: {text!r} is not a number")
        if kind == "bool" and text.lower() not in ("true", "false"):
            raise MalformedPolicyDocumentError(f"condition {operator} on {key!r}: {text!r} is not true or false")
        if variables and "${" in text:
            raise MalformedPolicyDocumentError(
                f"condition {operator} on {key!r}: policy variables ({text!r}) are not supported by ecrcrypt"
            )
        values.append(text)
    return tuple(values)


def parse_condition(element: object, *, variables: bool = True) -> Condition:
    """Compile a statement's ``Condition`` element; refuse what IAM/KMS would refuse.

    ``variables`` is true for ``2012-10-17`` documents, where ``${...}`` is a policy
    variable (which ecrcrypt does not expand, so it refuses it instead of
    silently comparing the literal text).
    """
    if not isinstance(element, dict):
        raise MalformedPolicyDocumentError(
            f"Condition must be an object of operator -> {{key: values}}, not {element!r}"
        )
    clauses: list[ConditionClause] = []
    for operator, block in element.items():
        qualifier, base, if_exists = _split_operator(operator)
        if not isinstance(block, dict) or not block:
            raise MalformedPolicyDocumentError(f"condition {operator} must map at least one condition key to values")
        builder, negated, kind = _OPERATORS[base]
        for key, raw in block.items():
            if not isinstance(key, str) or _KEY.fullmatch(key) is None:
                raise MalformedPolicyDocumentError(
                    f"condition {operator}: {key!r} is not a condition key (expected prefix:name, e.g. kms:ViaService)"
                )
            folded = key.lower()
            if qualifier is Qualifier.FOR_ALL_VALUES and folded.startswith(_ENCRYPTION_CONTEXT_PREFIX):
                # KMS refuses this form (OverlyPermissiveCondition): it is also true
                # for a request with no encryption context at all.
                raise MalformedPolicyDocumentError(
                    f"condition {operator} on {key!r} is overly permissive (OverlyPermissiveCondition): "
                    "kms:EncryptionContext:<key> is single-valued; ForAllValues is true even with no encryption "
                    "context -- use the operator without ForAllValues, or kms:EncryptionContextKeys"
                )
            values = _values(operator, key, raw, kind=kind, variables=variables)
            clauses.append(
                ConditionClause(
                    operator=operator,
                    base=base,
                    qualifier=qualifier,
                    if_exists=if_exists,
                    negated=negated,
                    key=folded,
                    values=values,
                    test=builder(values),
                )
            )
    return Condition(clauses=tuple(clauses))
