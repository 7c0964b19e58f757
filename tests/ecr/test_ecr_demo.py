"""The demo runs end to end (small layer) and tells the whole story."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecrcrypt.demo import generated, generated_at, main


def test_demo_story(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--dir", str(tmp_path / "reg"), "--big-layer-mib", "2", "--plain"]) == 0
    out = capsys.readouterr().out
    for expected in (
        "alias/demo-images",
        "demo/aes256",
        "demo/kms-default",
        "demo/kms-customer",
        "verified",
        "(matches)",
        "was revoked or retired",
        "failed to be retired",
        "grants left on both keys: 0",
        "BatchGetImage",
        "user/developer",
    ):
        assert expected in out, expected


def test_generated_stream_seeks() -> None:
    whole = b"".join(generated(100_003, seed=7))
    assert len(whole) == 100_003
    for offset, length in [(0, 16), (5, 40), (99_990, 13), (4096 * 3 + 1, 5000)]:
        assert generated_at(7, offset, length) == whole[offset : offset + length]
