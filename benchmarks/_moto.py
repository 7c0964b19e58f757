"""A moto server on 127.0.0.1 for the S3 runs: started and stopped by the benchmark itself."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

REGION = "us-east-1"
DUMMY = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}  # moto accepts any


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


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    env = dict(os.environ, AWS_DEFAULT_REGION=REGION, **{k.upper(): v for k, v in DUMMY.items()})
    env.pop("AWS_PROFILE", None)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while not _answers(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("moto server did not start")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def client(service: str, endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(
        region_name=REGION,
        aws_access_key_id=DUMMY["aws_access_key_id"],
        aws_secret_access_key=DUMMY["aws_secret_access_key"],
    )
    cfg = Config(s3={"addressing_style": "path"})
    return session.client(service, endpoint_url=endpoint, config=cfg)  # type: ignore[call-overload]
