"""Policy documents: AWS's JSON grammar, checked and compiled once when a policy is written.

The grammar and its refusals follow the IAM User Guide's "IAM JSON policy
element reference" (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements.html)
and the KMS Developer Guide's "Key policies" page
(https://docs.aws.amazon.com/kms/latest/developerguide/key-policies.html). A
:class:`PolicyKind` decides which elements a statement may or must carry:

========  =========  =====================================  ==========
kind      Principal  Resource                               Action
========  =========  =====================================  ==========
key       required   optional: a statement without one has no effect (KMS accepts it)  optional, likewise
identity  forbidden  required                               required
resource  required   optional: implied to be the repository  required
trust     required   forbidden                              required
========  =========  =====================================  ==========

Size limits (:class:`PolicyLimit`) are AWS's:

* key policy: 32 KB (32,768 bytes) -- KMS Developer Guide, "Key policies" and
  "Resource quotas" (https://docs.aws.amazon.com/kms/latest/developerguide/resource-limits.html);
* IAM (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html):
  inline policies of a user 2,048 characters, of a role 10,240, a managed policy
  6,144, a role trust policy 2,048 (the default quota) -- "IAM does not count white
  space when calculating the size of a policy against these limits";
* ECR repository policy text: at most 10,240 characters (botocore's ECR model,
  ``RepositoryPolicyText``).

Both services allow only tab, line feed, carriage return and U+0020-U+00FF in a
document (botocore ``PolicyType`` / ``policyDocumentType`` pattern).
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping
from typing import Any

import attrs

from ecrcrypt.authz.conditions import Condition, ContextValue, parse_condition
from ecrcrypt.authz.errors import MalformedPolicyDocumentError, PolicySizeLimitExceededError
from ecrcrypt.authz.principal import Principal, PrincipalKind
from ecrcrypt.authz.wildcard import wildcard_regex

__all__ = [
    "Effect",
    "Policy",
    "PolicyKind",
    "PolicyLimit",
    "PrincipalMatch",
    "PrincipalSpec",
    "Statement",
    "policy_size",
]

VERSIONS = ("2008-10-17", "2012-10-17")
_TOP_LEVEL = frozenset({"Version", "Id", "Statement"})
_STATEMENT_ELEMENTS = frozenset(
    {"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition"}
)
_ALLOWED_CHARS = re.compile(r"[\t\n\r\u0020-\u00ff]*")
_ACTION = re.compile(r"[A-Za-z0-9-]+:[A-Za-z0-9*?_-]+")
_ACCOUNT = re.compile(r"[0-9]{12}")
_SERVICE_NAME = re.compile(r"[a-z0-9-]+(?:\.[a-z0-9-]+)*\.amazonaws\.com(?:\.cn)?")
_PRINCIPAL_TYPES = ("AWS", "Service", "Federated", "CanonicalUser")


class PolicyKind(enum.Enum):
    KEY = "key"
    IDENTITY = "identity"
    RESOURCE = "resource"
    TRUST = "trust"


class PolicyLimit(enum.Enum):
    """How long a document may be, and whether white space counts."""

    KEY_POLICY = ("key policy", 32_768, True)
    USER_INLINE = ("inline user policy", 2_048, False)
    ROLE_INLINE = ("inline role policy", 10_240, False)
    MANAGED = ("managed policy", 6_144, False)
    TRUST = ("role trust policy", 2_048, False)
    REPOSITORY = ("repository policy", 10_240, True)

    def __init__(self, label: str, maximum: int, counts_whitespace: bool) -> None:
        self.label = label
        self.maximum = maximum
        self.counts_whitespace = counts_whitespace


_DEFAULT_LIMIT = {
    PolicyKind.KEY: PolicyLimit.KEY_POLICY,
    PolicyKind.IDENTITY: PolicyLimit.MANAGED,
    PolicyKind.RESOURCE: PolicyLimit.REPOSITORY,
    PolicyKind.TRUST: PolicyLimit.TRUST,
}


def policy_size(text: str, limit: PolicyLimit) -> int:
    """The size AWS counts against ``limit``: UTF-8 bytes for a key policy, non-white-space characters for IAM."""
    if limit is PolicyLimit.KEY_POLICY:
        # surrogatepass: a lone surrogate (JSON's "\ud800" decodes to one) is counted here and refused
        # by the character check as MalformedPolicyDocumentError, not raised as UnicodeEncodeError.
        return len(text.encode("utf-8", "surrogatepass"))
    if limit.counts_whitespace:
        return len(text)
    return sum(1 for char in text if not char.isspace())


class Effect(enum.Enum):
    ALLOW = "Allow"
    DENY = "Deny"


class PrincipalMatch(enum.Enum):
    """How a statement's principal element covers a caller.

    ``ACCOUNT`` is the delegation case: the statement names the caller's *account*
    (``arn:aws:iam::<acct>:root`` or the bare id), so the account's own IAM
    policies decide; only the root user is covered ``DIRECT``-ly by it.
    """

    NONE = "none"
    DIRECT = "direct"
    ACCOUNT = "account"


@attrs.frozen(kw_only=True)
class PrincipalSpec:
    """A compiled ``Principal`` (or ``NotPrincipal``) element."""

    anyone: bool = False
    accounts: frozenset[str] = frozenset()
    arns: frozenset[str] = frozenset()
    services: frozenset[str] = frozenset()
    inert: tuple[tuple[str, str], ...] = ()
    """Federated and canonical-user principals: valid AWS, but no ecrcrypt caller is one."""

    def match(self, principal: Principal) -> PrincipalMatch:
        if self.anyone:
            return PrincipalMatch.DIRECT
        if principal.kind is PrincipalKind.SERVICE:
            return PrincipalMatch.DIRECT if principal.arn in self.services else PrincipalMatch.NONE
        if principal.arn in self.arns or principal.policy_arn in self.arns:
            return PrincipalMatch.DIRECT
        if principal.account in self.accounts:
            return PrincipalMatch.DIRECT if principal.kind is PrincipalKind.ROOT else PrincipalMatch.ACCOUNT
        return PrincipalMatch.NONE


@attrs.frozen(kw_only=True)
class _Patterns:
    """Action or resource patterns: a set of literals and one regex for the wildcarded rest."""

    written: tuple[str, ...]
    ignore_case: bool
    _literals: frozenset[str] = attrs.field(init=False, repr=False, eq=False)
    _regex: re.Pattern[str] | None = attrs.field(init=False, repr=False, eq=False)

    @_literals.default
    def _make_literals(self) -> frozenset[str]:
        fold = str.lower if self.ignore_case else str
        return frozenset(fold(p) for p in self.written if "*" not in p and "?" not in p)

    @_regex.default
    def _make_regex(self) -> re.Pattern[str] | None:
        wild = [p for p in self.written if "*" in p or "?" in p]
        if not wild:
            return None
        flags = re.DOTALL | (re.IGNORECASE if self.ignore_case else 0)
        return re.compile("|".join(f"(?:{wildcard_regex(p)})" for p in wild), flags)

    def matches(self, value: str) -> bool:
        if (value.lower() if self.ignore_case else value) in self._literals:
            return True
        return self._regex is not None and self._regex.fullmatch(value) is not None


@attrs.frozen(kw_only=True)
class Statement:
    """One compiled statement. ``index`` counts from 0 in the document's order."""

    index: int
    sid: str | None
    effect: Effect
    principal: PrincipalSpec | None = None
    not_principal: bool = False
    actions: _Patterns | None = None
    """``None``: the statement has no action element and so never applies (key policies only)."""
    not_action: bool = False
    resources: _Patterns | None = None
    """``None`` with ``resource_implied``: the policy's own resource; otherwise never applies."""
    not_resource: bool = False
    resource_implied: bool = False
    condition: Condition = attrs.field(factory=Condition)

    @property
    def label(self) -> str:
        """How a message names this statement: its Sid, or its position."""
        return repr(self.sid) if self.sid else f"#{self.index + 1}"

    def principal_match(self, principal: Principal) -> PrincipalMatch:
        """How this statement's principal element covers ``principal`` (identity policies: directly)."""
        if self.principal is None:
            return PrincipalMatch.DIRECT
        found = self.principal.match(principal)
        if self.not_principal:
            return PrincipalMatch.DIRECT if found is PrincipalMatch.NONE else PrincipalMatch.NONE
        return found

    def covers_action(self, action: str) -> bool:
        if self.actions is None:
            return False
        return self.actions.matches(action) != self.not_action

    def covers_resource(self, resource: str) -> bool:
        if self.resources is None:
            return self.resource_implied
        return self.resources.matches(resource) != self.not_resource

    def applies(self, action: str, resource: str, context: Mapping[str, ContextValue]) -> bool:
        """Action, resource and condition all match (the principal is checked apart)."""
        return self.covers_action(action) and self.covers_resource(resource) and self.condition.evaluate(context)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise MalformedPolicyDocumentError(f"the document repeats the element {key!r} in one object")
        result[key] = value
    return result


