"""Start and stop a moto server child process on 127.0.0.1 (no pytest needed).

Shared by the pytest plugin (``tests.moto_server``) and the benchmarks (``benchmarks._moto``):
``python -m moto.server`` on a free loopback port, so the emulator neither shares the caller's GIL
nor counts towards its memory. Nothing leaves loopback; the credentials are dummies.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from typing import Any

REGION = "us-east-1"
_START_TIMEOUT = 60.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/moto-api/", timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _start(log: Any, module: str, extra_env: Mapping[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    env = dict(os.environ)
    env.update(extra_env)
    # Keep the child off any real endpoint or credential file.
    env.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION})
    env.pop("AWS_PROFILE", None)
    for _attempt in range(3):  # the free port can be taken between probe and bind
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        proc = subprocess.Popen(
            [sys.executable, "-m", module, "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline and proc.poll() is None:
            if _answers(url):
                return proc, url
            time.sleep(0.1)
        _stop(proc)
    log.seek(0)
    raise RuntimeError("moto server did not start:\n" + log.read().decode(errors="replace")[-2000:])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def running_moto_server(module: str = "moto.server", env: Mapping[str, str] | None = None) -> Iterator[str]:
    """A moto server for the duration of the ``with`` block; yields its ``http://127.0.0.1:<port>`` URL.

    ``module`` is run with ``python -m`` and moto.server's arguments (another module may patch moto
    first, e.g. ``tests.fleet.kms_quota_server``); ``env`` is added to the child's environment.
    """
    with tempfile.TemporaryFile() as log:
        proc, url = _start(log, module, env or {})
        try:
            yield url
        finally:
            _stop(proc)
