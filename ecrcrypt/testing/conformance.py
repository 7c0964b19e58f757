"""Conformance suites a user runs against their own ``BlobStore`` or ``Kms`` implementation.

Subclass, provide the fixture, and pytest collects the inherited tests::

    class TestMyStore(BlobStoreConformance):
        @pytest.fixture
        def store(self) -> BlobStore:
            return MyStore(...)

    class TestMyKms(KmsConformance):
        @pytest.fixture
        def kms(self) -> Kms:
            return MyKms(...)   # a client for a principal allowed everything on its keys

The suites hold the contract the registry relies on (what ``docs/architecture.md`` states
for stores and ``ecrcrypt.kms`` for the KMS API), the same properties the project's own
suites check against the memory, filesystem and S3 stores and against the local KMS and
AWS KMS. A store or KMS that passes can stand in for ecrcrypt's own in a ``Registry``.
"""

from __future__ import annotations

import pytest

from ecrcrypt.errors import BlobNotFoundError, InvalidCiphertextError, NotFoundError, ValidationError
from ecrcrypt.kms import GrantConstraints, GrantOperation, KeyState, Kms
from ecrcrypt.store.protocol import BlobStore, BlobWriter

__all__ = ["BlobStoreConformance", "KmsConformance"]


def _put(store: BlobStore, key: str, data: bytes, *, reserve: bytes = b"") -> None:
    with store.open_write(key, reserve=len(reserve)) as writer:
        for i in range(0, len(data), 4096):
            writer.write(data[i : i + 4096])
        if reserve:
            writer.write_reserved(reserve)
        writer.commit()


def _get(store: BlobStore, key: str) -> bytes:
    with store.open_read(key) as f:
        return f.read()


class BlobStoreConformance:
    """The ``BlobStore`` contract: atomic commits, aborts that leave nothing, ranges, listing."""

    @pytest.fixture
    def store(self) -> BlobStore:
        raise NotImplementedError("override the `store` fixture with your BlobStore")

    def test_implements_the_protocols(self, store: BlobStore) -> None:
        assert isinstance(store, BlobStore)
        writer = store.open_write("k")
        assert isinstance(writer, BlobWriter)
        writer.abort()

    def test_round_trip_size_and_ranges(self, store: BlobStore) -> None:
        data = bytes(range(256)) * 100
        _put(store, "a/b", data)
        assert _get(store, "a/b") == data
        assert store.size("a/b") == len(data)
        assert store.read_range("a/b", 1000, 50) == data[1000:1050]
        assert store.exists("a/b")

    def test_reserve_is_filled_at_the_front(self, store: BlobStore) -> None:
        _put(store, "r", b"body", reserve=b"head")
        assert _get(store, "r") == b"headbody"

    def test_nothing_is_visible_before_commit(self, store: BlobStore) -> None:
        writer = store.open_write("pending")
        writer.write(b"x" * 100)
        assert not store.exists("pending")
        writer.abort()
        assert not store.exists("pending")

    def test_leaving_without_commit_aborts_and_keeps_the_previous_version(self, store: BlobStore) -> None:
        _put(store, "k", b"old")
        with store.open_write("k") as writer:
            writer.write(b"new")
        assert _get(store, "k") == b"old"

    def test_overwrite_replaces_the_whole_object(self, store: BlobStore) -> None:
        _put(store, "k", b"a long first version")
        _put(store, "k", b"short")
        assert _get(store, "k") == b"short"

    def test_missing_objects(self, store: BlobStore) -> None:
        with pytest.raises(BlobNotFoundError):
            store.open_read("missing")
        with pytest.raises(BlobNotFoundError):
            store.size("missing")
        with pytest.raises(BlobNotFoundError):
            store.read_range("missing", 0, 1)
        store.delete("missing")  # no error
        assert not store.exists("missing")

    def test_list_by_prefix_and_delete(self, store: BlobStore) -> None:
        for key in ("p/1", "p/2", "q/1"):
            _put(store, key, key.encode())
        assert sorted(store.list("p/")) == ["p/1", "p/2"]
        store.delete("p/1")
        assert sorted(store.list("p/")) == ["p/2"]
        assert sorted(store.list()) == ["p/2", "q/1"]


