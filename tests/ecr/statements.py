"""Counting the SQL statements a call sends to the registry's metadata (no tests here).

On PostgreSQL every statement is a network round trip, so "how many statements does this request
send" is the fleet's cost of a request. :func:`counting` wraps the connection each read and each
transaction of a metadata store runs on (``MetadataOperations._read`` / ``_write``, which every
backend's operations go through), so it counts the statements of both backends the same way,
whatever the call path; a transaction's own ``BEGIN``/``COMMIT`` are not counted (PostgreSQL sends
``BEGIN`` in one pipeline with the first statement; ``COMMIT`` is one more round trip per write).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import attrs
import pytest

from ecrcrypt.ecr.metadata import MetadataConnection, MetadataOperations
from ecrcrypt.ecr.metadata_store import MetadataStore


@attrs.define
class StatementLog:
    """The statements sent while counting: ``(kind, sql)``, kind ``"read"`` or ``"write"``."""

    sent: list[tuple[str, str]] = attrs.field(factory=list)

    @property
    def reads(self) -> int:
        return sum(1 for kind, _ in self.sent if kind == "read")

    @property
    def writes(self) -> int:
        return sum(1 for kind, _ in self.sent if kind == "write")

    def __len__(self) -> int:
        return len(self.sent)

    def clear(self) -> None:
        self.sent.clear()

    def show(self) -> str:
        """The statements, one a line (for assertion messages)."""
        return "\n".join(f"{kind}: {' '.join(sql.split())}" for kind, sql in self.sent)


class _Counting:
    """A metadata connection that logs each statement before sending it."""

    def __init__(self, db: MetadataConnection, log: StatementLog, kind: str) -> None:
        self._db = db
        self._log = log
        self._kind = kind

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Any:
        self._log.sent.append((self._kind, sql))
        return self._db.execute(sql, parameters)

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Any:
        self._log.sent.append((self._kind, sql))
        return self._db.executemany(sql, parameters)


@contextmanager
def counting(metadata: MetadataStore, monkeypatch: pytest.MonkeyPatch) -> Iterator[StatementLog]:
    """Log every statement ``metadata`` sends inside the ``with`` block (either SQL backend)."""
    assert isinstance(metadata, MetadataOperations), metadata
    log = StatementLog()
    real_read, real_write = metadata._read, metadata._write

    @contextmanager
    def read() -> Iterator[MetadataConnection]:
        with real_read() as db:
            yield _Counting(db, log, "read")

    def write(op: Callable[[MetadataConnection], Any], *, durable: bool = True) -> Any:
        return real_write(lambda db: op(_Counting(db, log, "write")), durable=durable)

    with monkeypatch.context() as patch:
        patch.setattr(metadata, "_read", read)
        patch.setattr(metadata, "_write", write)
        yield log
