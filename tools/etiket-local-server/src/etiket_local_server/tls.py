"""A self-signed TLS certificate for ``serve --self-signed`` (made with ``cryptography``).

The certificate and its key live in ``<data_dir>/tls/`` (``cert.pem``, ``key.pem``, the key mode
0600) and are reused while they are valid for at least 30 more days and name every wanted host.
The certificate is its own CA (basic constraints ``CA:TRUE``), so a client trusts it by pointing
its CA bundle at ``cert.pem`` (``etiket-sync login --ca-bundle``); its SHA-256 fingerprint lets a
user check it out of band.
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

__all__ = ["SelfSigned", "ensure_self_signed", "fingerprint"]

_VALIDITY = dt.timedelta(days=825)
_RENEW_BEFORE = dt.timedelta(days=30)


@dataclass(frozen=True)
class SelfSigned:
    """Where a self-signed certificate is and what it says."""

    certfile: Path
    keyfile: Path
    fingerprint: str
    """SHA-256 of the DER certificate, as ``AA:BB:...``."""
    hosts: tuple[str, ...]
    created: bool
    """True when this call made the certificate (False: an existing one was reused)."""


def fingerprint(cert: x509.Certificate) -> str:
    """The SHA-256 fingerprint of ``cert`` as colon-separated upper-case hex."""
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def _wanted_hosts(hosts: list[str]) -> tuple[str, ...]:
    names: list[str] = []
    for host in [*hosts, "localhost", "127.0.0.1", "::1"]:
        host = host.strip().strip("[]")
        if host and host not in ("0.0.0.0", "::") and host not in names:
            names.append(host)
    return tuple(names)


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _reusable(certfile: Path, keyfile: Path, hosts: tuple[str, ...]) -> x509.Certificate | None:
    if not (certfile.is_file() and keyfile.is_file()):
        return None
    try:
        cert = x509.load_pem_x509_certificate(certfile.read_bytes())
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return None
    present = {str(value) for value in names.get_values_for_type(x509.DNSName)}
    present |= {str(value) for value in names.get_values_for_type(x509.IPAddress)}
    wanted = {str(_san(host).value) for host in hosts}
    expires = cert.not_valid_after_utc
    if not wanted <= present or expires - dt.datetime.now(dt.timezone.utc) < _RENEW_BEFORE:
        return None
    return cert


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def ensure_self_signed(data_dir: Path, hosts: list[str]) -> SelfSigned:
    """The self-signed certificate of ``data_dir`` for ``hosts`` (plus localhost), made or reused.

    A certificate that lacks one of the hosts or expires within 30 days is replaced.
    """
    folder = Path(data_dir) / "tls"
    folder.mkdir(parents=True, exist_ok=True)
    certfile, keyfile = folder / "cert.pem", folder / "key.pem"
    wanted = _wanted_hosts(hosts)
    cert = _reusable(certfile, keyfile, wanted)
    if cert is not None:
        return SelfSigned(certfile, keyfile, fingerprint(cert), wanted, created=False)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, wanted[0]),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "etiket-local-server"),
        ]
    )
    now = dt.datetime.now(dt.timezone.utc)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.SubjectAlternativeName([_san(h) for h in wanted]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private(
        keyfile,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return SelfSigned(certfile, keyfile, fingerprint(cert), wanted, created=True)
