"""docs/testing.md's worked example, run as a user runs it: its own directory, plain pytest, no conftest.

The fixtures come from ecrcrypt's pytest11 entry point and the strategies from ecrcrypt.strategies;
if either broke, or the example drifted from the code, this fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.docs.markdown_blocks import ROOT, blocks


def test_the_worked_example_passes_under_pytest(tmp_path: Path) -> None:
    (example,) = [b for b in blocks(ROOT / "docs" / "testing.md") if b.code.startswith("# test_my_registry.py")]
    (tmp_path / "test_my_registry.py").write_text(example.code)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "HYPOTHESIS_"))}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_my_registry.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 passed" in proc.stdout
