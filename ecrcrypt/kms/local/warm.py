"""Filing a key into the local KMS's hot path after a full-path call (private).

The hot path itself (:mod:`ecrcrypt.kms.local.hot_path`) only reads per-key state; this is the
service side that builds it from a key record the full path has just checked, and
that decides which grant tokens the hot path may accept without re-parsing.
"""

from __future__ import annotations

import math

from ecrcrypt.errors import InvalidGrantTokenError
from ecrcrypt.kms import KeyManager, KeyState
from ecrcrypt.kms.local import ciphertext as blob
from ecrcrypt.kms.local import hot_path as hot
from ecrcrypt.kms.local.events import KmsEvents
from ecrcrypt.kms.local.params import MAX_GRANT_TOKENS, token_grant_id
from ecrcrypt.kms.local.rules import next_rotation
from ecrcrypt.kms.local.store import KeyRecord


class KmsWarm(KmsEvents):
    """Files keys into the hot path after a successful full-path call."""

    def _hot_key(self, key: KeyRecord) -> hot.HotKey | None:
        """The hot-path state of ``key`` (a record read since the last ``_forget``), or
        ``None`` when the key is not Enabled: only the full path serves those."""
        if key.state is not KeyState.ENABLED:
            return None
        hk = self._hot_ids.get(key.key_id)
        if hk is None:
            resources, column = self._resources((key.arn,))
            hk = hot.HotKey(
                key_id=key.key_id,
                arn=key.arn,
                account=key.account,
                customer=key.manager is KeyManager.CUSTOMER,
                # The full path performs the next automatic rotation.
                expires=next_rotation(key) if key.rotation_enabled else math.inf,
                header=blob.header(key.key_id, key.current_version),
                aead=self._aead(key, key.current_version),
                resources_tail=(
                    f',"resources":{resources},"eventType":"AwsApiCall","recipientAccountId":"{self.account}"'
                    ',"eventTime":"'
                ),
                column=column,
            )
            if len(self._hot_ids) >= hot.MAX_ENTRIES:
                self._hot_ids.clear()
            self._hot_ids[key.key_id] = hk
        return hk

    def _warm(self, key: KeyRecord, ref: object = None, header: bytes | None = None, version: int = 0) -> None:
        """After a successful full-path call on ``key``: file its hot state under the
        reference the caller used (a ``str``) and the blob header it opened."""
        hk = self._hot_key(key)
        if hk is None:
            return
        if type(ref) is str:
            if len(self._hot_refs) >= hot.MAX_ENTRIES:
                self._hot_refs.clear()
            self._hot_refs[ref] = hk
        blobs = self._hot_blobs
        if len(blobs) >= hot.MAX_ENTRIES:
            blobs.clear()
        if hk.header not in blobs:
            blobs[hk.header] = hot.HotMaterial(hk, hk.header, hk.aead)
        if header is not None and header not in blobs:
            blobs[header] = hot.HotMaterial(hk, header, self._aead(key, version))

    def _tokens_ok(self, tokens: object) -> bool:
        """Whether ``tokens`` is a list of well-formed grant tokens (else: the full path)."""
        if type(tokens) is not tuple and type(tokens) is not list:
            return False
        assert isinstance(tokens, tuple | list)
        if len(tokens) > MAX_GRANT_TOKENS:
            return False
        valid = self._valid_tokens
        for token in tokens:
            if token not in valid:
                try:
                    token_grant_id(token)
                except InvalidGrantTokenError:
                    return False
                if len(valid) >= hot.MAX_ENTRIES:
                    valid.clear()
                valid.add(token)
        return True