class KmsConformance:
    """The ``Kms`` contract the registry relies on: keys, data keys bound to their context,
    grants with constraints, key states. ``kms`` is a client allowed everything on its keys."""

    @pytest.fixture
    def kms(self) -> Kms:
        raise NotImplementedError("override the `kms` fixture with your Kms client")

    def test_create_and_describe(self, kms: Kms) -> None:
        meta = kms.create_key(description="conformance")
        assert meta.key_state is KeyState.ENABLED and meta.enabled
        assert kms.describe_key(key_id=meta.key_id).arn == meta.arn
        assert kms.describe_key(key_id=meta.arn).key_id == meta.key_id

    def test_unknown_key(self, kms: Kms) -> None:
        with pytest.raises(NotFoundError):
            kms.describe_key(key_id="alias/ecrcrypt-conformance-missing")

    def test_aliases(self, kms: Kms) -> None:
        meta = kms.create_key()
        kms.create_alias(alias_name="alias/ecrcrypt-conformance", target_key_id=meta.key_id)
        assert kms.describe_key(key_id="alias/ecrcrypt-conformance").arn == meta.arn
        names = [a.alias_name for a in kms.list_aliases(key_id=meta.key_id).aliases]
        assert "alias/ecrcrypt-conformance" in names

    def test_data_keys_are_bound_to_their_context(self, kms: Kms) -> None:
        key = kms.create_key().arn
        context = {"aws:ecr:arn": "arn:aws:ecr:us-east-1:111122223333:repository/a"}
        data_key = kms.generate_data_key(key_id=key, key_spec="AES_256", encryption_context=context)
        assert len(data_key.plaintext) == 32 and data_key.key_id == key
        opened = kms.decrypt(ciphertext_blob=data_key.ciphertext_blob, encryption_context=context)
        assert opened.plaintext == data_key.plaintext and opened.key_id == key
        with pytest.raises(InvalidCiphertextError):
            kms.decrypt(ciphertext_blob=data_key.ciphertext_blob, encryption_context={"aws:ecr:arn": "other"})
        assert data_key.plaintext.hex() not in repr(data_key)

    def test_grants_create_list_retire(self, kms: Kms) -> None:
        key = kms.create_key().arn
        constraints = GrantConstraints(encryption_context_subset={"aws:ecr:arn": "arn:aws:ecr:r:1:repository/a"})
        made = kms.create_grant(
            key_id=key,
            grantee_principal="ecr.us-east-1.amazonaws.com",
            operations=[GrantOperation.DECRYPT, GrantOperation.GENERATE_DATA_KEY],
            retiring_principal="ecr.us-east-1.amazonaws.com",
            constraints=constraints,
        )
        (listed,) = kms.list_grants(key_id=key).grants
        assert listed.grant_id == made.grant_id and listed.constraints == constraints
        kms.retire_grant(key_id=key, grant_id=made.grant_id)
        assert kms.list_grants(key_id=key).grants == ()

    def test_revoke_and_unknown_grants(self, kms: Kms) -> None:
        key = kms.create_key().arn
        made = kms.create_grant(key_id=key, grantee_principal="ecr.us-east-1.amazonaws.com", operations=["Decrypt"])
        kms.revoke_grant(key_id=key, grant_id=made.grant_id)
        with pytest.raises((NotFoundError, ValidationError)):
            kms.revoke_grant(key_id=key, grant_id=made.grant_id)

    def test_a_disabled_key_refuses_data_keys(self, kms: Kms) -> None:
        key = kms.create_key().arn
        kms.disable_key(key_id=key)
        assert kms.describe_key(key_id=key).key_state is KeyState.DISABLED
        with pytest.raises(Exception) as caught:
            kms.generate_data_key(key_id=key, key_spec="AES_256")
        assert getattr(caught.value, "code", None) == "DisabledException"
        kms.enable_key(key_id=key)
        assert kms.generate_data_key(key_id=key, number_of_bytes=16).key_id == key

    def test_list_keys_pages(self, kms: Kms) -> None:
        made = {kms.create_key().key_id for _ in range(3)}
        seen: set[str] = set()
        marker: str | None = None
        while True:
            page = kms.list_keys(limit=2, marker=marker)
            seen |= {k.key_id for k in page.keys}
            if not page.truncated:
                break
            marker = page.next_marker
        assert made <= seen
