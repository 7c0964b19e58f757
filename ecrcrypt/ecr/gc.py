"""Garbage collection of ciphertext blobs that no repository references.

Blobs are left behind by a process killed between a blob's commit and its record, by a
push that lost a race and died before deleting its blob, and by a deletion killed before
it reached the blobs. Collection must never take a blob a live push still needs: every
push announces its blob with a *blob intent* before it opens the blob, and removes the
intent in the transaction that records the object (``ecr.metadata``). So a blob that the
listing shows (committed before the listing began) is, at the later metadata snapshot,
either recorded, or under an intent, or garbage -- no grace period is needed for pushes of
live processes. An intent whose process is dead (``ecr.liveness``), or older than
``grace`` when its process runs on another host, no longer protects its blob.

Only blobs of repositories this registry knows (existing ones, and those with an intent)
are considered, so registries that share a store (another Region, same account prefix)
never collect each other's objects; ``unknown_repositories=True`` also takes blobs of
unknown repositories under the account's prefix, for a store this registry alone uses.
"""

from __future__ import annotations

import logging

import attrs

from ecrcrypt.ecr.core import RegistryCore
from ecrcrypt.ecr.crashpoints import crashpoint
from ecrcrypt.ecr.liveness import owner_alive
from ecrcrypt.ecr.metadata import now

_log = logging.getLogger(__name__)

__all__ = ["DEFAULT_GRACE", "GarbageReport", "collect_garbage"]

#: How long an intent of a process on another host (whose liveness cannot be checked) is
#: taken to be in progress. It must exceed the longest push or upload such a process runs.
DEFAULT_GRACE = 3600.0


@attrs.frozen(kw_only=True)
class GarbageReport:
    """What one collection did: blob keys deleted, and blobs kept because a live push holds them."""

    deleted: tuple[str, ...] = ()
    in_flight: tuple[str, ...] = ()
    #: blobs kept because a record references them
    referenced: int = 0


def collect_garbage(
    core: RegistryCore, *, grace: float = DEFAULT_GRACE, unknown_repositories: bool = False, sweep: bool = True
) -> GarbageReport:
    """Delete every blob of the registry's repositories that no record references (see the module doc).

    Idempotent: a second run right after the first deletes nothing. ``sweep=False`` deletes only
    the blobs that dead pushes announced in their blob intents: positive evidence of garbage.
    Recovery at open uses that form, because a database restored from an older backup knows
    nothing of later pushes, and a sweep would take their blobs for garbage; the full sweep is a
    deliberate call (:meth:`ecrcrypt.Registry.collect_garbage`).
    """
    prefix = f"{core.account}/"
    # first the listing, then the snapshot: see the module doc
    listed = list(core.store.list(prefix)) if sweep else []
    snap = core.metadata.snapshot()
    known = {r.uid for r in snap.repositories} | {i.uid for i in snap.intents}
    known |= {b.repository_uid for b in snap.blob_intents}
    at = now()
    owners = {b.blob_key: b.owner for b in snap.blob_intents}
    live = {b.blob_key for b in snap.blob_intents if owner_alive(b.owner, age=at - b.started_at, grace=grace)}
    deleted: list[str] = []
    in_flight: list[str] = []
    referenced = 0
    for key in listed:
        if key in snap.blob_keys:
            referenced += 1
            continue
        if key in live:
            in_flight.append(key)
            continue
        uid = key[len(prefix) :].split("/", 1)[0]
        if uid not in known and not unknown_repositories:
            continue
        # The snapshot is older than the liveness verdict: a push may have recorded this blob
        # (and exited) since. Only a fresh look at the records and the intent decides.
        if not core.metadata.claim_dead_blob(key, owners.get(key)):
            referenced += 1
            continue
        crashpoint("gc:delete")
        core.store.delete(key)
        deleted.append(key)
    for intent in snap.blob_intents:
        if intent.blob_key in live:
            continue
        # A dead push: unless it recorded its blob after the snapshot (its intent would be gone
        # then), the blob -- committed or not, listed or not -- is garbage.
        if intent.blob_key not in snap.blob_keys and core.metadata.claim_dead_blob(intent.blob_key, intent.owner):
            core.store.delete(intent.blob_key)  # listed ones are gone already; delete is idempotent
            crashpoint("gc:intent")
            core.metadata.end_blob(intent.blob_key)
    if deleted:
        _log.info("garbage collection: deleted %d unreferenced blobs: %s", len(deleted), deleted)
    return GarbageReport(deleted=tuple(deleted), in_flight=tuple(in_flight), referenced=referenced)
