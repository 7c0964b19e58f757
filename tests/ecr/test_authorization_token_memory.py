"""A process remembers the registry tokens it verified, and answers from memory exactly as the database would.

Each request of a container client carries the token; on a fleet each lookup is a round trip to
the shared database. The memory may only save that round trip: same principal, the expiry still
enforced, nothing remembered that the database did not hold, another process (another registry
core) reading the database itself.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecrcrypt.ecr import authorization, records
from ecrcrypt.ecr.authorization import authenticate, get_authorization_token
from ecrcrypt.ecr.registry import Registry
from tests.ecr.support import BOB

ACCOUNT = "111122223333"


class _Lookups:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        original = records.get_token

        def counting(meta: Any, fingerprint: str) -> Any:
            self.count += 1
            return original(meta, fingerprint)

        monkeypatch.setattr(records, "get_token", counting)


def test_a_verified_token_is_answered_from_memory_until_it_expires(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lookups = _Lookups(monkeypatch)
    with Registry.create(tmp_path / "r", account=ACCOUNT) as registry:
        data = get_authorization_token(registry.as_caller(BOB))
        assert [authenticate(registry, "AWS", data.password) for _ in range(5)] == [BOB] * 5
        assert lookups.count == 1
        assert authenticate(registry.as_caller(BOB), "AWS", data.password) == BOB  # a view shares the core
        assert lookups.count == 1
        assert authenticate(registry, "bob", data.password) is None  # the user name is checked first
        later = data.expires_at + 1
        with pytest.MonkeyPatch.context() as clock:
            clock.setattr(time, "time", lambda: later)
            assert authenticate(registry, "AWS", data.password) is None  # expired, though remembered
        assert lookups.count == 1
        with Registry.create(tmp_path / "r", account=ACCOUNT) as other_process:
            assert authenticate(other_process, "AWS", data.password) == BOB
            assert lookups.count == 2  # its own core: it asked the database


def test_an_unknown_password_is_never_remembered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lookups = _Lookups(monkeypatch)
    with Registry.create(tmp_path / "r", account=ACCOUNT) as registry:
        assert authenticate(registry, "AWS", "not-a-token") is None
        assert authenticate(registry, "AWS", "not-a-token") is None
        assert lookups.count == 2


@settings(max_examples=25, deadline=None)
@given(ops=st.lists(st.tuples(st.integers(0, 7), st.booleans()), min_size=1, max_size=30))
def test_memory_answers_as_the_database_under_eviction(
    tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[int, bool]]
) -> None:
    """With room for only 3 tokens, any order of issuing and presenting 8 tokens (some already
    expired) gets from memory exactly the database's answer."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(authorization, "VERIFIED_TOKENS", 3)
        with Registry.create(tmp_path_factory.mktemp("r") / "r", account=ACCOUNT) as registry:
            issued: dict[int, tuple[str, bool]] = {}
            for i, expired in ops:
                if i not in issued:
                    data = get_authorization_token(registry.as_caller(BOB), lifetime=-1 if expired else 3600)
                    issued[i] = (data.password, expired)
                password, was_expired = issued[i]
                assert authenticate(registry, "AWS", password) == (None if was_expired else BOB)
                assert authenticate(registry, "AWS", password + "x") is None
