"""The grant index answers exactly what a scan of the grants with their constraints would,
also after grants were added and removed in place."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ecrcrypt.kms import GrantConstraints, GrantOperation
from ecrcrypt.kms.local.access import GrantIndex
from ecrcrypt.kms.local.store import GrantRecord

GRANTEES = ["ecr.us-east-1.amazonaws.com", "arn:aws:iam::444455556666:role/r"]
OPS = [GrantOperation.DECRYPT, GrantOperation.GENERATE_DATA_KEY, GrantOperation.DESCRIBE_KEY]
_keys = st.sampled_from(["a", "A", "b", "aws:ecr:arn", "AWS:ECR:ARN"])
_values = st.sampled_from(["1", "2", "r1", "R1"])
_contexts = st.dictionaries(_keys, _values, max_size=4)


def _constraint(kind: str, pairs: dict[str, str]) -> GrantConstraints | None:
    folded = {k.lower() for k in pairs}
    if kind == "none" or len(folded) != len(pairs):
        return None
    if kind == "subset":
        return GrantConstraints(encryption_context_subset=pairs)
    return GrantConstraints(encryption_context_equals=pairs)


_grants = st.lists(
    st.builds(
        lambda i, grantee, ops, kind, pairs: GrantRecord(
            seq=i,
            grant_id=f"{i:064x}",
            key_id="k",
            name=None,
            grantee=grantee,
            retiring=None,
            issuing_account="111122223333",
            operations=frozenset(ops),
            constraints=_constraint(kind, pairs),
            created=0.0,
        ),
        st.integers(min_value=0, max_value=10**6),
        st.sampled_from(GRANTEES),
        st.sets(st.sampled_from(OPS), min_size=1),
        st.sampled_from(["none", "subset", "equals"]),
        st.dictionaries(_keys, _values, max_size=3),
    ),
    max_size=12,
    unique_by=lambda g: g.seq,  # seq and grant id are unique in a store (seq determines the id here)
)


def _scan(grants: list[GrantRecord], grantee: str, op: GrantOperation, ctx: dict[str, str]) -> bool:
    return any(
        g.grantee == grantee
        and op in g.operations
        and (op is GrantOperation.DESCRIBE_KEY or g.constraints is None or g.constraints.allows(ctx))
        for g in grants
    )


@given(grants=_grants, grantee=st.sampled_from([*GRANTEES, "someone.else.amazonaws.com"]), op=st.sampled_from(OPS),
       ctx=_contexts)  # fmt: skip
def test_index_agrees_with_a_scan(
    grants: list[GrantRecord], grantee: str, op: GrantOperation, ctx: dict[str, str]
) -> None:
    found = GrantIndex(grants).find(grantee, op, ctx)
    assert (found is not None) == _scan(grants, grantee, op, ctx)
    if found is not None:
        assert found.grantee == grantee and op in found.operations


def test_large_contexts() -> None:
    ctx = {f"k{i}": str(i) for i in range(12)}
    grant = GrantRecord(
        seq=1,
        grant_id="0" * 64,
        key_id="k",
        name=None,
        grantee=GRANTEES[0],
        retiring=None,
        issuing_account="111122223333",
        operations=frozenset({GrantOperation.DECRYPT}),
        constraints=GrantConstraints(encryption_context_subset={"K11": "11", "k3": "3"}),
        created=0.0,
    )
    index = GrantIndex([grant])
    assert index.find(GRANTEES[0], GrantOperation.DECRYPT, ctx) is grant
    assert index.find(GRANTEES[0], GrantOperation.DECRYPT, {**ctx, "k3": "x"}) is None


@given(
    grants=_grants,
    data=st.data(),
    grantee=st.sampled_from([*GRANTEES, "someone.else.amazonaws.com"]),
    op=st.sampled_from(OPS),
    ctx=_contexts,
)
def test_index_updated_in_place_agrees_with_a_rebuilt_one(
    grants: list[GrantRecord], data: st.DataObject, grantee: str, op: GrantOperation, ctx: dict[str, str]
) -> None:
    ordered = sorted(grants, key=lambda g: g.seq)
    loaded = data.draw(st.integers(0, len(ordered)), label="loaded")
    index = GrantIndex(ordered[:loaded])
    removed: set[str] = set()
    for g in ordered[loaded:]:  # created later (higher seq), some retired again at once
        index.add(g)
        if data.draw(st.booleans(), label=f"retire new {g.seq}"):
            index.remove(g.grant_id)
            removed.add(g.grant_id)
    for g in ordered[:loaded]:
        if data.draw(st.booleans(), label=f"retire old {g.seq}"):
            index.remove(g.grant_id)
            removed.add(g.grant_id)
    index.remove("f" * 64)  # an unknown id changes nothing
    live = [g for g in ordered if g.grant_id not in removed]
    assert index.all == tuple(live)
    assert len(index) == len(live)
    assert index.of(grantee) == tuple(g for g in live if g.grantee == grantee)
    found = index.find(grantee, op, ctx)
    assert (found is not None) == _scan(live, grantee, op, ctx)
    if found is not None:
        assert found.grant_id not in removed and found.grantee == grantee and op in found.operations
    rebuilt = GrantIndex(live).find(grantee, op, ctx)
    assert (rebuilt is None) == (found is None)


def _grant(constraints: GrantConstraints | None, seq: int = 1) -> GrantRecord:
    return GrantRecord(
        seq=seq,
        grant_id=f"{seq:064x}",
        key_id="k",
        name=None,
        grantee=GRANTEES[0],
        retiring=None,
        issuing_account="111122223333",
        operations=frozenset({GrantOperation.DECRYPT}),
        constraints=constraints,
        created=0.0,
    )


@given(
    kind=st.sampled_from(["subset", "equals"]),
    first=_values,
    second=_values,
    upper_first=st.booleans(),
)
def test_a_context_with_keys_differing_only_in_case_satisfies_no_constraint(
    kind: str, first: str, second: str, upper_first: bool
) -> None:
    # {"tenant": "a", "TENANT": "b"} used to fold to one of its pairs and pass an
    # Equals / Subset constraint on that pair, whichever way round the keys came.
    items = [("aws:ecr:arn", first), ("AWS:ECR:ARN", second)]
    ctx = dict(reversed(items) if upper_first else items)
    constrained = [_constraint(kind, {"aws:ecr:arn": v}) for v in (first, second)]
    assert all(c is not None and not c.allows(ctx) for c in constrained)
    index = GrantIndex([_grant(c, seq) for seq, c in enumerate(constrained)])
    assert index.find(GRANTEES[0], GrantOperation.DECRYPT, ctx) is None
    # ... also with an empty subset (a constraint all the same); an unconstrained grant still allows it
    index.add(_grant(GrantConstraints(encryption_context_subset={}), 7))
    assert index.find(GRANTEES[0], GrantOperation.DECRYPT, ctx) is None
    free = _grant(None, 8)
    index.add(free)
    assert index.find(GRANTEES[0], GrantOperation.DECRYPT, ctx) is free
