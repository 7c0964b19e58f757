"""The 66 offline ESDK vectors written by ESDK-NET (38 decrypt, 28 must be rejected).

Data: tests/data/esdk-vectors (a copy of ../shared/esdk-vectors, Apache-2.0; see its
README). Every case is decrypted one-shot and, for the framed unsigned ones, also
through the streaming reader.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import pytest

from ecrcrypt import DecryptPolicy, decrypt
from ecrcrypt.errors import AuthenticationError, CommitmentPolicyError
from ecrcrypt.providers.raw_aes import RawAesKeyProvider
from ecrcrypt.streams import DecryptingReader

ROOT = Path(__file__).parents[1] / "data" / "esdk-vectors"
OUTCOMES = json.loads((ROOT / "expected-outcomes.json").read_text())["cases"]
V1 = DecryptPolicy(allow_v1=True)


def _case_id(case: dict[str, Any]) -> str:
    path: str = case["file"]
    return path.split("/")[0] + ":" + path.rsplit("/", 1)[1][:40]


def _load(case: dict[str, Any]) -> tuple[bytes, RawAesKeyProvider, dict[str, str], bytes, dict[str, Any]]:
    set_dir = ROOT / case["file"].split("/")[0]
    manifest = json.loads((set_dir / "manifest.json").read_text())
    keys = json.loads((set_dir / "keys.json").read_text())["keys"]
    name = case["file"].rsplit("/", 1)[1]
    test = manifest["tests"][name]
    (mk,) = test["master-keys"]
    provider = RawAesKeyProvider(
        key_namespace=mk["provider-id"], key_name=mk["key"], wrapping_key=base64.b64decode(keys[mk["key"]]["material"])
    )
    ciphertext = (set_dir / test["ciphertext"].removeprefix("file://")).read_bytes()
    plaintext = (set_dir / test["result"]["output"]["plaintext"].removeprefix("file://")).read_bytes()
    return ciphertext, provider, test["encryption-context"], plaintext, test


def test_all_66_cases_are_present() -> None:
    assert len(OUTCOMES) == 66
    assert sum(c["expected"] == "ok" for c in OUTCOMES) == 38
    for case in OUTCOMES:
        assert (ROOT / case["file"]).is_file()


@pytest.mark.parametrize("case", OUTCOMES, ids=_case_id)
def test_vector(case: dict[str, Any]) -> None:
    ciphertext, provider, context, plaintext, test = _load(case)
    assert test["cmm"] in ("Default", "RequiredEncryptionContext")
    if case["expected"] == "ok":
        assert decrypt(ciphertext, provider=provider, context=context, policy=V1) == plaintext
        if case["suite"] not in ("0578", "0378", "0346", "0214"):
            reader = DecryptingReader(io.BytesIO(ciphertext), provider=provider, context=context, policy=V1)
            assert reader.read() == plaintext
    else:
        # ESDK-NET 4.0.0 authenticated a different header AAD: the header tag must not verify.
        with pytest.raises(AuthenticationError):
            decrypt(ciphertext, provider=provider, context=context, policy=V1)


@pytest.mark.parametrize("case", [c for c in OUTCOMES if c["message_format"] == 1][:3], ids=_case_id)
def test_v1_vectors_need_the_opt_in(case: dict[str, Any]) -> None:
    ciphertext, provider, context, _, _ = _load(case)
    with pytest.raises(CommitmentPolicyError):
        decrypt(ciphertext, provider=provider, context=context)
