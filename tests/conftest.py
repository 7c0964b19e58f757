"""Shared test configuration: Hypothesis profiles, the moto server plugin, a PostgreSQL server."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from ecrcrypt.kms.local.service import ManualClock
from tests.pg_server import PostgresServer, running_postgres

pytest_plugins = ["tests.moto_server"]

settings.register_profile(
    "default",
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("ci", parent=settings.get_profile("default"), max_examples=60, derandomize=False)
settings.register_profile("thorough", parent=settings.get_profile("default"), max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "default"))


@pytest.fixture
def clock() -> ManualClock:
    """An injectable clock for the local KMS: time moves only when a test says so."""
    return ManualClock()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL cluster for the session (one per xdist worker); skips only if PostgreSQL cannot be had."""
    pytest.importorskip("psycopg", reason="psycopg is not installed (postgres extra)")
    try:
        with running_postgres() as server:
            yield server
    except RuntimeError as exc:
        pytest.skip(f"no PostgreSQL server: {exc}")


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of a new, empty database on the session's server, dropped after the test."""
    url = postgres_server.create_database()
    yield url
    postgres_server.drop_database(url)
