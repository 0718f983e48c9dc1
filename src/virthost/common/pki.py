"""Certificates for mutual TLS: a development CA, host and client certificates, SSL contexts.

On a managed host the engine's CA signs the host certificate (VDSM's enrolment); for
development and tests ``virthost-pki init DIR`` creates a self-contained CA with a host and
a client certificate, idempotently (existing files are kept). The layout mirrors VDSM's::

    DIR/certs/cacert.pem   DIR/keys/cakey.pem
    DIR/certs/hostcert.pem DIR/keys/hostkey.pem       (server; SAN: hostname, localhost, loopback)
    DIR/certs/clientcert.pem DIR/keys/clientkey.pem   (client authentication)
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_DAYS = 3650


@dataclass(frozen=True)
class PkiPaths:
    root: Path

    @property
    def ca_cert(self) -> Path:
        return self.root / "certs" / "cacert.pem"

    @property
    def ca_key(self) -> Path:
        return self.root / "keys" / "cakey.pem"

    def cert(self, name: str) -> Path:
        return self.root / "certs" / f"{name}cert.pem"

    def key(self, name: str) -> Path:
        return self.root / "keys" / f"{name}key.pem"


def _write(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "virthost"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def create_ca(paths: PkiPaths, common_name: str = "virthost development CA") -> None:
    key = _new_key()
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
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
    _write(paths.ca_key, _key_pem(key), 0o600)
    _write(paths.ca_cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def issue(
    paths: PkiPaths,
    name: str,
    common_name: str,
    *,
    server: bool,
    dns_names: tuple[str, ...] = (),
    ip_addresses: tuple[str, ...] = (),
) -> None:
    """Issue ``certs/<name>cert.pem`` signed by the CA in ``paths``."""
    ca_key = serialization.load_pem_private_key(paths.ca_key.read_bytes(), password=None)
    ca_cert = x509.load_pem_x509_certificate(paths.ca_cert.read_bytes())
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = _new_key()
    now = datetime.datetime.now(datetime.UTC)
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
    if server:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    alt_names += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    _write(paths.key(name), _key_pem(key), 0o600)
    _write(paths.cert(name), cert.public_bytes(serialization.Encoding.PEM), 0o644)


def init_dev_pki(root: Path, hostname: str | None = None) -> PkiPaths:
    """Create what is missing of the development CA, host and client certificates."""
    paths = PkiPaths(root)
    host = hostname or socket.gethostname()
    if not (paths.ca_cert.exists() and paths.ca_key.exists()):
        create_ca(paths)
    if not (paths.cert("host").exists() and paths.key("host").exists()):
        issue(
            paths,
            "host",
            host,
            server=True,
            dns_names=tuple(dict.fromkeys((host, "localhost"))),
            ip_addresses=("127.0.0.1", "::1"),
        )
    if not (paths.cert("client").exists() and paths.key("client").exists()):
        issue(paths, "client", "virthost-client", server=False)
    return paths


def server_context(ca_file: str, cert_file: str, key_file: str) -> ssl.SSLContext:
    """TLS for the API: clients must present a certificate signed by ``ca_file``."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_file, key_file)
    ctx.load_verify_locations(ca_file)
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def client_context(ca_file: str, cert_file: str, key_file: str) -> ssl.SSLContext:
    """TLS for clients: the server's chain is verified; its name is not (VDSM does the same)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_verify_locations(ca_file)
    ctx.load_cert_chain(cert_file, key_file)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def _chown_tree(root: Path, user: str) -> None:
    import pwd

    entry = pwd.getpwnam(user)
    for dirpath, _dirs, files in os.walk(root):
        os.chown(dirpath, entry.pw_uid, entry.pw_gid)
        for f in files:
            os.chown(os.path.join(dirpath, f), entry.pw_uid, entry.pw_gid)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="virthost-pki", description="Development certificates for virthost's mutual TLS."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    init = sub.add_parser("init", help="create what is missing of the CA, host and client certs")
    init.add_argument("directory", type=Path)
    init.add_argument("--hostname", help="name for the host certificate (default: this host)")
    init.add_argument("--owner", help="make the files owned by this user")
    args = parser.parse_args(argv)
    paths = init_dev_pki(args.directory, args.hostname)
    if args.owner:
        _chown_tree(args.directory, args.owner)
    print(paths.root)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
