"""HTTPS for `rayweave serve`: the API on Ray Serve with a certificate from a test CA, and the clients that trust it."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from cluster.ray_runtime import RayConnection
from cluster.settings import Settings
from engine.store import open_store
from serve.bootstrap import ensure_admin_key
from serve.cli import build_app
from serve.client import Client
from serve.client_settings import ClientSettings
from serve.config import ServeOptions
from serve.deployment import TlsConfigError, deploy, tls_options, undeploy
from tests.serve.api.conftest import add_doc
from tests.serve.api.server import free_port


def _write_pem(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    path.chmod(0o600)
    return path


def make_test_ca(directory: Path) -> tuple[Path, Path, Path]:
    """A throw-away CA and a server certificate it signed for 127.0.0.1 and localhost: (ca, cert, key) PEMs."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rayweave test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return (
        _write_pem(directory / "ca.pem", ca_cert.public_bytes(pem)),
        _write_pem(directory / "server.pem", cert.public_bytes(pem)),
        _write_pem(directory / "server-key.pem", key_pem),
    )


@pytest.fixture(scope="module")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    return make_test_ca(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def served_tls(
    ray_session: RayConnection, tmp_path_factory: pytest.TempPathFactory, test_ca: tuple[Path, Path, Path]
) -> Iterator[tuple[str, str, Path]]:
    ca, cert, key_file = test_ca
    home = tmp_path_factory.mktemp("tls-home")
    settings = Settings(home=home, tls_certfile=cert, tls_keyfile=key_file)
    with open_store(settings.resolved_database_url) as store:
        key = ensure_admin_key(store, home)
    assert key is not None
    port = free_port()
    url = deploy(settings, ServeOptions(executor="local"), host="127.0.0.1", port=port)
    try:
        yield url, key, ca
    finally:
        undeploy()


@pytest.mark.ray
@pytest.mark.slow
def test_the_api_speaks_https_with_the_configured_certificate(served_tls: tuple[str, str, Path]) -> None:
    url, key, ca = served_tls
    assert url.startswith("https://127.0.0.1:")
    trusted = ssl.create_default_context(cafile=str(ca))
    with httpx.Client(base_url=url, verify=trusted, timeout=30) as c:
        answer = c.get("/v1/ready", headers={"Authorization": f"Bearer {key}"})
        assert answer.status_code == 200 and answer.json()["status"] == "ready"
        assert answer.extensions["http_version"] in (b"HTTP/1.1", b"HTTP/2")
    # A client that does not trust the test CA refuses the server...
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{url}/v1/health", timeout=10)
    # ...and plain HTTP on the same port gets no API answer.
    with pytest.raises(httpx.HTTPError):
        httpx.get(url.replace("https://", "http://") + "/v1/health", timeout=10)


@pytest.mark.ray
@pytest.mark.slow
def test_sdk_client_runs_and_streams_events_over_https_and_wss(served_tls: tuple[str, str, Path]) -> None:
    url, key, ca = served_tls
    with Client(url, key, settings=ClientSettings(ca_bundle=ca)) as client:
        handle = client.submit(add_doc(), {"a": 2, "b": 40})
        kinds = [event.type for event in handle.events()]
        assert kinds[-1] == "run.succeeded"
        assert handle.outputs() == {"total": 42}
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"), Client(url, key) as untrusting:
        untrusting.get("/v1/ready")


def test_certificate_and_key_go_together(tmp_path: Path, test_ca: tuple[Path, Path, Path]) -> None:
    _, cert, _ = test_ca
    with pytest.raises(ValidationError, match="RAYWEAVE_TLS_CERTFILE and RAYWEAVE_TLS_KEYFILE go together"):
        Settings(home=tmp_path, tls_certfile=cert)


def test_a_key_that_does_not_match_the_certificate_names_the_settings(
    tmp_path: Path, test_ca: tuple[Path, Path, Path]
) -> None:
    _, cert, _ = test_ca
    _, _, other_key = make_test_ca(tmp_path)
    with pytest.raises(TlsConfigError, match="RAYWEAVE_TLS_CERTFILE / RAYWEAVE_TLS_KEYFILE: cannot load"):
        tls_options(Settings(home=tmp_path, tls_certfile=cert, tls_keyfile=other_key))
    with pytest.raises(TlsConfigError, match=r"RAYWEAVE_TLS_KEYFILE: .* is not a file"):
        tls_options(Settings(home=tmp_path, tls_certfile=cert, tls_keyfile=tmp_path / "missing.pem"))


def test_serve_refuses_a_bad_tls_configuration_before_starting_ray(
    tmp_path: Path, test_ca: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, cert, _ = test_ca
    monkeypatch.setenv("RAYWEAVE_HOME", str(tmp_path / "home"))
    result = CliRunner().invoke(build_app(), ["serve", "--tls-cert", str(cert)])
    assert result.exit_code == 2
    assert "RAYWEAVE_TLS_CERTFILE and RAYWEAVE_TLS_KEYFILE go together" in result.output
    result = CliRunner().invoke(
        build_app(), ["serve", "--tls-cert", str(cert), "--tls-key", str(tmp_path / "nope.pem")]
    )
    assert result.exit_code == 2
    assert "RAYWEAVE_TLS_KEYFILE:" in result.output and "is not a file" in result.output
