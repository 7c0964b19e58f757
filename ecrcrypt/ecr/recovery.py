"""Finish or undo what a crashed process left half done, and report it.

A repository creation records its intent -- uid, key, grant names -- before the first
CreateGrant, and a deletion records its intent in the transaction that removes the
repository row (``ecr.metadata``). An intent whose process is dead (``ecr.liveness``) is
taken over (compare-and-set on its owner, so two recoveries never run one intent) and:

* an interrupted **creation** is undone: the grants made for it are found on the key by
  name or by the uid in their constraint (ListGrants: grant ids were never recorded) and
  retired; the caller never got a repository, so none appears;
* an interrupted **deletion** is finished: the repository's blobs deleted, its recorded
  grants (and any other grant constrained to its uid) retired.

Then every key the registry uses is swept for grants constrained to one of the registry's
repository ARNs, granted to ECR's or the storage principal, that neither a repository
record nor an intent accounts for -- orphans, e.g. of a version without intents -- and
those are retired. Last, the blobs that dead pushes announced (their blob intents) are
deleted (``ecr.gc`` with ``sweep=False``): recovery deletes only what durable evidence names
as garbage, never blobs merely absent from the records -- after a restore from an older
backup those are the newer pushes. The full sweep is :meth:`Registry.collect_garbage`. An intent whose
grants cannot be retired (KMS refuses) is kept, marked abandoned, for the next recovery.
"""

from __future__ import annotations

import logging

import attrs

from ecrcrypt.ecr.core import RegistryCore
from ecrcrypt.ecr.crashpoints import crashpoint
from ecrcrypt.ecr.gc import DEFAULT_GRACE, GarbageReport, collect_garbage
from ecrcrypt.ecr.lifecycle import (
    constrained_arn,
    constrained_uid,
    delete_repository_blobs,
    grants_of_uid,
    list_key_grants,
    recovery_ways,
    retire_grants,
)
from ecrcrypt.ecr.liveness import ABANDONED, current_owner, owner_alive
from ecrcrypt.ecr.metadata import RepositoryIntent, now
from ecrcrypt.errors import KmsError

_log = logging.getLogger(__name__)

__all__ = ["RecoveryReport", "recover", "undo_creation"]


@attrs.frozen(kw_only=True)
class RecoveryReport:
    """What one recovery did. Empty tuples everywhere: there was nothing to do."""

    #: repositories whose interrupted creation was undone (they do not exist)
    creations_undone: tuple[str, ...] = ()
    #: repositories whose interrupted deletion was finished
    deletions_finished: tuple[str, ...] = ()
    #: ids of the grants retired (of undone creations, finished deletions, and orphans), including
    #: recorded ones KMS no longer knew (retired or revoked before, e.g. by hand)
    grants_retired: tuple[str, ...] = ()
    #: ids of grants that should go but KMS refused to retire or revoke (retried next time)
    grants_left: tuple[str, ...] = ()
    #: repositories whose creation or deletion a live process is still running: left alone
    in_progress: tuple[str, ...] = ()
    #: KMS failures met (e.g. ListGrants denied), one message each
    errors: tuple[str, ...] = ()
    garbage: GarbageReport = attrs.Factory(GarbageReport)

    @property
    def clean(self) -> bool:
        """Nothing is left for a later recovery to do."""
        return not (self.grants_left or self.errors or self.in_progress or self.garbage.in_flight)


@attrs.define
class _Progress:
    undone: list[str] = attrs.Factory(list)
    finished: list[str] = attrs.Factory(list)
    retired: list[str] = attrs.Factory(list)
    left: list[str] = attrs.Factory(list)
    busy: list[str] = attrs.Factory(list)
    errors: list[str] = attrs.Factory(list)


def recover(core: RegistryCore, caller: str, *, grace: float = DEFAULT_GRACE) -> RecoveryReport:
    """Run the whole recovery (see the module doc) with ``caller``'s KMS client; idempotent."""
    progress = _Progress()
    me = current_owner()
    for intent in core.metadata.list_intents():
        if owner_alive(intent.owner, age=now() - intent.started_at, grace=grace):
            progress.busy.append(intent.name)
            continue
        if not core.metadata.claim_intent(intent.uid, intent.owner, me):
            continue  # another recovery (or the owner) changed it meanwhile
        crashpoint("recover:claimed")
        _settle_or_abandon(core, caller, intent, me, progress)
    _sweep_orphans(core, caller, progress)
    garbage = collect_garbage(core, grace=grace, sweep=False)
    report = RecoveryReport(
        creations_undone=tuple(progress.undone),
        deletions_finished=tuple(progress.finished),
        grants_retired=tuple(progress.retired),
        grants_left=tuple(progress.left),
        in_progress=tuple(progress.busy),
        errors=tuple(progress.errors),
        garbage=garbage,
    )
    _log_report(report)
    return report


