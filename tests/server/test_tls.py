"""`ecrcrypt serve --certfile --keyfile` serves HTTPS (a self-signed certificate made here)."""

from __future__ import annotations

import datetime
import http.client
import ssl
import subprocess
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.server.support import cli, ecrcrypt_command, free_port


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def _get(port: int, context: ssl.SSLContext) -> int:
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=context)
    try:
        conn.request("GET", "/v2/")
        return conn.getresponse().status
    finally:
        conn.close()


def test_serve_with_a_certificate_speaks_tls(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    cli(tmp_path / "registry", "init")
    port = free_port()
    args = ["--dir", str(tmp_path / "registry"), "serve", "--port", str(port), "--certfile", str(cert),
            "--keyfile", str(key)]  # fmt: skip
    process = subprocess.Popen([*ecrcrypt_command(), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False
    try:
        for _ in range(200):
            try:
                status = _get(port, context)
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("the TLS server did not answer")
        assert status == 401  # the certificate verified; anonymous refused
        with pytest.raises(ssl.SSLError):
            _get(port, ssl.create_default_context())  # not a trusted certificate
    finally:
        process.terminate()
        process.wait(timeout=15)
