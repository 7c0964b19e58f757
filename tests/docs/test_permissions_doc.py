"""docs/permissions.md: its Python example runs, and every test it cites exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "permissions.md"


def test_permissions_python_examples_run() -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert blocks
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), namespace)


def test_every_cited_test_exists() -> None:
    text = DOC.read_text()
    cited = re.findall(r"`(tests/[\w/]+\.py)::(test_\w+)`", text)
    # "`::test_name`" continues the file cited before it in the same cell.
    cells = re.findall(r"`(tests/[\w/]+\.py)::test_\w+`((?:, `::test_\w+`)*)", text)
    for path, rest in cells:
        cited += [(path, name) for name in re.findall(r"`::(test_\w+)`", rest)]
    assert len(cited) > 20
    for path, name in cited:
        source = (ROOT / path).read_text()
        assert re.search(rf"^def {name}\(", source, re.M), f"{path}::{name} is cited in docs/permissions.md"