def _strings(element: str, raw: object, where: str) -> tuple[str, ...]:
    listed = raw if isinstance(raw, list) else [raw]
    if not listed:
        raise MalformedPolicyDocumentError(f"{where}: {element} is an empty list")
    for item in listed:
        if not isinstance(item, str) or not item:
            raise MalformedPolicyDocumentError(
                f"{where}: every {element} value must be a non-empty string, not {item!r}"
            )
    return tuple(listed)


def _parse_principal(raw: object, where: str, element: str) -> PrincipalSpec:
    if raw == "*":
        return PrincipalSpec(anyone=True)
    if not isinstance(raw, dict) or not raw:
        raise MalformedPolicyDocumentError(
            f'{where}: {element} must be "*" or an object such as {{"AWS": "arn:aws:iam::111122223333:root"}}, '
            f"not {raw!r}"
        )
    anyone = False
    accounts: set[str] = set()
    arns: set[str] = set()
    services: set[str] = set()
    inert: list[tuple[str, str]] = []
    for kind, values in raw.items():
        if kind not in _PRINCIPAL_TYPES:
            raise MalformedPolicyDocumentError(
                f"{where}: unknown principal type {kind!r} in {element} (expected one of {', '.join(_PRINCIPAL_TYPES)})"
            )
        for value in _strings(f"{element} {kind}", values, where):
            if kind == "AWS":
                if value == "*":
                    anyone = True
                elif _ACCOUNT.fullmatch(value):
                    accounts.add(value)
                else:
                    try:
                        parsed = Principal.parse(value)
                    except ValueError:
                        raise MalformedPolicyDocumentError(
                            f"{where}: invalid principal in policy: {value!r} (an AWS principal is '*', a 12-digit "
                            "account id, or an account root, user, role or assumed-role ARN; no wildcards)"
                        ) from None
                    if parsed.kind is PrincipalKind.SERVICE:
                        raise MalformedPolicyDocumentError(
                            f'{where}: {value!r} is a service principal: write it under "Service", not "AWS"'
                        )
                    if parsed.kind is PrincipalKind.ROOT:
                        assert parsed.account is not None
                        accounts.add(parsed.account)
                    else:
                        arns.add(value)
            elif kind == "Service":
                if _SERVICE_NAME.fullmatch(value) is None:
                    raise MalformedPolicyDocumentError(
                        f"{where}: invalid service principal {value!r} (expected a name like ecr.amazonaws.com)"
                    )
                services.add(value)
            else:
                inert.append((kind, value))
    return PrincipalSpec(
        anyone=anyone,
        accounts=frozenset(accounts),
        arns=frozenset(arns),
        services=frozenset(services),
        inert=tuple(inert),
    )


