"""``fleet``: pushes and pulls per second of small images by 1, 2 and 4 registry processes, with
the registry's metadata on SQLite and on PostgreSQL (issue 14).

Everything but the metadata is the same for both backends: the processes share one
filesystem blob store and one local KMS file; repositories are AES256 (the service key,
wrapped under a local KMS key in the metadata, is unwrapped once per process), so a push or
pull makes no KMS call and the difference is the metadata's. No audit trail. The SQLite
database is a file in WAL mode (``synchronous=FULL``: every durable commit waits for the
disk); the PostgreSQL server is the tests' own (``tests/pg_server.py``) switched back to
durable commits (``fsync``, ``full_page_writes`` on, ``synchronous_commit`` at its default),
so both backends pay for durability as they would in service.

An image is a config blob and three layers (0.5, 1, 4 and 16 KiB of fresh random bytes, so
nothing is deduplicated) and a manifest: a push is four ``push_layer`` and one ``put_image``
with a tag; a pull is ``get_image`` by tag and a read of every blob it lists (digests
verified). Each process pushes into and pulls from its own repository. The worker processes
of every configuration (backend x number of processes) are started and warmed once; a trial
runs every configuration, in an order reversed every other trial, and times from the
command to the last process's answer (start-up is never timed). Ratios between
configurations are medians of per-trial quotients with [min..max] (``_harness.Spread``).

Where a PostgreSQL pull's time goes: the 1-process SQLite worker also pulls with one
PostgreSQL round trip (``SELECT 1`` through a ``PostgresMetadata`` pool) before each of its
metadata reads, in every trial beside its plain pulls. That is a pull costing SQLite's work plus
exactly the round trips a PostgreSQL pull makes (their counts are reported), so its ratio to
SQLite is the ceiling of the PostgreSQL / SQLite ratio, and PostgreSQL's ratio to it is what the
backend costs beyond its round trips. A ``SELECT 1`` floor timed back to back is reported too
(it is lower than a round trip inside a pull: there the process's caches have gone cold).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from benchmarks._harness import Config, Report, Skip, Spread

PROCESSES = (1, 2, 4)
BACKENDS = ("sqlite", "postgresql")
ACCOUNT, REGION = "111122223333", "us-east-1"
ROOT_PRINCIPAL = f"arn:aws:iam::{ACCOUNT}:root"
SIZES = (512, 1024, 4096, 16384)  # the config blob, then the layers
PINGS = 200  # round trips timed per trial for the floor of one statement
REPO_ROOT = Path(__file__).resolve().parents[1]


# -- the worker process (python -m benchmarks.fleet WORLD REPOSITORY) -------------------------
def _open_world(world: dict[str, str]) -> Any:
    from ecrcrypt.ecr.metadata_url import open_metadata
    from ecrcrypt.ecr.registry import Registry
    from ecrcrypt.kms.local.service import LocalKms
    from ecrcrypt.store.filesystem import FilesystemBlobStore

    kms = LocalKms(Path(world["kms"]), account=ACCOUNT, region=REGION)
    return Registry(
        kms=kms.client,
        store=FilesystemBlobStore(world["blobs"]),
        metadata=open_metadata(world["metadata"]),
        account=ACCOUNT,
        region=REGION,
    )


def _push(repo: Any, tag: str) -> None:
    from ecrcrypt import build_manifest
    from ecrcrypt.digest import Digest

    blobs = [os.urandom(n) for n in SIZES]
    pushed = [repo.push_layer(b, digest=Digest.of(b)) for b in blobs]
    repo.put_image(build_manifest(pushed[1:], config=pushed[0]), tag=tag)


def _pull(repo: Any, tag: str) -> None:
    image = repo.get_image(tag=tag)
    for digest in image.layer_digests:
        repo.read_layer(digest)


def _ping(metadata: Any) -> None:
    with metadata._read() as db:  # the path every one-statement read takes: pool, psycopg, round trip
        db.execute("SELECT 1").fetchone()


class _RoundTrips:
    """Makes each read of a SQLite metadata also pay one PostgreSQL round trip (``SELECT 1``
    through a :class:`PostgresMetadata`'s pool) while ``on``: a pull that costs SQLite's work
    plus exactly one round trip per statement, what a remote backend could at best achieve."""

    def __init__(self, metadata: Any, url: str) -> None:
        from ecrcrypt.ecr.metadata_postgres import PostgresMetadata

        self.remote = PostgresMetadata.open(url, pool_size=1)
        self.on = False
        self.trips = 0
        original = metadata._read

        @contextlib.contextmanager
        def read() -> Iterator[Any]:
            if self.on:
                _ping(self.remote)
                self.trips += 1
            with original() as db:
                yield db

        metadata._read = read


def _count_statements(metadata: Any, action: Any) -> int:
    """The statements ``action`` sends to a PostgreSQL metadata (counted once, outside any timed run)."""
    from ecrcrypt.ecr import metadata_postgres

    sent = 0
    original = metadata_postgres._PgConnection.execute

    def counting(self: Any, sql: str, parameters: Any = (), /) -> Any:
        nonlocal sent
        sent += 1
        return original(self, sql, parameters)

    metadata_postgres._PgConnection.execute = counting  # type: ignore[method-assign]
    try:
        action()
    finally:
        metadata_postgres._PgConnection.execute = original  # type: ignore[method-assign]
    return sent


def worker(world: dict[str, str], repository: str) -> None:
    """Answer ``push N`` / ``pull N`` / ``pullrt N`` (pulls with a round trip per read, SQLite
    only) / ``ping N`` on stdin with the seconds they took, ``statements`` with the round trips
    one pull makes; ``quit`` ends."""
    registry = _open_world(world)
    repo = registry.repository(repository)
    metadata = registry._core.metadata
    trips = _RoundTrips(metadata, world["round_trips"]) if "round_trips" in world else None
    tags: list[str] = []
    print("ready", flush=True)
    for line in sys.stdin:
        command, _, count = line.strip().partition(" ")
        if command == "quit":
            break
        if command == "statements":
            if trips is None:
                made = _count_statements(metadata, lambda: _pull(repo, tags[-1]))
            else:
                trips.on, trips.trips = True, 0
                _pull(repo, tags[-1])
                trips.on, made = False, trips.trips
            print(f"done {made}", flush=True)
            continue
        if trips is not None:
            trips.on = command == "pullrt"
        start = time.perf_counter()
        for i in range(int(count)):
            if command == "push":
                tags.append(f"t{len(tags)}")
                _push(repo, tags[-1])
            elif command in ("pull", "pullrt"):
                _pull(repo, tags[len(tags) - 1 - (i % len(tags))])
            else:
                _ping(metadata if trips is None else trips.remote)
        print(f"done {time.perf_counter() - start:.6f}", flush=True)
        if trips is not None:
            trips.on = False
    if trips is not None:
        trips.remote.close()
    registry.close()


# -- the parent -------------------------------------------------------------------------------
class _Pool:
    """The worker processes of one configuration, each with its own repository."""

    def __init__(self, world: dict[str, str], backend: str, processes: int) -> None:
        self.name = f"{backend}_{processes}p"
        self.procs: list[subprocess.Popen[str]] = []
        for i in range(processes):
            repository = f"bench/{self.name}-{i}"
            self.procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "benchmarks.fleet", json.dumps(world), repository],
                    cwd=REPO_ROOT,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
        for proc in self.procs:
            self._answer(proc, "ready")

    @staticmethod
    def _answer(proc: subprocess.Popen[str], expected: str) -> str:
        out: IO[str] | None = proc.stdout
        assert out is not None
        line = out.readline()
        if not line.startswith(expected):
            raise RuntimeError(f"a benchmark worker answered {line!r} (exit status {proc.poll()})")
        return line

    def run(self, command: str, count: int) -> float:
        """Wall seconds from sending ``command count`` to every worker until the last one answered."""
        start = time.perf_counter()
        self._send(command, count)
        for proc in self.procs:
            self._answer(proc, "done")
        return time.perf_counter() - start

    def ask(self, command: str, count: int = 0) -> float:
        """The first worker's own answer to ``command count`` (a figure it measured itself)."""
        self._send(command, count, only_first=True)
        return float(self._answer(self.procs[0], "done").split()[1])

    def _send(self, command: str, count: int, *, only_first: bool = False) -> None:
        for proc in self.procs[:1] if only_first else self.procs:
            assert proc.stdin is not None
            proc.stdin.write(f"{command} {count}\n")
            proc.stdin.flush()

    def close(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(OSError):
                assert proc.stdin is not None
                proc.stdin.write("quit\n")
                proc.stdin.close()
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _make_world(root: Path, metadata_url: str) -> dict[str, str]:
    """A registry (local KMS, filesystem blobs, metadata at ``metadata_url``) and its AES256 repositories."""
    from ecrcrypt.ecr.metadata_url import create_metadata
    from ecrcrypt.ecr.service_key import ServiceKey
    from ecrcrypt.kms.local.service import LocalKms

    root.mkdir(parents=True)
    kms = LocalKms(root / "kms.sqlite3", account=ACCOUNT, region=REGION)
    wrapping = kms.client(ROOT_PRINCIPAL).create_key(description="service key").arn
    with create_metadata(metadata_url, account=ACCOUNT, region=REGION) as metadata:
        ServiceKey.create_wrapped(metadata, kms.client(ROOT_PRINCIPAL), key_id=wrapping)
    kms.close()
    world = {"kms": str(root / "kms.sqlite3"), "blobs": str(root / "blobs"), "metadata": metadata_url}
    with _open_world(world) as registry:
        for n in PROCESSES:
            for i in range(n):
                registry.create_repository(
                    f"bench/{root.name}_{n}p-{i}", encryption_configuration={"encryptionType": "AES256"}
                )
    return world


@contextlib.contextmanager
def _postgres() -> Iterator[str]:
    """A database on a PostgreSQL server of our own, with durable commits as in service."""
    try:
        import psycopg

        from tests.pg_server import running_postgres
    except ImportError as exc:
        raise Skip(f"PostgreSQL benchmark needs psycopg and the tests' server helper ({exc})") from None
    try:
        server_cm = running_postgres()
        server = server_cm.__enter__()
    except RuntimeError as exc:
        raise Skip(f"no PostgreSQL server: {exc}") from None
    try:
        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET fsync = on")
            conn.execute("ALTER SYSTEM SET full_page_writes = on")
            conn.execute("SELECT pg_reload_conf()")
        yield server.create_database()
    finally:
        server_cm.__exit__(None, None, None)


def _spread(num: list[float], den: list[float]) -> Spread:
    return Spread.of([a / b for a, b in zip(num, den, strict=True)])


def run(cfg: Config, report: Report) -> None:
    trials = 5 if cfg.quick else 9
    counts = {"push": 12, "pull": 30} if cfg.quick else {"push": 40, "pull": 100}
    with tempfile.TemporaryDirectory(prefix="ecrcrypt-bench-fleet-") as tmp, _postgres() as pg_url:
        root = Path(tmp)
        urls = {"sqlite": f"sqlite:///{root / 'sqlite' / 'metadata.sqlite3'}", "postgresql": pg_url}
        worlds = {backend: _make_world(root / backend, urls[backend]) for backend in BACKENDS}
        worlds["sqlite"]["round_trips"] = pg_url
        pools: dict[tuple[str, int], _Pool] = {}
        try:
            for backend in BACKENDS:
                for n in PROCESSES:
                    pools[backend, n] = _Pool(worlds[backend], backend, n)
            for pool in pools.values():  # warm every path, and leave images to pull
                pool.run("push", 3)
                pool.run("pull", 3)
            rates: dict[tuple[str, str, int], list[float]] = {
                (op, b, n): [] for op in counts for b in BACKENDS for n in PROCESSES
            }
            pings: list[float] = []
            with_trips: list[float] = []
            statements = {b: int(pools[b, 1].ask("statements")) for b in BACKENDS}
            order = list(pools)
            for t in range(trials):
                for backend, n in order if t % 2 == 0 else reversed(order):
                    for op, count in counts.items():
                        seconds = pools[backend, n].run(op, count)
                        rates[op, backend, n].append(n * count / seconds)
                    if (backend, n) == ("postgresql", 1):  # a round trip's floor, beside that trial's pulls
                        pings.append(pools[backend, n].ask("ping", PINGS) / PINGS)
                    if (backend, n) == ("sqlite", 1):  # the ceiling: SQLite's pull plus its round trips
                        with_trips.append(counts["pull"] / pools[backend, n].run("pullrt", counts["pull"]))
            transactions = _transactions(pg_url)
        finally:
            for pool in pools.values():
                pool.close()
    _report(report, rates, counts, trials)
    _report_round_trips(report, rates, pings, with_trips, statements)
    report.extra["fleet"]["postgresql_transactions"] = transactions


def _report_round_trips(
    report: Report,
    rates: dict[tuple[str, str, int], list[float]],
    pings: list[float],
    with_trips: list[float],
    statements: dict[str, int],
) -> None:
    """Where a PostgreSQL pull's time goes, paired per trial with the pulls it explains.

    ``sqlite + round trips``: SQLite's own pull, each of its reads preceded by one PostgreSQL
    round trip -- what a backend that cost nothing but its round trips would do. Its ratio to
    SQLite is the ceiling of ``fleet_pull_pg_sqlite_1p_ratio`` for a pull of this many statements;
    PostgreSQL's ratio to it says how much the backend costs beyond its round trips (1: nothing).
    """
    report.add(
        "fleet_pull_statements",
        "fleet: metadata statements per pull",
        statements["postgresql"],
        "",
        f"PostgreSQL, counted once (get_image by tag, then one per blob); SQLite reads: {statements['sqlite']}",
    )
    report.add(
        "fleet_pg_round_trip_us",
        "fleet: PostgreSQL round trip (SELECT 1)",
        statistics.median(pings) * 1e6,
        "us",
        f"1 process, {PINGS} back to back per trial, through the metadata's pool; min {min(pings) * 1e6:.0f}, "
        f"max {max(pings) * 1e6:.0f}",
    )
    report.spread(
        "fleet_pull_round_trip_ceiling_1p_ratio",
        "fleet: pull SQLite+round trips / SQLite, 1 proc",
        _spread(with_trips, rates["pull", "sqlite", 1]),
        "the PostgreSQL / SQLite ratio a backend costing only its round trips would reach",
    )
    report.spread(
        "fleet_pull_pg_vs_round_trip_ceiling_1p_ratio",
        "fleet: pull PostgreSQL / (SQLite+round trips), 1 proc",
        _spread(rates["pull", "postgresql", 1], with_trips),
        "1: PostgreSQL costs its round trips and nothing more",
    )


def _transactions(url: str) -> dict[str, int]:
    """The database's commits and rollbacks so far: a rollback is a transaction that failed, most
    of them serialization failures re-run by ``PostgresMetadata`` (the benchmark's own statements
    never fail)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT xact_commit, xact_rollback FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    assert row is not None
    return {"commits": int(row[0]), "rollbacks": int(row[1])}


def _report(
    report: Report, rates: dict[tuple[str, str, int], list[float]], counts: dict[str, int], trials: int
) -> None:
    details: dict[str, Any] = {"trials": trials, "per_process_per_trial": counts, "falls": {}, "rates": {}}
    for (op, backend, n), values in rates.items():
        note = f"{n} process{'es' if n > 1 else ''}, {counts[op]} {op}{'es' if op == 'push' else 's'} each per trial"
        key = f"fleet_{op}_{backend}_{n}p_per_s"
        report.add(
            key,
            f"fleet: {op}{'es' if op == 'push' else 's'}/s, {backend}, {n} proc",
            statistics.median(values),
            "/s",
            note,
        )
        details["rates"][key] = [round(v, 1) for v in values]
    for op in counts:
        for n in PROCESSES:
            report.spread(
                f"fleet_{op}_pg_sqlite_{n}p_ratio",
                f"fleet: {op} PostgreSQL / SQLite, {n} proc",
                _spread(rates[op, "postgresql", n], rates[op, "sqlite", n]),
                "throughput ratio, paired per trial" + (" (target >= 0.5)" if n == 1 else ""),
            )
        for backend in BACKENDS:
            for n in PROCESSES[1:]:
                report.spread(
                    f"fleet_{op}_{backend}_{n}p_scaling",
                    f"fleet: {op} {backend}, {n} proc / 1 proc",
                    _spread(rates[op, backend, n], rates[op, backend, 1]),
                    "total throughput ratio, paired per trial (< 1: falls as processes are added)",
                )
            medians = [statistics.median(rates[op, backend, n]) for n in PROCESSES]
            details["falls"][f"{op}_{backend}"] = any(b < a for a, b in itertools.pairwise(medians))
    report.extra["fleet"] = details


if __name__ == "__main__":
    worker(json.loads(sys.argv[1]), sys.argv[2])
