"""The lab's CA: made once and kept, a server certificate for the hosts asked, keys private."""

from __future__ import annotations

import ssl
from pathlib import Path

from cryptography import x509

from exlab.graph.tls import ensure_tls


def _names(cert_file: Path) -> set[str]:
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(i) for i in san.get_values_for_type(x509.IPAddress)} | set(
        san.get_values_for_type(x509.DNSName)
    )


def test_ca_is_kept_and_the_server_certificate_follows_the_hosts(tmp_path: Path) -> None:
    first = ensure_tls(tmp_path)
    ca_before = first.ca_file.read_bytes()
    assert {"127.0.0.1", "localhost"} <= _names(first.cert_file)
    again = ensure_tls(tmp_path)
    assert again.cert_file.read_bytes() == first.cert_file.read_bytes()
    wider = ensure_tls(tmp_path, ("lab.musterstadt.example", "127.0.0.1"))
    assert wider.ca_file.read_bytes() == ca_before
    assert "lab.musterstadt.example" in _names(wider.cert_file)


def test_server_certificate_is_issued_by_the_ca_and_matches_its_key(tmp_path: Path) -> None:
    paths = ensure_tls(tmp_path)
    cert = x509.load_pem_x509_certificate(paths.cert_file.read_bytes())
    ca = x509.load_pem_x509_certificate(paths.ca_file.read_bytes())
    cert.verify_directly_issued_by(ca)  # raises when not
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(paths.cert_file, paths.key_file)  # raises on a key mismatch


def test_private_keys_are_owner_only(tmp_path: Path) -> None:
    ensure_tls(tmp_path)
    for key in ("lab-ca-key.pem", "lab-server-key.pem"):
        assert (tmp_path / key).stat().st_mode & 0o077 == 0
