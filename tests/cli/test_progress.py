"""Progress bars: drawn on a terminal, never in a pipe nor with ``--no-progress`` (pseudo-terminal test)."""

from __future__ import annotations

import hashlib
import os
import pty
import subprocess
from pathlib import Path

from tests.cli.support import SCRIPT, ok


def _run_on_a_terminal(args: list[str], registry: Path) -> tuple[int, bytes]:
    """Run with stderr on a pseudo-terminal (stdout to a file): what a user at a shell sees on stderr."""
    leader, follower = pty.openpty()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ECRCRYPT_")},
        "ECRCRYPT_DIR": str(registry),
        "TERM": "xterm",
        "COLUMNS": "100",
    }
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen([str(SCRIPT), *args], stderr=follower, stdout=subprocess.DEVNULL, env=env)
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    return proc.wait(timeout=120), seen


def test_progress_on_a_terminal_only(tmp_path: Path) -> None:
    reg = tmp_path / "reg"
    ok("--dir", str(reg), "init")
    ok("ecr", "create-repository", "--repository-name", "app", registry=reg)
    layer = tmp_path / "layer"
    layer.write_bytes(os.urandom(3 << 20))
    digest = "sha256:" + hashlib.sha256(layer.read_bytes()).hexdigest()

    status, terminal = _run_on_a_terminal(["ecr", "push-layer", "--repository-name", "app", str(layer)], reg)
    assert status == 0
    assert b"encrypting" in terminal and b"3.1/3.1 MB" in terminal  # a bar with its known total

    status, terminal = _run_on_a_terminal(
        ["ecr", "pull-layer", "--repository-name", "app", "--layer-digest", digest, str(tmp_path / "out")], reg
    )
    assert status == 0 and b"decrypting" in terminal and b"3.1/3.1 MB" in terminal

    status, quiet = _run_on_a_terminal(
        [
            "ecr",
            "pull-layer",
            "--repository-name",
            "app",
            "--layer-digest",
            digest,
            str(tmp_path / "o2"),
            "--no-progress",
        ],
        reg,
    )
    assert status == 0 and quiet == b""

    piped = subprocess.run(
        [str(SCRIPT), "ecr", "pull-layer", "--repository-name", "app", "--layer-digest", digest, str(tmp_path / "o3")],
        env={**os.environ, "ECRCRYPT_DIR": str(reg)},
        capture_output=True,
        check=True,
    )
    assert piped.stderr == b""
    assert (tmp_path / "o3").read_bytes() == layer.read_bytes()