def _pick(body: Mapping[str, Any], positive: str, negative: str, where: str) -> tuple[str | None, object]:
    if positive in body and negative in body:
        raise MalformedPolicyDocumentError(f"{where}: a statement may have {positive} or {negative}, not both")
    if positive in body:
        return positive, body[positive]
    if negative in body:
        return negative, body[negative]
    return None, None


def _actions(raw: object, element: str, where: str) -> _Patterns:
    values = _strings(element, raw, where)
    for value in values:
        if value != "*" and _ACTION.fullmatch(value) is None:
            raise MalformedPolicyDocumentError(
                f"{where}: {element} {value!r} must be prefaced by a service, as in kms:Decrypt or ecr:*"
            )
    return _Patterns(written=values, ignore_case=True)


def _resources(raw: object, element: str, where: str, variables: bool) -> _Patterns:
    values = _strings(element, raw, where)
    for value in values:
        if value != "*" and (not value.startswith("arn:") or len(value.split(":", 5)) < 6):
            raise MalformedPolicyDocumentError(f'{where}: {element} {value!r} must be in ARN format or "*"')
        if variables and "${" in value:
            raise MalformedPolicyDocumentError(
                f"{where}: {element} {value!r} uses a policy variable, which ecrcrypt does not support"
            )
    return _Patterns(written=values, ignore_case=False)


