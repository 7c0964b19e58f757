"""The server on PostgreSQL metadata (issue 14): ``ecrcrypt serve --metadata-url`` with two worker
processes, so a chunked push's requests land on either one and only the shared metadata joins them."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecrcrypt.ecr.authorization import get_authorization_token
from ecrcrypt.ecr.registry import Registry
from ecrcrypt.server.options import ServerOptions
from tests.server.support import build_oci_layout, layer_tar_gz, running_server, skopeo, skopeo_round_trip

SECRET = "pw-never-shown"


def test_server_options_never_show_the_metadata_password() -> None:
    options = ServerOptions(directory="/r", metadata_url=f"postgresql://u:{SECRET}@db.internal/ecr")
    assert SECRET not in repr(options) and ServerOptions.from_json(options.to_json()) == options


@pytest.mark.slow
@pytest.mark.skipif(skopeo() is None, reason="skopeo is not installed (make deps installs it from Debian)")
def test_skopeo_round_trip_through_two_workers_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    url, directory = postgres_url.replace("ecrcrypt@", f"ecrcrypt:{SECRET}@"), tmp_path / "registry"
    with Registry.create(directory, metadata=url) as reg:
        reg.create_repository("team/app")
        password = get_authorization_token(reg).password  # the token is in PostgreSQL: both workers know it
    layers = [layer_tar_gz(3000, "small"), layer_tar_gz(6 * 1024 * 1024, "chunked")]
    build_oci_layout(tmp_path / "layout", layers)
    with running_server(directory, "--metadata-url", url, "--workers", "2") as server:
        skopeo_round_trip(tmp_path / "layout", server.address, password, tmp_path / "back")
    for blob in (tmp_path / "layout" / "blobs" / "sha256").iterdir():
        assert (tmp_path / "back" / "blobs" / "sha256" / blob.name).read_bytes() == blob.read_bytes()
    with Registry.open(directory, metadata=url) as reg:  # and a third process reads it all back from the metadata
        assert reg.repository("team/app").get_image(tag="v1") is not None
        assert SECRET not in reg.metadata_location
