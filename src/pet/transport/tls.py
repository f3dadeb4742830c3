"""Mutual TLS between parties, and throwaway certificates for tests and demos.

Each party holds a certificate and key signed by a certificate authority (CA) that the
other party trusts. Both sides require and verify the peer's certificate (mutual
authentication); TLS 1.2 is the minimum version. Optionally ``peer_name`` pins the name
(a DNS subjectAltName) the peer's certificate must carry, checked on both sides.

:func:`make_test_pki` creates a fresh CA and party certificates with ``cryptography`` --
for tests, demos and first deployments; production deployments bring their own PKI.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from pet.errors import InputError, TLSError

__all__ = ["TLSConfig", "make_test_pki"]


@dataclass(frozen=True)
class TLSConfig:
    """Where this party's TLS material lives.

    Parameters
    ----------
    cert : path to this party's certificate (PEM; may include the chain).
    key : path to this party's private key (PEM, unencrypted).
    ca : path to the CA certificate(s) (PEM) that signed the *peer's* certificate.
    peer_name : if given, the peer's certificate must list this DNS name.
    """

    cert: str | os.PathLike
    key: str | os.PathLike
    ca: str | os.PathLike
    peer_name: str | None = None

    def __post_init__(self):
        for field in ("cert", "key", "ca"):
            path = Path(getattr(self, field))
            if not path.is_file():
                raise InputError(f"TLSConfig.{field}: no such file {str(path)!r}")

    @classmethod
    def from_dir(cls, directory, name: str, *, peer_name: str | None = None) -> "TLSConfig":
        """The files :func:`make_test_pki` writes for ``name``: ``directory/<name>.pem``,
        ``directory/<name>.key`` and ``directory/ca.pem``."""
        d = Path(directory)
        return cls(cert=d / f"{name}.pem", key=d / f"{name}.key", ca=d / "ca.pem", peer_name=peer_name)

    def _context(self, purpose: int) -> ssl.SSLContext:
        ctx = ssl.SSLContext(purpose)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.check_hostname = False  # names are checked by check_peer (both directions)
        ctx.verify_mode = ssl.CERT_REQUIRED
        try:
            ctx.load_cert_chain(str(self.cert), str(self.key))
            ctx.load_verify_locations(cafile=str(self.ca))
        except (ssl.SSLError, OSError) as exc:
            raise InputError(f"TLSConfig: cannot load certificate/key/CA: {exc}") from None
        return ctx

    def server_context(self) -> ssl.SSLContext:
        return self._context(ssl.PROTOCOL_TLS_SERVER)

    def client_context(self) -> ssl.SSLContext:
        return self._context(ssl.PROTOCOL_TLS_CLIENT)

    def check_peer(self, sock: ssl.SSLSocket) -> None:
        """Raise :class:`~pet.errors.TLSError` unless the peer's certificate carries
        ``peer_name`` (when set)."""
        if self.peer_name is None:
            return
        cert = sock.getpeercert() or {}
        names = [value for kind, value in cert.get("subjectAltName", ()) if kind in ("DNS", "IP Address")]
        if self.peer_name not in names:
            raise TLSError(f"peer certificate names {names}, expected {self.peer_name!r}")


def make_test_pki(directory: str | os.PathLike, names=("party0", "party1", "dealer"), *,
                  hosts=("localhost", "127.0.0.1"), days: int = 7) -> dict[str, TLSConfig]:
    """Create a throwaway CA and one certificate per name in ``directory``.

    Files: ``ca.pem``, and ``<name>.pem`` / ``<name>.key`` per name (keys mode 0600).
    Each certificate lists the name itself and ``hosts`` as subjectAltNames. Returns
    ``{name: TLSConfig}`` ready to pass as ``tls=`` to :func:`pet.transport.tcp.listen` /
    :func:`~pet.transport.tcp.connect`.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    not_before, not_after = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=days)

    def write_key(path: Path, key) -> None:
        data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pet throwaway CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path = out / "ca.pem"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))

    configs: dict[str, TLSConfig] = {}
    for name in names:
        key = ec.generate_private_key(ec.SECP256R1())
        alt: list[x509.GeneralName] = [x509.DNSName(name)]
        for host in hosts:
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                alt.append(x509.DNSName(host))
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                  ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        cert_path, key_path = out / f"{name}.pem", out / f"{name}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        write_key(key_path, key)
        configs[name] = TLSConfig(cert=cert_path, key=key_path, ca=ca_path)
    return configs