def _parse_statement(body: object, index: int, kind: PolicyKind, variables: bool) -> Statement:
    where = f"statement #{index + 1}"
    if not isinstance(body, dict):
        raise MalformedPolicyDocumentError(f"{where} must be an object, not {body!r}")
    sid = body.get("Sid")
    if sid is not None:
        if not isinstance(sid, str):
            raise MalformedPolicyDocumentError(f"{where}: Sid must be a string, not {sid!r}")
        where = f"statement {sid!r}"
    unknown = sorted(set(body) - _STATEMENT_ELEMENTS)
    if unknown:
        raise MalformedPolicyDocumentError(f"{where}: unknown element {unknown[0]!r} (a statement has {_listing()})")
    if "Effect" not in body:
        raise MalformedPolicyDocumentError(f"{where}: missing Effect (Allow or Deny)")
    try:
        effect = Effect(body["Effect"])
    except ValueError:
        raise MalformedPolicyDocumentError(f"{where}: Effect must be Allow or Deny, not {body['Effect']!r}") from None

    principal_element, principal_raw = _pick(body, "Principal", "NotPrincipal", where)
    principal: PrincipalSpec | None = None
    if kind is PolicyKind.IDENTITY:
        if principal_element is not None:
            raise MalformedPolicyDocumentError(
                f"{where}: an identity policy must not specify a principal ({principal_element}): it applies to the "
                "user or role it is attached to"
            )
    elif principal_element is None:
        raise MalformedPolicyDocumentError(f"{where}: a {kind.value} policy statement must have a Principal")
    else:
        principal = _parse_principal(principal_raw, where, principal_element)

    action_element, action_raw = _pick(body, "Action", "NotAction", where)
    actions = None if action_element is None else _actions(action_raw, action_element, where)
    if actions is None and kind is not PolicyKind.KEY:
        raise MalformedPolicyDocumentError(f"{where}: missing Action (or NotAction)")

    resource_element, resource_raw = _pick(body, "Resource", "NotResource", where)
    if kind is PolicyKind.TRUST and resource_element is not None:
        raise MalformedPolicyDocumentError(f"{where}: a trust policy must not have {resource_element}")
    if kind is PolicyKind.IDENTITY and resource_element is None:
        raise MalformedPolicyDocumentError(f"{where}: missing Resource (or NotResource)")
    resources = None if resource_element is None else _resources(resource_raw, resource_element, where, variables)

    condition = Condition()
    if "Condition" in body:
        try:
            condition = parse_condition(body["Condition"], variables=variables)
        except MalformedPolicyDocumentError as exc:
            raise MalformedPolicyDocumentError(f"{where}: {exc.message}") from None

    return Statement(
        index=index,
        sid=sid,
        effect=effect,
        principal=principal,
        not_principal=principal_element == "NotPrincipal",
        actions=actions,
        not_action=action_element == "NotAction",
        resources=resources,
        not_resource=resource_element == "NotResource",
        resource_implied=kind in (PolicyKind.RESOURCE, PolicyKind.TRUST),
        condition=condition,
    )


def _listing() -> str:
    return ", ".join(sorted(_STATEMENT_ELEMENTS))


