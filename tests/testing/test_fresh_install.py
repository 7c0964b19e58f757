"""``pip install 'ecrcrypt[hypothesis]'`` in a fresh virtualenv is enough to run a user's property suite.

The project's own venv has every extra; this one has only the core package and the
``hypothesis`` extra, so a missing requirement (or a plugin import of something optional)
shows up here and nowhere else.
"""

from __future__ import annotations

import subprocess
import venv
from pathlib import Path

import pytest

from tests.docs.markdown_blocks import ROOT, blocks


@pytest.mark.slow
@pytest.mark.index  # needs PyPI (or pip's configured mirror) for hatchling and the dependencies
def test_the_hypothesis_extra_alone_runs_the_worked_example(tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", f"{ROOT}[hypothesis]"],
        capture_output=True, text=True, timeout=540, check=False,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-3000:]
    installed = subprocess.run([str(python), "-m", "pip", "list"], capture_output=True, text=True, check=True).stdout
    assert "boto3" not in installed and "click" not in installed and "mypy" not in installed

    (example,) = [b for b in blocks(ROOT / "docs" / "testing.md") if b.code.startswith("# test_my_registry.py")]
    (tmp_path / "test_my_registry.py").write_text(example.code)
    run = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_my_registry.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "3 passed" in run.stdout
