"""Running the installed ``ecrcrypt`` console script as a user would: a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs

SCRIPT = Path(sys.executable).parent / "ecrcrypt"


@attrs.frozen
class Result:
    status: int
    stdout: str
    stderr: str
    raw: bytes = b""

    def json(self) -> Any:
        assert self.status == 0, self.stderr
        return json.loads(self.stdout)


def run(
    *args: str,
    registry: Path | None = None,
    stdin: bytes | None = None,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> Result:
    """``env``: variables added to the environment (every other ``ECRCRYPT_`` one is left out)."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("ECRCRYPT_")}, **(env or {})}
    if registry is not None:
        env["ECRCRYPT_DIR"] = str(registry)
    proc = subprocess.run(
        [str(SCRIPT), *args], input=stdin, capture_output=True, env=env, cwd=cwd, timeout=120, check=False
    )
    return Result(proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(), proc.stdout)


def ok(*args: str, registry: Path | None = None, stdin: bytes | None = None) -> Any:
    """Run, expect exit 0, and parse the JSON output (``None`` when it prints nothing)."""
    result = run(*args, registry=registry, stdin=stdin)
    assert result.status == 0, f"ecrcrypt {' '.join(args)} -> {result.status}: {result.stderr}"
    return json.loads(result.stdout) if result.stdout.strip() else None
