"""The moto fixture itself: loopback only, answers, resets between tests."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

import pytest

pytestmark = pytest.mark.moto


def test_endpoint_is_loopback(moto_endpoint: str) -> None:
    url = urlparse(moto_endpoint)
    assert url.scheme == "http"
    assert url.hostname == "127.0.0.1"
    assert url.port is not None and url.port > 0


def test_clients_talk_to_the_server(kms_client: Any, s3_client: Any) -> None:
    key = kms_client.create_key()["KeyMetadata"]
    assert key["KeyState"] == "Enabled"
    s3_client.create_bucket(Bucket="bucket-one")
    assert [b["Name"] for b in s3_client.list_buckets()["Buckets"]] == ["bucket-one"]


def test_state_is_reset_between_tests(kms_client: Any, s3_client: Any) -> None:
    # The previous test created a key and a bucket; the reset fixture removed them.
    assert kms_client.list_keys()["Keys"] == []
    assert s3_client.list_buckets()["Buckets"] == []
