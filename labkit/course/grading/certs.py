"""Certificates for a grading cluster: ``labkit cluster-certs DIR``.

    labkit cluster-certs certs/     # ca.pem, scheduler.pem/-key.pem, worker.pem/-key.pem, client.pem/-key.pem
    dask scheduler --protocol tls --tls-ca-file certs/ca.pem --tls-cert certs/scheduler.pem --tls-key certs/scheduler-key.pem
    dask worker tls://HOST:8786 --tls-ca-file certs/ca.pem --tls-cert certs/worker.pem --tls-key certs/worker-key.pem
    labkit autograde SUBMISSIONS --scheduler tls://HOST:8786 --tls certs/

Owns: the run's certificate authority and the scheduler's, workers' and client's
certificates signed by it (:func:`write_certs`, with ``cryptography``; EC P-256, valid
for :data:`DAYS` days), and :func:`security`, the Dask
``distributed.security.Security`` of a folder of them (``require_encryption=True``:
every connection is TLS, and each side accepts only a peer whose certificate this CA
signed). The folder is 0700 and every file in it 0600: it is the key to the
cluster, so it is never bound into a kernel's sandbox, and as root the kernels run as
uids that cannot enter it.
"""
from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
from pathlib import Path

from labkit.errors import OptionError

DAYS = 30
ROLES = ("scheduler", "worker", "client")


def _key():
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _cert(subject: str, key, issuer_name, issuer_key, *, ca: bool):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer_name or name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=DAYS))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False),
            critical=True)
    else:  # every member of the cluster is both a TLS server and a client to the others
        builder = builder.add_extension(x509.ExtendedKeyUsage(
            [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)


def write_certs(folder: str | os.PathLike) -> Path:
    """A fresh CA and the scheduler's, workers' and client's certificates and keys in ``folder``
    (created 0700; OptionError when it holds files already: certificates are never overwritten).
    Returns the folder."""
    from cryptography.hazmat.primitives import serialization

    folder = Path(folder).resolve()
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise OptionError(f"cluster-certs {folder}: the folder exists and is not empty (give a new folder)")
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    pem = serialization.Encoding.PEM
    ca_key = _key()
    ca = _cert("labkit grading CA", ca_key, None, ca_key, ca=True)
    _write(folder / "ca.pem", ca.public_bytes(pem))
    for role in ROLES:
        key = _key()
        _write(folder / f"{role}.pem", _cert(f"labkit {role}", key, ca.subject, ca_key, ca=False).public_bytes(pem))
        _write(folder / f"{role}-key.pem", key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                             serialization.NoEncryption()))
    return folder


def paths(folder: str | os.PathLike, role: str) -> tuple[Path, Path, Path]:
    """(CA, certificate, key) of ``role`` in ``folder``; OptionError naming ``--tls`` when one is missing."""
    folder = Path(folder)
    files = (folder / "ca.pem", folder / f"{role}.pem", folder / f"{role}-key.pem")
    missing = [p.name for p in files if not p.is_file()]
    if missing:
        raise OptionError(f"--tls {folder}: no {', '.join(missing)} there (write the certificates with "
                          f"`labkit cluster-certs {folder}`)")
    return files


def security(folder: str | os.PathLike, role: str = "client"):
    """Dask's ``Security`` for ``role`` (scheduler, worker, client) with the certificates in ``folder``:
    TLS required, peers checked against the folder's CA."""
    from distributed.security import Security

    if role not in ROLES:
        raise OptionError(f"unknown cluster role {role!r}: one of {', '.join(ROLES)}")
    ca, cert, key = paths(folder, role)
    return Security(require_encryption=True, tls_ca_file=str(ca), **{f"tls_{role}_cert": str(cert),
                                                                     f"tls_{role}_key": str(key)})


def _cmd_certs(args) -> int:
    folder = write_certs(args.dir)
    print(f"wrote a CA and the scheduler's, workers' and client's certificates in {folder} (0700, files 0600; "
          f"valid {DAYS} days): give each machine its own pair and ca.pem, never the kernels")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("cluster-certs", help="certificates for a TLS grading cluster (labkit autograde --tls)",
                              description=__doc__.split("\n\n")[0] + "\n\n" + __doc__.split("\n\n")[1],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dir", type=Path, metavar="DIR", help="a new folder for the certificates")
    p.set_defaults(func=_cmd_certs)
