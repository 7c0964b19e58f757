"""pytest plugin: a moto server on 127.0.0.1 and boto3 clients pointed at it.

Load with ``pytest_plugins = ["tests.moto_server"]`` (or ``-p tests.moto_server``).
The server is a child process (``python -m moto.server``) started once per
session (once per xdist worker) on a free loopback port, so the AWS emulator
neither shares the test process's GIL nor counts towards its memory. Nothing
leaves loopback; the credentials are dummies.

Fixtures:
* ``moto_endpoint`` (session): the ``http://127.0.0.1:<port>`` URL.
* ``moto_reset`` (function): clears all moto state (``POST /moto-api/reset``).
* ``kms_client`` / ``s3_client`` (function): boto3 clients on a freshly reset server.
* ``s3_bucket`` (function): the name of a new, empty bucket in ``s3_client``.
* ``boto3_session`` (session): a boto3 Session with the dummy credentials.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests._moto_process import REGION, running_moto_server

ACCOUNT = "123456789012"  # moto's default account id
_DUMMY = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}  # not a secret: moto accepts any

__all__ = [
    "ACCOUNT",
    "REGION",
    "boto3_session",
    "kms_client",
    "moto_endpoint",
    "moto_reset",
    "s3_bucket",
    "s3_client",
]


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """Start ``moto.server`` on 127.0.0.1 for the session; yield its URL; stop it at the end."""
    pytest.importorskip("moto.server", reason="moto[server] is not installed (test extra)")
    with running_moto_server() as url:
        yield url


def reset_moto(endpoint: str) -> None:
    req = urllib.request.Request(endpoint + "/moto-api/reset", method="POST", data=b"")
    with urllib.request.urlopen(req, timeout=10) as resp:
        resp.read()


@pytest.fixture
def moto_reset(moto_endpoint: str) -> str:
    """Clear every moto backend, so each test starts from an empty account."""
    reset_moto(moto_endpoint)
    return moto_endpoint


@pytest.fixture(scope="session")
def boto3_session() -> Any:
    boto3 = pytest.importorskip("boto3", reason="boto3 is not installed (aws extra)")
    return boto3.session.Session(region_name=REGION, **_DUMMY)


def make_client(session: Any, service: str, endpoint: str) -> Any:
    from botocore.config import Config

    return session.client(
        service,
        endpoint_url=endpoint,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, s3={"addressing_style": "path"}),
    )


@pytest.fixture
def kms_client(boto3_session: Any, moto_reset: str) -> Any:
    return make_client(boto3_session, "kms", moto_reset)


@pytest.fixture
def s3_client(boto3_session: Any, moto_reset: str) -> Any:
    return make_client(boto3_session, "s3", moto_reset)


@pytest.fixture
def s3_bucket(s3_client: Any) -> str:
    name = "ecrcrypt-test-bucket"
    s3_client.create_bucket(Bucket=name)
    return name
