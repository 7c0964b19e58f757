"""Properties of the engine over random policies and requests."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecrcrypt.authz import (
    Decision,
    Policy,
    PolicyAccessDeniedError,
    PolicyKind,
    Reason,
    Wildcard,
    enforce,
    simulate,
)
from tests.authz import strategies as ws


def run(scenario: dict[str, Any], **override: Any) -> Decision:
    merged = {**scenario, **override}
    return simulate(
        merged["principal"],
        merged["action"],
        merged["resource"],
        merged["context"],
        resource_policy=merged["resource_policy"],
        identity_policies=merged["identity_policies"],
        grants=merged["grants"],
    )


def with_statement(policy: Policy | None, statement: dict[str, Any], kind: PolicyKind) -> Policy:
    listed = [] if policy is None else list(json.loads(policy.text)["Statement"])
    listed = [{k: v for k, v in s.items() if k != "Sid"} for s in listed]
    return Policy.parse({"Version": "2012-10-17", "Statement": [*listed, statement]}, kind=kind)


def extended(scenario: dict[str, Any], statement: dict[str, Any], *, on_identity: bool) -> dict[str, Any]:
    """The scenario with ``statement`` added to its resource policy, or as a new identity policy."""
    if on_identity:
        extra = Policy.parse({"Version": "2012-10-17", "Statement": [statement]}, kind=PolicyKind.IDENTITY)
        return {"identity_policies": [*scenario["identity_policies"], extra]}
    return {"resource_policy": with_statement(scenario["resource_policy"], statement, scenario["resource_kind"])}


def can_add_identity(scenario: dict[str, Any]) -> bool:
    return str(scenario["principal"]).startswith("arn:")


@given(ws.scenarios(), st.data())
def test_adding_a_deny_never_turns_a_denial_into_an_allow(scenario: dict[str, Any], data: st.DataObject) -> None:
    on_identity = can_add_identity(scenario) and data.draw(st.booleans())
    kind = PolicyKind.IDENTITY if on_identity else scenario["resource_kind"]
    deny = data.draw(ws.statements(kind, effect="Deny"))
    before = run(scenario)
    after = run(scenario, **extended(scenario, deny, on_identity=on_identity))
    if not before.allowed:
        assert not after.allowed
    if before.reason is Reason.EXPLICIT_DENY:
        assert after.reason is Reason.EXPLICIT_DENY


@given(ws.scenarios(), st.data())
def test_adding_a_matching_deny_always_denies(scenario: dict[str, Any], data: st.DataObject) -> None:
    on_identity = can_add_identity(scenario) and data.draw(st.booleans())
    deny: dict[str, Any] = {"Effect": "Deny", "Action": scenario["action"], "Resource": scenario["resource"]}
    if not on_identity:
        deny["Principal"] = "*"
    after = run(scenario, **extended(scenario, deny, on_identity=on_identity))
    assert not after.allowed
    assert after.reason is Reason.EXPLICIT_DENY
    assert "explicit deny in statement" in after.message


@given(ws.scenarios(), st.data())
def test_adding_an_allow_never_turns_an_allow_into_a_denial(scenario: dict[str, Any], data: st.DataObject) -> None:
    on_identity = can_add_identity(scenario) and data.draw(st.booleans())
    kind = PolicyKind.IDENTITY if on_identity else scenario["resource_kind"]
    allow = data.draw(ws.statements(kind, effect="Allow"))
    before = run(scenario)
    after = run(scenario, **extended(scenario, allow, on_identity=on_identity))
    if before.allowed:
        assert after.allowed


@given(ws.scenarios())
def test_simulate_and_enforce_always_agree(scenario: dict[str, Any]) -> None:
    decision = run(scenario)
    arguments = (scenario["principal"], scenario["action"], scenario["resource"], scenario["context"])
    keywords = {
        "resource_policy": scenario["resource_policy"],
        "identity_policies": scenario["identity_policies"],
        "grants": scenario["grants"],
    }
    if decision.allowed:
        assert enforce(*arguments, **keywords) == decision
    else:
        with pytest.raises(PolicyAccessDeniedError) as caught:
            enforce(*arguments, **keywords)
        assert caught.value.decision == decision
        assert str(caught.value) == decision.message
        for part in (scenario["principal"], scenario["action"], scenario["resource"]):
            assert part in str(caught.value)


@given(ws.scenarios())
def test_a_decision_lists_statements_of_its_own_effect(scenario: dict[str, Any]) -> None:
    decision = run(scenario)
    if decision.reason is Reason.EXPLICIT_DENY:
        assert decision.statements and all(d.effect.value == "Deny" for d in decision.statements)
    else:
        assert all(d.effect.value == "Allow" for d in decision.statements)
    if decision.reason is Reason.ALLOWED_BY_GRANT:
        assert decision.grants


# --------------------------------------------------------------------------- wildcards


def reference_match(pattern: str, text: str, *, ignore_case: bool = False) -> bool:
    """Glob matching by dynamic programming over (pattern, text) prefixes -- no regular expressions."""
    if ignore_case:
        pattern, text = pattern.lower(), text.lower()
    # reachable[j]: pattern[:i] can match text[:j]
    reachable = [True] + [False] * len(text)
    for char in pattern:
        if char == "*":
            seen = False
            for j in range(len(text) + 1):
                seen = seen or reachable[j]
                reachable[j] = seen
        else:
            reachable = [False] + [reachable[j] and (char == "?" or char == text[j]) for j in range(len(text))]
    return reachable[len(text)]


ALPHABET = st.sampled_from("ab*?.:/[]\\^$+()|{}\nA")


@given(st.text(ALPHABET, max_size=8), st.text(st.sampled_from("ab.:/[]\\^$+()|{}\nA*?"), max_size=10), st.booleans())
def test_a_wildcard_matches_exactly_what_the_reference_matches(pattern: str, text: str, ignore_case: bool) -> None:
    assert Wildcard(pattern=pattern, ignore_case=ignore_case).matches(text) == reference_match(
        pattern, text, ignore_case=ignore_case
    )


@given(st.text(ALPHABET, max_size=6), st.data())
def test_a_wildcard_matches_every_instance_of_itself(pattern: str, data: st.DataObject) -> None:
    # Fill each * with any text and each ? with one character: the result must match.
    filled = "".join(
        data.draw(st.text(max_size=3)) if c == "*" else data.draw(st.characters()) if c == "?" else c for c in pattern
    )
    assert Wildcard(pattern=pattern).matches(filled)
    assert reference_match(pattern, filled)


@given(st.sampled_from(ws.ACTION_PATTERNS), st.sampled_from(ws.ACTIONS))
def test_actions_match_case_insensitively_resources_case_sensitively(pattern: str, action: str) -> None:
    statement = Policy.parse(
        {"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": pattern, "Resource": ws.KEYS[0]}},
        kind=PolicyKind.IDENTITY,
    ).statements[0]
    assert statement.covers_action(action) == reference_match(pattern, action, ignore_case=True)
    assert statement.covers_action(action.upper()) == statement.covers_action(action)
    assert statement.covers_resource(ws.KEYS[0])
    assert not statement.covers_resource(ws.KEYS[0].upper())
