"""The console script in a fresh virtualenv: a one-line hint without the ``cli`` extra, a working CLI with it."""

from __future__ import annotations

import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _pip(python: Path, *args: str) -> None:
    proc = subprocess.run([str(python), "-m", "pip", *args], capture_output=True, text=True, timeout=540, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.index  # needs PyPI (or pip's configured mirror) for hatchling and the dependencies
def test_the_console_script_with_and_without_the_cli_extra(tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python, script = env_dir / "bin" / "python", env_dir / "bin" / "ecrcrypt"

    _pip(python, "install", "-q", str(ROOT))
    bare = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=False)
    assert bare.returncode == 255
    assert bare.stderr.strip() == "ecrcrypt: the command line needs click, rich, jmespath: pip install 'ecrcrypt[cli]'"

    _pip(python, "install", "-q", f"{ROOT}[cli]")
    registry = tmp_path / "reg"
    init = subprocess.run([str(script), "--dir", str(registry), "init"], capture_output=True, text=True, check=False)
    assert init.returncode == 0, init.stderr
    keys = subprocess.run([str(script), "--dir", str(registry), "kms", "list-keys"], capture_output=True, text=True)
    assert (keys.returncode, keys.stdout.strip()) == (0, '{\n    "Keys": []\n}')
