"""A stateful Hypothesis test over create / push / pull / revoke / delete / recover / collect garbage."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from ecrcrypt.digest import Digest
from ecrcrypt.ecr.registry import AWS_MANAGED_ECR_ALIAS
from ecrcrypt.errors import (
    EcrKmsError,
    GrantsNotRetiredError,
    RepositoryAlreadyExistsError,
    RepositoryNotFoundError,
)
from tests.ecr.support import make_env

NAMES = ["app", "team/web", "team/db"]
CONFIGS = ["AES256", "KMS-default", "KMS-key0", "KMS-key1", "DSSE-key0"]


class RegistryMachine(RuleBasedStateMachine):
    @initialize()
    def setup(self) -> None:
        self.env = make_env(frame_length=256)
        self.keys = [self.env.customer_key(), self.env.customer_key()]
        self.default_key = ""
        # name -> {"key": key ARN or None, "layers": {digest: data}, "revoked": bool}
        self.model: dict[str, dict[str, Any]] = {}
        # deletions whose grants could not all be retired: their intents wait for recover()
        self.unfinished: list[str] = []

    def _key_of(self, config: str) -> str | None:
        if config == "AES256":
            return None
        if config == "KMS-default":
            return AWS_MANAGED_ECR_ALIAS
        return self.keys[int(config[-1])]

    @rule(name=st.sampled_from(NAMES), config=st.sampled_from(CONFIGS))
    def create(self, name: str, config: str) -> None:
        key = self._key_of(config)
        cfg: dict[str, str] = {"encryptionType": "AES256"}
        if key is not None:
            cfg = {"encryptionType": "KMS_DSSE" if config.startswith("DSSE") else "KMS"}
            if key != AWS_MANAGED_ECR_ALIAS:
                cfg["kmsKey"] = key
        if name in self.model:
            with pytest.raises(RepositoryAlreadyExistsError):
                self.env.registry.create_repository(name, encryption_configuration=cfg)
            return
        desc = self.env.registry.create_repository(name, encryption_configuration=cfg)
        recorded = desc.encryption_configuration.to_api().get("kmsKey")
        if key == AWS_MANAGED_ECR_ALIAS:
            self.default_key = recorded or ""
        self.model[name] = {"key": recorded, "layers": {}, "revoked": False}

    @rule(name=st.sampled_from(NAMES), data=st.binary(max_size=1200))
    def push(self, name: str, data: bytes) -> None:
        if name not in self.model:
            with pytest.raises(RepositoryNotFoundError):
                self.env.registry.repository(name)
            return
        repo = self.env.registry.repository(name)
        digest = Digest.of(data)
        if self.model[name]["revoked"] and digest not in self.model[name]["layers"]:
            with pytest.raises(EcrKmsError):
                repo.push_layer(data, digest=digest)
            return
        repo.push_layer(data, digest=digest)
        self.model[name]["layers"][digest] = data

    @rule(name=st.sampled_from(NAMES), pick=st.integers(0, 100))
    def pull(self, name: str, pick: int) -> None:
        entry = self.model.get(name)
        if entry is None or not entry["layers"]:
            return
        digest = sorted(entry["layers"], key=str)[pick % len(entry["layers"])]
        repo = self.env.registry.repository(name)
        if entry["revoked"]:
            with pytest.raises(EcrKmsError):
                repo.read_layer(digest)
        else:
            assert repo.read_layer(digest) == entry["layers"][digest]

    def _revocable(self) -> list[str]:
        # Customer managed keys only: nobody may RevokeGrant on an AWS managed key (its policy is AWS's).
        return sorted(n for n, m in self.model.items() if m["key"] in self.keys and not m["revoked"])

    @precondition(lambda self: bool(self._revocable()))
    @rule(pick=st.integers(0, 100))
    def revoke(self, pick: int) -> None:
        candidates = self._revocable()
        name = candidates[pick % len(candidates)]
        repo = self.env.registry.repository(name)
        key = self.model[name]["key"]
        (grant,) = [
            g
            for g in self.env.grants_for(key, str(repo.arn))
            if g.grantee_principal == self.env.registry.storage_principal
        ]
        self.env.admin.revoke_grant(key_id=key, grant_id=grant.grant_id)
        self.model[name]["revoked"] = True

    @rule(name=st.sampled_from(NAMES))
    def delete(self, name: str) -> None:
        entry = self.model.pop(name, None)
        if entry is None:
            with pytest.raises(RepositoryNotFoundError):
                self.env.registry.delete_repository(name, force=True)
            return
        arn = str(self.env.registry.repository(name).arn)
        if entry["revoked"]:
            with pytest.raises(GrantsNotRetiredError):
                self.env.registry.delete_repository(name, force=True)
            self.unfinished.append(name)
        else:
            self.env.registry.delete_repository(name, force=True)
        if entry["key"]:
            assert self.env.grants_for(entry["key"], arn) == []

    @rule()
    def recover(self) -> None:
        report = self.env.registry.recover()
        assert report.creations_undone == () and report.clean, report
        assert sorted(report.deletions_finished) == sorted(self.unfinished)
        self.unfinished = []
        again = self.env.registry.recover()  # idempotent: nothing left to do
        assert again.deletions_finished == again.grants_retired == again.garbage.deleted == ()

    @rule()
    def collect_garbage(self) -> None:
        assert self.env.registry.collect_garbage().deleted == ()  # nothing here ever leaves garbage

    @invariant()
    def every_blob_is_recorded(self) -> None:
        if not hasattr(self, "env"):
            return
        md = self.env.registry._core.metadata
        snap = md.snapshot()
        assert set(self.env.store.list()) == snap.blob_keys and snap.blob_intents == ()
        assert sorted(i.name for i in snap.intents) == sorted(self.unfinished)

    @invariant()
    def repositories_match(self) -> None:
        if not hasattr(self, "env"):
            return
        names = sorted(d.repository_name for d in self.env.registry.describe_repositories())
        assert names == sorted(self.model)

    @invariant()
    def grants_match(self) -> None:
        if not hasattr(self, "env"):
            return
        for key in [*self.keys, self.default_key]:
            if not key:
                continue
            expected = sum(1 if m["revoked"] else 2 for m in self.model.values() if m["key"] == key)
            assert len(self.env.all_grants(key)) == expected


TestRegistryMachine = RegistryMachine.TestCase
TestRegistryMachine.settings = settings(max_examples=30, stateful_step_count=25, deadline=None)