def _load(document: str | Mapping[str, Any], limit: PolicyLimit) -> tuple[str, dict[str, Any]]:
    if isinstance(document, str):
        text = document
    elif isinstance(document, Mapping):
        text = json.dumps(document)
    else:
        raise MalformedPolicyDocumentError(f"a policy is a JSON text or a mapping, not {type(document).__name__}")
    if not text.strip():
        raise MalformedPolicyDocumentError("the policy document is empty")
    size = policy_size(text, limit)
    if size > limit.maximum:
        unit = "bytes" if limit is PolicyLimit.KEY_POLICY else "characters"
        spaces = "" if limit.counts_whitespace else " (not counting white space)"
        raise PolicySizeLimitExceededError(
            f"the {limit.label} is {size} {unit}{spaces}; the maximum is {limit.maximum}"
        )
    if _ALLOWED_CHARS.fullmatch(text) is None:
        bad = next(char for char in text if _ALLOWED_CHARS.fullmatch(char) is None)
        raise MalformedPolicyDocumentError(
            f"the policy document contains {bad!r} (U+{ord(bad):04X}); only tab, line feed, carriage return and "
            "U+0020-U+00FF are allowed"
        )
    try:
        loaded = json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise MalformedPolicyDocumentError(f"the policy document is not valid JSON: {exc}") from None
    if not isinstance(loaded, dict):
        raise MalformedPolicyDocumentError("the policy document must be a JSON object")
    return text, loaded


@attrs.frozen(kw_only=True)
class Policy:
    """A parsed, compiled policy document; build one with :meth:`parse`."""

    kind: PolicyKind
    name: str
    """How denial messages name this policy, e.g. ``key policy`` or ``identity policy 'ecr-kms-permissions'``."""
    version: str
    id: str | None
    statements: tuple[Statement, ...]
    text: str = attrs.field(repr=False)
    """The document as given (or as JSON-encoded from a mapping), for Get* calls to return unchanged."""

    @classmethod
    def parse(
        cls,
        document: str | Mapping[str, Any],
        *,
        kind: PolicyKind,
        name: str | None = None,
        limit: PolicyLimit | None = None,
    ) -> Policy:
        """Check ``document`` against the grammar for ``kind`` and compile it.

        Raises :class:`MalformedPolicyDocumentError` with the broken rule, or
        :class:`PolicySizeLimitExceededError` past ``limit`` (by default the
        limit of ``kind``: key policy, managed policy, repository policy, trust policy).
        """
        text, body = _load(document, limit or _DEFAULT_LIMIT[kind])
        unknown = sorted(set(body) - _TOP_LEVEL)
        if unknown:
            raise MalformedPolicyDocumentError(
                f"unknown top-level element {unknown[0]!r} (a policy has Version, Id and Statement)"
            )
        version = body.get("Version")
        if version is None:
            if kind is PolicyKind.KEY:
                raise MalformedPolicyDocumentError("a key policy must have a Version element (use 2012-10-17)")
            version = "2008-10-17"  # IAM: a policy without a Version is read as the 2008 grammar
        if version not in VERSIONS:
            raise MalformedPolicyDocumentError(f"Version {version!r} is not one of {', '.join(VERSIONS)}")
        policy_id = body.get("Id")
        if policy_id is not None and not isinstance(policy_id, str):
            raise MalformedPolicyDocumentError(f"Id must be a string, not {policy_id!r}")
        if "Statement" not in body:
            raise MalformedPolicyDocumentError("the policy has no Statement")
        raw = body["Statement"]
        listed = raw if isinstance(raw, list) else [raw]
        if not listed:
            raise MalformedPolicyDocumentError("Statement is an empty list")
        variables = version == "2012-10-17"
        statements = tuple(_parse_statement(item, i, kind, variables) for i, item in enumerate(listed))
        if kind is PolicyKind.IDENTITY:
            sids = [s.sid for s in statements if s.sid]
            repeated = sorted({sid for sid in sids if sids.count(sid) > 1})
            if repeated:
                raise MalformedPolicyDocumentError(f"statement ids (Sid) must be unique in a policy: {repeated[0]!r}")
        if name is None:
            name = f"{kind.value} policy" + (f" {policy_id!r}" if policy_id else "")
        return cls(kind=kind, name=name, version=version, id=policy_id, statements=statements, text=text)
