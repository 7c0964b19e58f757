"""The python examples of docs/ecr-model.md's recovery section run (the docs promise no dead examples)."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "ecr-model.md"


def test_recovery_section_examples_run() -> None:
    text = DOC.read_text()
    section = text[text.index("## Crash consistency, recovery and garbage collection") : text.index("## Audit")]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, f"{DOC.name}:recovery", "exec"), {})
