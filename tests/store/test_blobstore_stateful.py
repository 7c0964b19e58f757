"""Stateful property: any interleaving of writes, commits, aborts and deletes matches a dict model."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, precondition, rule

from ecrcrypt import BlobStore, BlobWriter, FilesystemBlobStore, MemoryBlobStore
from ecrcrypt.errors import BlobNotFoundError, ValidationError

KEYS = st.sampled_from(["a", "b", "d/x", "d/y", "d/sub/z", "e:sha256:01"])


class _StoreModel(RuleBasedStateMachine):
    writers = Bundle("writers")

    def __init__(self) -> None:
        super().__init__()
        self.model: dict[str, bytes] = {}
        self.pending: dict[int, tuple[str, BlobWriter, bytearray, bytes]] = {}
        self.store = self.make_store()
        self.opened = 0

    def make_store(self) -> BlobStore:
        raise NotImplementedError

    @rule(target=writers, key=KEYS, reserve=st.integers(0, 5))
    def open(self, key: str, reserve: int) -> int:
        writer = self.store.open_write(key, reserve=reserve)
        self.opened += 1
        token = self.opened
        self.pending[token] = (key, writer, bytearray(), b"\0" * reserve)
        return token

    @rule(token=writers, data=st.binary(max_size=300))
    def write(self, token: int, data: bytes) -> None:
        if token in self.pending:
            _, writer, body, _ = self.pending[token]
            writer.write(data)
            body += data

    @rule(token=writers, fill=st.integers(0, 255))
    def fill_reserve(self, token: int, fill: int) -> None:
        if token in self.pending:
            key, writer, body, old = self.pending[token]
            head = bytes([fill]) * len(old)
            writer.write_reserved(head)
            self.pending[token] = (key, writer, body, head)

    @rule(token=consumes(writers))
    def commit(self, token: int) -> None:
        if token not in self.pending:
            return
        key, writer, body, head = self.pending.pop(token)
        # A reserve never filled is refused; fill it the way the model expects first.
        writer.write_reserved(head)
        try:
            writer.commit()
        except ValidationError:
            # Filesystem only: a key that is also a "directory" of other keys.
            assert isinstance(self.store, FilesystemBlobStore)
            assert any(k.startswith(key + "/") or key.startswith(k + "/") for k in self.model)
            return
        self.model[key] = head + bytes(body)

    @rule(token=consumes(writers))
    def abort(self, token: int) -> None:
        if token in self.pending:
            self.pending.pop(token)[1].abort()

    @rule(key=KEYS)
    def delete(self, key: str) -> None:
        self.store.delete(key)
        self.model.pop(key, None)

    @precondition(lambda self: bool(self.model))
    @rule(data=st.data())
    def read_range(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.model)))
        value = self.model[key]
        offset = data.draw(st.integers(0, len(value)))
        length = data.draw(st.integers(0, 400))
        assert self.store.read_range(key, offset, length) == value[offset : offset + length]

    @invariant()
    def matches_model(self) -> None:
        assert list(self.store.list()) == sorted(self.model)
        for key in ["a", "b", "d/x", "d/y", "d/sub/z", "e:sha256:01"]:
            if key in self.model:
                with self.store.open_read(key) as f:
                    assert f.read() == self.model[key]
                assert self.store.size(key) == len(self.model[key])
            else:
                assert not self.store.exists(key)
                try:
                    self.store.size(key)
                except BlobNotFoundError:
                    pass
                else:
                    raise AssertionError(f"size() of missing {key!r} did not raise")

    def teardown(self) -> None:
        for _, writer, _, _ in self.pending.values():
            writer.abort()


class MemoryStoreMachine(_StoreModel):
    def make_store(self) -> BlobStore:
        return MemoryBlobStore()


class FilesystemStoreMachine(_StoreModel):
    def make_store(self) -> BlobStore:
        self._dir = tempfile.TemporaryDirectory()
        return FilesystemBlobStore(Path(self._dir.name))

    def teardown(self) -> None:
        super().teardown()
        leftovers = [p for p in Path(self._dir.name).rglob("*") if p.name.endswith(".ecrcrypt-tmp")]
        assert leftovers == []  # every writer was committed or aborted
        self._dir.cleanup()


TestMemoryStore = MemoryStoreMachine.TestCase
TestMemoryStore.settings = settings(max_examples=40, stateful_step_count=25, deadline=None)
TestFilesystemStore = FilesystemStoreMachine.TestCase
TestFilesystemStore.settings = settings(max_examples=40, stateful_step_count=25, deadline=None)
