"""Keys and certificates for the signing tests, made with ``cryptography`` (the signing extra's
dependency): an ECDSA P-256 key pair, and a CA with a leaf certificate for code signing."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class KeyPair:
    private: Path
    public: Path


@dataclass(frozen=True)
class CertChain:
    key: Path  # the leaf's private key
    cert: Path  # the leaf certificate
    ca: Path  # the CA certificate (the trust root)


def _write_key(key: ec.EllipticCurvePrivateKey, directory: Path, name: str) -> KeyPair:
    private = directory / f"{name}.pem"
    public = directory / f"{name}.pub.pem"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return KeyPair(private, public)


def make_key_pair(directory: Path, name: str = "key", curve: ec.EllipticCurve | None = None) -> KeyPair:
    directory.mkdir(parents=True, exist_ok=True)
    return _write_key(ec.generate_private_key(curve or ec.SECP256R1()), directory, name)


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def make_cert_chain(directory: Path, name: str = "signer") -> CertChain:
    """A self-signed CA and a leaf it issued (digital signature, code signing)."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder().subject_name(_name(f"{name} test CA")).issuer_name(_name(f"{name} test CA"))
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False),
                       critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder().subject_name(_name(f"{name}@example.com")).issuer_name(ca.subject)
        .public_key(leaf_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False),
                       critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pair = _write_key(leaf_key, directory, name)
    cert = directory / f"{name}.crt.pem"
    cert.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    ca_path = directory / f"{name}.ca.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return CertChain(pair.private, cert, ca_path)


__all__ = ["CertChain", "KeyPair", "make_cert_chain", "make_key_pair"]