def _log_report(report: RecoveryReport) -> None:
    """What a crash left and recovery did is worth an operator's attention; names and grant ids only."""
    if report.creations_undone or report.deletions_finished or report.grants_retired:
        _log.warning(
            "recovery: creations undone %s, deletions finished %s, grants retired %s",
            list(report.creations_undone),
            list(report.deletions_finished),
            list(report.grants_retired),
        )
    if report.grants_left or report.errors:
        _log.error(
            "recovery: grants left for the next recovery %s; KMS errors: %s", list(report.grants_left), report.errors
        )
    if report.in_progress:
        _log.info("recovery: left alone, still running in a live process: %s", list(report.in_progress))


def undo_creation(core: RegistryCore, caller: str, intent: RepositoryIntent) -> bool:
    """Undo the abandoned creation ``intent`` now (a creator found it holding the name it wants);
    ``True`` when the name is free again."""
    me = current_owner()
    if not core.metadata.claim_intent(intent.uid, intent.owner, me):
        return False
    progress = _Progress()
    _settle_or_abandon(core, caller, intent, me, progress)
    return intent.name in progress.undone


def _settle_or_abandon(core: RegistryCore, caller: str, intent: RepositoryIntent, me: str, progress: _Progress) -> None:
    """:func:`_settle`; on an unexpected failure the intent is marked abandoned, so that the next
    recovery -- in this process too -- takes it up again instead of taking it for work in progress."""
    try:
        _settle(core, caller, intent, me, progress)
    except BaseException:
        core.metadata.claim_intent(intent.uid, me, ABANDONED)
        raise


def _settle(core: RegistryCore, caller: str, intent: RepositoryIntent, me: str, progress: _Progress) -> None:
    """Undo a creation or finish a deletion whose intent ``me`` now holds."""
    grant_ids = [g.grant_id for g in intent.grants if g.grant_id]
    if intent.kms_key is not None:
        try:
            found = grants_of_uid(core.client(caller), intent.kms_key, intent.uid, (g.name for g in intent.grants))
        except KmsError as exc:
            # Without the list, an undone creation's grants are unknown: keep the intent for later.
            progress.errors.append(f"ListGrants on {intent.kms_key} for repository '{intent.name}': {exc}")
            if intent.operation == "create":
                core.metadata.claim_intent(intent.uid, me, ABANDONED)
                return
            found = []
        grant_ids += [g.grant_id for g in found]
    delete_repository_blobs(core, intent.uid)
    if intent.kms_key is not None and grant_ids:
        outcome = retire_grants(intent.kms_key, grant_ids, recovery_ways(core, caller))
        progress.retired.extend(outcome.retired)
        if outcome.left:
            progress.left.extend(outcome.left)
            progress.errors.append(
                f"grants {', '.join(outcome.left)} of repository '{intent.name}' on {intent.kms_key} could not be "
                f"retired or revoked ({outcome.error}); the next recovery tries again"
            )
            core.metadata.claim_intent(intent.uid, me, ABANDONED)
            return
    crashpoint("recover:settled")
    core.metadata.end_intent(intent.uid, me)
    (progress.undone if intent.operation == "create" else progress.finished).append(intent.name)


def _sweep_orphans(core: RegistryCore, caller: str, progress: _Progress) -> None:
    """Retire grants for this registry's repositories that no record or intent accounts for."""
    sample = str(core.repository_arn("aa"))
    arn_prefix = sample[: sample.rindex("/") + 1]
    grantees = {core.ecr_principal, core.storage_principal}
    keys = {r.kms_key for r in core.metadata.list_repositories() if r.kms_key}
    keys |= {i.kms_key for i in core.metadata.list_intents() if i.kms_key}
    kms = core.client(caller)
    for key in sorted(keys):
        try:
            grants = list_key_grants(kms, key)
        except KmsError as exc:
            progress.errors.append(f"ListGrants on {key}: {exc}")
            continue
        snap = core.metadata.snapshot()  # after the listing: a grant listed is accounted for here
        owned = {g.grant_id for r in snap.repositories for g in r.grants}
        busy_uids = {i.uid for i in snap.intents}
        busy_names = {g.name for i in snap.intents for g in i.grants if g.name}
        orphans = [
            g.grant_id
            for g in grants
            if (constrained_arn(g) or "").startswith(arn_prefix)
            and g.grantee_principal in grantees
            and g.grant_id not in owned
            and constrained_uid(g) not in busy_uids
            and g.name not in busy_names
        ]
        if orphans:
            outcome = retire_grants(key, orphans, recovery_ways(core, caller))
            progress.retired.extend(outcome.retired)
            progress.left.extend(outcome.left)
            if outcome.left:
                progress.errors.append(f"orphan grants {', '.join(outcome.left)} on {key} could not be retired")
