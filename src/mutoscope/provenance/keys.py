"""The operator's signing identity: a local CA and a signing certificate, made on first use.

Layout under `<data_dir>/provenance/`: `ca.pem` (trust anchor), `ca.key`,
`signer.pem` (signer then CA: the chain C2PA embeds), `signer.key`; keys are
mode 0600. An operator with a real certificate replaces signer.pem/signer.key
(and puts its root in ca.pem, or extra roots in `trust-anchors.pem`).
"""

from __future__ import annotations

import datetime
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mutoscope.storage.private import private_dir

ALG = "es256"  # ECDSA P-256: what C2PA tools verify everywhere


@dataclass(frozen=True)
class SigningIdentity:
    chain_pem: bytes  # signer certificate, then the CA
    key_pem: bytes
    trust_pem: bytes  # anchors that make our own files "trusted"


def key_dir(data_dir: Path) -> Path:
    return data_dir / "provenance"


def load_or_create(data_dir: Path, organization: str = "Mutoscope") -> SigningIdentity:
    """Read the identity, creating the CA and signer the first time (safe if processes race)."""
    folder = key_dir(data_dir)
    if not (folder / "signer.key").exists():
        private_dir(data_dir)
        tmp = Path(tempfile.mkdtemp(prefix=".provenance-", dir=data_dir))
        try:
            _write_new(tmp, organization)
            os.rename(tmp, folder)  # atomic; fails if another process won the race
        except OSError:
            if not (folder / "signer.key").exists():
                raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return read(data_dir)


def read(data_dir: Path) -> SigningIdentity:
    folder = key_dir(data_dir)
    trust = (folder / "ca.pem").read_bytes()
    extra = folder / "trust-anchors.pem"
    if extra.exists():
        trust += b"\n" + extra.read_bytes()
    return SigningIdentity((folder / "signer.pem").read_bytes(), (folder / "signer.key").read_bytes(), trust)


def trust_anchors(data_dir: Path) -> bytes | None:
    """The anchors for reading, or None before this server ever signed anything."""
    return read(data_dir).trust_pem if (key_dir(data_dir) / "ca.pem").exists() else None


def _name(org: str, cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, org), x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _key_usage(**on: bool) -> x509.KeyUsage:
    names = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement",
             "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")
    return x509.KeyUsage(**{n: on.get(n, False) for n in names})


def _write_secret(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _write_new(folder: Path, org: str) -> None:
    now = datetime.datetime.now(datetime.timezone.utc)
    start, ca_end, end = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=3650), \
        now + datetime.timedelta(days=825)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(org, f"{org} local provenance CA")
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(ca_end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    # C2PA refuses self-signed or CA certificates as signers and wants a signing EKU
    # (emailProtection is one it accepts); hence the two-level chain.
    cert = (x509.CertificateBuilder().subject_name(_name(org, f"{org} content signer")).issuer_name(ca_name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(digital_signature=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    pkcs8 = dict(encoding=pem, format=serialization.PrivateFormat.PKCS8,
                 encryption_algorithm=serialization.NoEncryption())
    (folder / "ca.pem").write_bytes(ca.public_bytes(pem))
    (folder / "signer.pem").write_bytes(cert.public_bytes(pem) + ca.public_bytes(pem))
    _write_secret(folder / "ca.key", ca_key.private_bytes(**pkcs8))
    _write_secret(folder / "signer.key", key.private_bytes(**pkcs8))
    os.chmod(folder, 0o700)
