"""The client's TLS settings: where its PKI files live and how the server is verified.

Like VDSM, the authority that matters is the CA: the server's certificate chain must verify
against ``cacert.pem`` (and the server verifies ours the same way), but the host name the client
dialled is not compared with the certificate's name, because hosts are often reached by an
address that the certificate issued at enrolment does not list.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from virthost.client import errors
from virthost.common import pki

PKI_DIR_ENV: Final = "VIRTHOST_PKI_DIR"
DEFAULT_PKI_DIR: Final = "/etc/pki/virthost"


@dataclass(frozen=True)
class PkiFiles:
    ca_file: Path
    cert_file: Path
    key_file: Path


def pki_files(pki_dir: str | os.PathLike[str] | None = None) -> PkiFiles:
    """The client's files under ``pki_dir`` (default: $VIRTHOST_PKI_DIR or /etc/pki/virthost)."""
    root = Path(pki_dir if pki_dir is not None else os.environ.get(PKI_DIR_ENV, DEFAULT_PKI_DIR))
    return PkiFiles(
        ca_file=root / "certs" / "cacert.pem",
        cert_file=root / "certs" / "clientcert.pem",
        key_file=root / "keys" / "clientkey.pem",
    )


def client_context(
    cert_file: str | os.PathLike[str],
    key_file: str | os.PathLike[str],
    ca_file: str | os.PathLike[str],
) -> ssl.SSLContext:
    """A TLS client context presenting our certificate and verifying the server's chain."""
    try:
        return pki.client_context(os.fspath(ca_file), os.fspath(cert_file), os.fspath(key_file))
    except (OSError, ssl.SSLError) as exc:
        raise errors.ConnectionError(f"cannot load TLS credentials: {exc}") from exc
