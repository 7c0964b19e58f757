"""The crash suite of test_crash_lifecycle.py on PostgreSQL metadata (issue 14): SIGKILL at the
points where a step and the transaction recording it can be split, then recover and check.

The registry directory keeps its metadata in a PostgreSQL database (the server the tests start);
each run gets a copy of the template's directory and of its database (``CREATE DATABASE ...
TEMPLATE``). A killed child's connections die with it: PostgreSQL rolls back what it had not
committed, as SQLite's WAL does. The kills are drawn from a representative subset of the points
(each side of every KMS call and blob commit that a metadata transaction records); there are
``ECRCRYPT_PG_CRASH_ITERATIONS`` of them (default: a quarter of ``ECRCRYPT_CRASH_ITERATIONS``,
at least 24; ``make soak`` runs more).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.ecr.crash_scenario import copy_template, make_template
from tests.ecr.test_crash_lifecycle import ITERATIONS, _count_points, sigkill_runs
from tests.pg_server import PostgresServer

PG_ITERATIONS = int(os.environ.get("ECRCRYPT_PG_CRASH_ITERATIONS", str(max(24, ITERATIONS // 4))))
# Where a metadata transaction and the step it records can be split by a kill.
SUBSET = frozenset(
    {
        "create:intent",
        "create:grant",
        "create:recorded",
        "push:intent",
        "push:committed",
        "push:recorded",
        "upload:committed",
        "delete:intent",
        "delete:blob",
        "grant:retired",
        "delete:done",
    }
)


def test_sigkill_at_metadata_points_then_recover_on_postgres(postgres_server: PostgresServer, tmp_path: Path) -> None:
    template_url = postgres_server.create_database()
    make_template(tmp_path / "template", encryption="KMS", metadata=template_url)
    copies: list[str] = []

    def copy(i: int | str) -> Path:
        copies.append(postgres_server.create_database(template=template_url))
        return copy_template(tmp_path / "template", tmp_path / f"run-{i}", metadata=copies[-1])

    try:
        points = _count_points(copy("dry"))
        chosen = [n for n, name in enumerate(points, start=1) if name in SUBSET]
        assert {points[n - 1] for n in chosen} == SUBSET  # the scenario passes every one of them
        kills, recovery_kills = sigkill_runs(copy, points, PG_ITERATIONS, lambda rng: rng.choice(chosen))
    finally:
        for url in copies:
            postgres_server.drop_database(url)
    assert kills >= PG_ITERATIONS * 0.9
    print(f"{kills} kills on PostgreSQL, {recovery_kills} of them followed by a killed recovery")


pytestmark = pytest.mark.slow
