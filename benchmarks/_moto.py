"""A moto server on 127.0.0.1 for the S3 runs: started and stopped by the benchmark itself."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

REGION = "us-east-1"
DUMMY = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}  # moto accepts any


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """The tests' moto launcher (``tests/_moto_process.py``), shared so both start it the same way."""
    from tests._moto_process import running_moto_server

    with running_moto_server() as url:
        yield url


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
