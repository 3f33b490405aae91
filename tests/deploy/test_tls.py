"""rediss:// against a real TLS server with a CA and certificate made in the test."""

from __future__ import annotations

import datetime
import ipaddress
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import blackboard
from blackboard.store.server import RedisServer, free_port

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="needs Debian's redis-server (built with TLS)"
)


def _write_pki(directory: Path) -> tuple[Path, Path, Path]:
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "blackboard test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = (
        directory / "ca.pem",
        directory / "server.pem",
        directory / "server.key",
    )
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_path, cert_path, key_path


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RedisServer, int, Path]]:
    pki = tmp_path_factory.mktemp("pki")
    ca, cert, key = _write_pki(pki)
    port = free_port()
    server = RedisServer(
        binary=shutil.which("redis-server"),
        extra_args=[
            "--tls-port",
            str(port),
            "--tls-cert-file",
            str(cert),
            "--tls-key-file",
            str(key),
            "--tls-ca-cert-file",
            str(ca),
            "--tls-auth-clients",
            "no",
        ],
    ).start()
    yield server, port, ca
    server.close()


async def test_rediss_with_ca_file(tls_server: tuple[RedisServer, int, Path]) -> None:
    server, port, ca = tls_server
    settings = blackboard.Settings(tls_ca_file=str(ca))
    async with blackboard.connect(
        f"rediss://:{server.password}@127.0.0.1:{port}/0", board="tls", settings=settings
    ) as b:
        e = await b.put("secret/1", {"ok": True}, expect=blackboard.ABSENT)
        assert (await b.get("secret/1")).value == {"ok": True}  # type: ignore[union-attr]
        assert e.version == 1


async def test_rediss_ca_in_url(tls_server: tuple[RedisServer, int, Path]) -> None:
    server, port, ca = tls_server
    url = f"rediss://:{server.password}@127.0.0.1:{port}/0?ssl_ca_certs={ca}"
    async with blackboard.connect(url, board="tls2") as b:
        assert (await b.apply("n", "add", 2)).value == 2


async def test_untrusted_certificate_is_refused(tls_server: tuple[RedisServer, int, Path]) -> None:
    _server, port, _ca = tls_server
    with pytest.raises(blackboard.BoardUnavailableError):
        async with blackboard.connect(f"rediss://127.0.0.1:{port}/0", board="tls3"):
            pass
