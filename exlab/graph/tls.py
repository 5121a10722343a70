"""A private CA and a server certificate for the lab's https faces.

MSAL only talks to an https authority, so the lab needs a certificate its clients can trust:
it makes its own CA and prints the CA file's path; clients point `REQUESTS_CA_BUNDLE` (or
their trust store) at it. Files are kept in a directory so that a restarted lab keeps the CA
its users already trust.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_FILE = "lab-ca.pem"
CA_KEY_FILE = "lab-ca-key.pem"
CERT_FILE = "lab-server.pem"
KEY_FILE = "lab-server-key.pem"
DEFAULT_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class LabTls:
    """Paths of the lab's CA and server certificate (PEM), ready for uvicorn's ssl options."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    def uvicorn_options(self) -> dict[str, str]:
        return {"ssl_certfile": str(self.cert_file), "ssl_keyfile": str(self.key_file)}


def _write_private(path: Path, data: bytes) -> None:
    """Write a key file readable by its owner only, replacing it atomically."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _san(hosts: tuple[str, ...]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def _make_ca(now: dt.datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "medbridge lab"),
            x509.NameAttribute(NameOID.COMMON_NAME, "medbridge lab CA"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _make_server_cert(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    hosts: tuple[str, ...],
    now: dt.datetime,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=825))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_san(hosts), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def _covers(cert_file: Path, hosts: tuple[str, ...], now: dt.datetime) -> bool:
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    if cert.not_valid_after_utc <= now + dt.timedelta(days=1):
        return False
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    present = {str(v) for v in san.get_values_for_type(x509.IPAddress)}
    present |= set(san.get_values_for_type(x509.DNSName))
    wanted = set()
    for host in hosts:
        try:
            wanted.add(str(ipaddress.ip_address(host)))
        except ValueError:
            wanted.add(host)
    return wanted <= present


def ensure_tls(directory: Path, hosts: tuple[str, ...] = DEFAULT_HOSTS) -> LabTls:
    """Load the lab's CA and server certificate from `directory`, creating what is missing.

    The CA is kept once made; the server certificate is remade when it does not name every
    host in `hosts` or is about to expire.
    """
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    paths = LabTls(directory / CA_FILE, directory / CERT_FILE, directory / KEY_FILE)
    ca_key_file = directory / CA_KEY_FILE
    if paths.ca_file.exists() and ca_key_file.exists():
        ca_cert = x509.load_pem_x509_certificate(paths.ca_file.read_bytes())
        loaded = serialization.load_pem_private_key(ca_key_file.read_bytes(), password=None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{ca_key_file} is not the lab's CA key")
        ca_key = loaded
    else:
        ca_key, ca_cert = _make_ca(now)
        _write_private(ca_key_file, _key_pem(ca_key))
        paths.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    if (
        paths.cert_file.exists()
        and paths.key_file.exists()
        and _covers(paths.cert_file, hosts, now)
    ):
        return paths
    key, cert = _make_server_cert(ca_key, ca_cert, hosts, now)
    _write_private(paths.key_file, _key_pem(key))
    paths.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return paths
