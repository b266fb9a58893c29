"""TLS policy for every listener, and the self-signed certificate of ``--dev``.

Policy (one place, so STARTTLS and implicit TLS cannot drift apart):

* TLS 1.2 or newer (1.3 only if configured so); SSLv3, TLS 1.0 and 1.1 never.
* For TLS 1.2, forward-secret AEAD suites only: ECDHE with AES-GCM or ChaCha20-Poly1305.
  TLS 1.3 suites are all AEAD and forward secret, so OpenSSL's defaults stand.
* No compression (CRIME), no renegotiation, the server's cipher order.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"

MIN_VERSIONS: dict[str, ssl.TLSVersion] = {
    "1.2": ssl.TLSVersion.TLSv1_2,
    "1.3": ssl.TLSVersion.TLSv1_3,
}

CERT_FILE = "cert.pem"
KEY_FILE = "key.pem"
SELF_SIGNED_DAYS = 3650


class TlsError(Exception):
    """The certificate or key cannot be used; the message names the file."""


def server_context(cert: Path, key: Path, min_version: str = "1.2") -> ssl.SSLContext:
    """The server-side SSLContext for both STARTTLS and implicit TLS listeners."""
    if min_version not in MIN_VERSIONS:
        raise TlsError(f"unsupported minimum TLS version {min_version!r} (use 1.2 or 1.3)")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = MIN_VERSIONS[min_version]
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= (
        ssl.OP_NO_COMPRESSION
        | ssl.OP_CIPHER_SERVER_PREFERENCE
        | ssl.OP_NO_RENEGOTIATION
        | ssl.OP_SINGLE_ECDH_USE
    )
    _load(context, cert, key)
    return context


def reload_certificate(context: ssl.SSLContext, cert: Path, key: Path) -> None:
    """Put a renewed certificate into a live context (on SIGHUP): handshakes from now
    on use it, connections already up keep theirs. The pair is tried on a scratch
    context first, so a broken file leaves the old certificate serving (TlsError)."""
    _load(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), cert, key)
    _load(context, cert, key)


def _load(context: ssl.SSLContext, cert: Path, key: Path) -> None:
    for path, what in ((cert, "certificate"), (key, "key")):
        if not path.is_file():
            raise TlsError(f"TLS {what} file {path} does not exist")
    try:
        context.load_cert_chain(certfile=str(cert), keyfile=str(key))
    except PermissionError as error:
        raise TlsError(f"cannot read TLS {_which(error, cert, key)}: permission denied") from None
    except ssl.SSLError as error:
        raise TlsError(
            f"cannot use TLS certificate {cert} with key {key}: {error.reason or error}"
        ) from None
    except OSError as error:
        raise TlsError(f"cannot read TLS {_which(error, cert, key)}: {error.strerror}") from None


def ensure_self_signed(directory: Path, hostname: str = "localhost") -> tuple[Path, Path]:
    """Return (cert, key) paths in ``directory``, creating a self-signed pair if either
    is missing: EC P-256, SAN localhost, 127.0.0.1, ::1 (and ``hostname``), valid for
    ten years, the key readable by its owner only."""
    cert_path, key_path = directory / CERT_FILE, directory / KEY_FILE
    if cert_path.is_file() and key_path.is_file():
        return cert_path, key_path
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)

    private_key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    if hostname and hostname != "localhost" and _is_dns_name(hostname):
        names.append(x509.DNSName(hostname))
    names += [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "localhost"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Roost development certificate"),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=SELF_SIGNED_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(private_key, hashes.SHA256())
    )
    key_pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # The key first: a certificate without its key must never be left behind. Both are
    # private, like everything in the data directory (data_dir.py checks that at start);
    # clients are given the certificate by whoever runs the server.
    _write_atomically(key_path, key_pem, mode=0o600)
    _write_atomically(cert_path, certificate.public_bytes(serialization.Encoding.PEM), mode=0o600)
    return cert_path, key_path


def _write_atomically(path: Path, data: bytes, *, mode: int) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)  # O_CREAT's mode is filtered by the umask
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)


def _is_dns_name(name: str) -> bool:
    labels = name.rstrip(".").split(".")
    return all(
        0 < len(label) <= 63 and label.replace("-", "").isalnum() and label.isascii()
        for label in labels
    )


def _which(error: OSError, cert: Path, key: Path) -> str:
    filename = getattr(error, "filename", None)
    if filename is not None and Path(filename) == key:
        return f"key file {key}"
    if filename is not None and Path(filename) == cert:
        return f"certificate file {cert}"
    return f"certificate {cert} or key {key}"
