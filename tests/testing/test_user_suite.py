"""docs/testing.md's worked example, run as a user runs it: its own directory, plain pytest, no conftest.

The fixtures come from ecrcrypt's pytest11 entry point and the strategies from ecrcrypt.strategies;
if either broke, or the example drifted from the code, this fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs.markdown_blocks import ROOT, blocks


@pytest.mark.parametrize(("module", "passed"), [("test_my_registry.py", 3), ("test_my_store.py", 16)])
def test_the_worked_examples_pass_under_pytest(tmp_path: Path, module: str, passed: int) -> None:
    (example,) = [b for b in blocks(ROOT / "docs" / "testing.md") if b.code.startswith(f"# {module}")]
    (tmp_path / module).write_text(example.code)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "HYPOTHESIS_"))}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", module],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{passed} passed" in proc.stdout
