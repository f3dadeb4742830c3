"""Mutual TLS between parties, with pinned roles, and throwaway certificates for tests.

Each participant (party 0, party 1, the dealer) holds a certificate and key signed by a
certificate authority (CA) that the others trust. Both sides require and verify the peer's
certificate (mutual authentication); TLS 1.2 is the minimum version.

**Roles are pinned.** A certificate from the right CA is not enough: the peer's certificate
must also carry (as a DNS subjectAltName) one of the names this side expects for that link,
because every participant's certificate comes from the same CA. Without the pin, party 1's
certificate would be accepted as party 0's *dealer* (which then sees all of party 0's inputs
through the Beaver openings), and the dealer's as party 1. The expected names are:

==========  ==========================  ===============================================
this side   link                        the peer's certificate must name
==========  ==========================  ===============================================
party p     the other party             ``party{1-p}``
party p     the dealer                  ``dealer`` (:meth:`TLSConfig.for_dealer`)
dealer      each of the two parties     ``party0`` or ``party1`` (and exactly one)
==========  ==========================  ===============================================

:class:`TLSConfig` pins by default: with no ``peer_name``, the name is derived from this
side's own role -- the ``name`` given to :meth:`TLSConfig.from_dir`, or the single role name
(``party0``, ``party1``, ``dealer``) in this side's own certificate -- following the table
(the peer link for a party). A certificate with no role name needs an explicit
``peer_name``. Channels opened with TLS carry the verified name as ``channel.peer_name``.

:func:`make_test_pki` creates a fresh CA and role certificates with ``cryptography`` -- for
tests and demos; a deployment has each participant generate its own key and send a
certificate signing request to whoever runs the CA (``docs/deployment.md``).
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import os
import secrets
import ssl
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path

from pet.errors import InputError, TLSError

__all__ = ["TLSConfig", "make_test_pki", "ROLE_PEERS", "write_key_file", "check_key_file_mode"]

#: The names each role accepts on its default link (a party: the other party; the dealer:
#: both parties). A party's dealer link expects ``"dealer"`` (:meth:`TLSConfig.for_dealer`).
ROLE_PEERS: dict[str, tuple[str, ...]] = {
    "party0": ("party1",),
    "party1": ("party0",),
    "dealer": ("party0", "party1"),
}


def _normalise_names(value, what: str) -> tuple[str, ...]:
    names = (value,) if isinstance(value, str) else tuple(value)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise InputError(f"{what}: expected a name or a non-empty collection of names, got {value!r}")
    return tuple(sorted(set(names)))


def _own_role(cert_path: Path) -> str | None:
    """The single role name (party0/party1/dealer) among the DNS names of the (first)
    certificate in ``cert_path``, or None."""
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (ValueError, OSError) as exc:
        raise InputError(f"TLSConfig.cert: cannot read certificate {str(cert_path)!r}: {exc}") from None
    try:
        alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = set(alt.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        names = set()
    roles = names & set(ROLE_PEERS)
    return roles.pop() if len(roles) == 1 else None


def check_key_file_mode(path, what: str = "key file") -> None:
    """Warn (``UserWarning``) when the private key file ``path`` is readable or writable by
    group or others: anyone who can read it can impersonate its owner."""
    if os.name != "posix":  # pragma: no cover - POSIX permissions only
        return
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    if mode & 0o077:
        warnings.warn(f"{what} {str(path)!r} is accessible by group/others (mode {stat.S_IMODE(mode):04o}); "
                      f"restrict it with: chmod 600 {path}", UserWarning, stacklevel=3)


def write_key_file(path, data: bytes) -> None:
    """Write secret ``data`` to ``path`` with mode 0600, atomically.

    A fresh file is created next to ``path`` with ``O_CREAT | O_EXCL | O_NOFOLLOW`` and mode
    0600 (``fchmod`` too, whatever the umask), synced, then renamed over ``path``: a
    pre-existing file (say mode 0644) is replaced, not rewritten in place, and a symlink at
    ``path`` is replaced rather than followed.
    """
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(8)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(tmp, flags, 0o600)
    try:
        try:
            if hasattr(os, "fchmod"):
                os.fchmod(fd, 0o600)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


@dataclass(frozen=True)
class TLSConfig:
    """Where this side's TLS material lives, and which peer names it accepts.

    Parameters
    ----------
    cert : path to this side's certificate (PEM; may include the chain).
    key : path to this side's private key (PEM, unencrypted; a warning is issued when the
        file is readable by group or others).
    ca : path to the CA certificate(s) (PEM) that signed the *peer's* certificate.
    peer_name : the name the peer's certificate must carry, or a collection of acceptable
        names (the dealer accepts ``("party0", "party1")``). Default: derived from this
        side's role (module docstring); :class:`~pet.errors.InputError` if it cannot be.
        Use :meth:`for_dealer` for a party's link to the dealer.

    ``peer_names`` holds the accepted names as a tuple.
    """

    cert: str | os.PathLike
    key: str | os.PathLike
    ca: str | os.PathLike
    peer_name: object = None
    peer_names: tuple[str, ...] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self):
        for field in ("cert", "key", "ca"):
            path = Path(getattr(self, field))
            if not path.is_file():
                raise InputError(f"TLSConfig.{field}: no such file {str(path)!r}")
        check_key_file_mode(self.key, "TLS key file")
        if self.peer_name is None:
            role = _own_role(Path(self.cert))
            if role is None:
                raise InputError(
                    "TLSConfig: pass peer_name= (the name the peer's certificate must carry): "
                    f"this side's certificate {str(self.cert)!r} names none of "
                    f"{', '.join(ROLE_PEERS)}, so the peer's role cannot be pinned by default")
            names = ROLE_PEERS[role]
        else:
            names = _normalise_names(self.peer_name, "TLSConfig.peer_name")
        object.__setattr__(self, "peer_names", names)
        object.__setattr__(self, "peer_name", names[0] if len(names) == 1 else names)

    @classmethod
    def from_dir(cls, directory, name: str, *, peer_name=None) -> TLSConfig:
        """The files :func:`make_test_pki` writes for ``name``: ``directory/<name>.pem``,
        ``directory/<name>.key`` and ``directory/ca.pem``. The peer is pinned to
        ``peer_name``, by default to what the role ``name`` expects: ``party0`` -> ``party1``,
        ``party1`` -> ``party0``, ``dealer`` -> ``party0`` or ``party1``."""
        d = Path(directory)
        if peer_name is None and name in ROLE_PEERS:
            peer_name = ROLE_PEERS[name]
        return cls(cert=d / f"{name}.pem", key=d / f"{name}.key", ca=d / "ca.pem", peer_name=peer_name)

    def for_peer(self, peer_name) -> TLSConfig:
        """The same material, accepting only ``peer_name`` (a name or a collection)."""
        return dataclasses.replace(self, peer_name=peer_name)

    def for_dealer(self, name: str = "dealer") -> TLSConfig:
        """The same material for a party's link to the dealer: the peer must be ``name``."""
        return self.for_peer(name)

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

    def check_peer(self, sock: ssl.SSLSocket) -> str:
        """Return the pinned name the peer's (already verified) certificate carries; raise
        :class:`~pet.errors.TLSError` unless it carries exactly one of :attr:`peer_names`."""
        cert = sock.getpeercert() or {}
        names = [value for kind, value in cert.get("subjectAltName", ()) if kind in ("DNS", "IP Address")]
        matched = sorted(set(names) & set(self.peer_names))
        if not matched:
            expected = " or ".join(repr(n) for n in self.peer_names)
            raise TLSError(f"peer certificate names {names}, expected {expected} "
                           "(a certificate from the right CA, but for another role)")
        if len(matched) > 1:
            raise TLSError(f"peer certificate names several of the accepted roles {matched}; "
                           "each participant needs a certificate for its own role only")
        return matched[0]


def make_test_pki(directory: str | os.PathLike, names=("party0", "party1", "dealer"), *,
                  hosts=("localhost", "127.0.0.1"), days: int = 7) -> dict[str, TLSConfig]:
    """Create a throwaway CA and one certificate per name in ``directory``.

    Files: ``ca.pem``, and ``<name>.pem`` / ``<name>.key`` per name (keys written with
    :func:`write_key_file`: mode 0600, replacing any existing file). Each certificate lists
    the name itself and ``hosts`` as subjectAltNames. Returns ``{name: TLSConfig}`` ready to
    pass as ``tls=`` to :func:`pet.transport.tcp.listen` / :func:`~pet.transport.tcp.connect`,
    pinned as :meth:`TLSConfig.from_dir` pins (a party's config expects the other party; use
    ``.for_dealer()`` for its dealer link); a name outside party0/party1/dealer accepts the
    other names of this call.
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
        write_key_file(path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))

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
        others = tuple(n for n in names if n != name) or (name,)
        configs[name] = TLSConfig(cert=cert_path, key=key_path, ca=ca_path,
                                  peer_name=ROLE_PEERS.get(name, others))
    return configs
