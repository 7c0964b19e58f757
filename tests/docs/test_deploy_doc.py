"""docs/deploy.md: its Python example runs on both metadata backends."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_deploy_example_runs(backend: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    url = "sqlite://" if backend == "sqlite" else str(request.getfixturevalue("postgres_url"))
    monkeypatch.setenv("ECRCRYPT_METADATA_URL", url)
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) == 1
    exec(compile(blocks[0], str(DOC), "exec"), {})
