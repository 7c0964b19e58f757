"""docs/deploy.md: its Python examples run on both metadata backends (each on a database of its own)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_deploy_example_runs(backend: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) == 2
    for block in blocks:
        if backend == "postgresql":
            monkeypatch.setenv("ECRCRYPT_METADATA_URL", request.getfixturevalue("postgres_server").create_database())
        else:
            monkeypatch.delenv("ECRCRYPT_METADATA_URL", raising=False)  # the examples' SQLite defaults
        exec(compile(block, str(DOC), "exec"), {})
