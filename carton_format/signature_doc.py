"""The signature document (the SIGNATURE member, or a detached ``FILE.sig``) and what it signs.

Pure structure, no cryptography: this module parses and checks the document, the Sigstore bundle
inside it and the in-toto statement the bundle carries, so ``validate()`` checks a signature's
form without the ``signing`` extra; :mod:`carton_format.signing` checks the signature itself.

What is signed is an in-toto statement whose one subject is MANIFEST with the model id (the sha256
of the exact MANIFEST bytes) as its digest, and whose predicate names the format version: the
signature covers every byte of the model through MANIFEST (deep validation checks every member
against it), and stays valid across ``shrink`` and recompression, which keep MANIFEST.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from .errors import CartonFormatError
from .manifest import MANIFEST_PATH, SIGNATURE_PATH, is_sha256_hex
from .metadata import SPEC_VERSION
from .sources import ArchiveSource, read_member

#: The signature document's own version; other versions are refused (E-SIGNATURE-VERSION).
SIGNATURE_VERSION = 1
#: A signature document is a few KiB (1.3 KB with a key, 2.5 KB with a chain): refused above this.
MAX_SIGNATURE_BYTES = 1 << 20
BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://carton.run/signature/v1"
DETACHED_SUFFIX = ".sig"


@dataclass(frozen=True)
class SignedStatement:
    """What a statement claims (not yet verified): the model id and the format version."""

    model_id: str
    spec_version: int


@dataclass(frozen=True)
class SignatureDocument:
    """A parsed signature document; ``bundle`` is the Sigstore bundle as plain JSON values."""

    version: int
    bundle: dict[str, Any]
    statement: SignedStatement
    signer: dict[str, Any] = field(default_factory=dict)  # what the bundle says about its signer (unverified)


def _invalid(message: str, where: str) -> CartonFormatError:
    return CartonFormatError("E-SIGNATURE-INVALID", message, member=where)


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key[:80]!r}")
        out[key] = value
    return out


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def load_json(data: bytes, where: str, what: str) -> Any:
    """Strict JSON (UTF-8, no duplicate keys, no NaN); E-SIGNATURE-INVALID for anything else,
    including nesting deep enough to exhaust the parser."""
    try:
        return json.loads(data.decode("utf-8"), object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        text = str(exc) if not isinstance(exc, RecursionError) else "nested too deeply"
        raise _invalid(f"{what} is not valid JSON ({text[:160]})", where) from None


def _get(obj: Any, key: str, kind: type | tuple[type, ...], where: str, path: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise _invalid(f"{path}{key} is missing", where)
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        name = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise _invalid(f"{path}{key} must be a JSON {name}", where)
    return value


def _b64(text: str, where: str, path: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _invalid(f"{path} is not base64", where) from None


def statement_document(model_id: str, spec_version: int) -> dict[str, Any]:
    """The in-toto statement signed for a model (as JSON values)."""
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": MANIFEST_PATH, "digest": {"sha256": model_id}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {"format": "carton", "spec_version": spec_version},
    }


def parse_statement(payload: bytes, where: str) -> SignedStatement:
    """The model id and format version an in-toto statement (a DSSE payload) names."""
    doc = load_json(payload, where, "the signed statement")
    if not isinstance(doc, dict):
        raise _invalid("the signed statement is not a JSON object", where)
    p = "statement."
    if _get(doc, "_type", str, where, p) != STATEMENT_TYPE:
        raise _invalid(f"statement._type is not {STATEMENT_TYPE}", where)
    if _get(doc, "predicateType", str, where, p) != PREDICATE_TYPE:
        raise _invalid(f"statement.predicateType is not {PREDICATE_TYPE} (not a Carton signature)", where)
    subjects = _get(doc, "subject", list, where, p)
    if len(subjects) != 1:
        raise _invalid(f"statement.subject has {len(subjects)} entries, expected 1 (MANIFEST)", where)
    if _get(subjects[0], "name", str, where, "statement.subject[0].") != MANIFEST_PATH:
        raise _invalid("statement.subject[0].name is not MANIFEST", where)
    digest = _get(subjects[0], "digest", dict, where, "statement.subject[0].")
    model_id = _get(digest, "sha256", str, where, "statement.subject[0].digest.")
    if not is_sha256_hex(model_id):
        raise _invalid("statement.subject[0].digest.sha256 is not 64 lowercase hex digits", where)
    predicate = _get(doc, "predicate", dict, where, p)
    if _get(predicate, "format", str, where, "statement.predicate.") != "carton":
        raise _invalid("statement.predicate.format is not 'carton'", where)
    spec_version = _get(predicate, "spec_version", int, where, "statement.predicate.")
    return SignedStatement(model_id, spec_version)


def _signer_hint(material: dict[str, Any], where: str) -> dict[str, Any]:
    if "publicKey" in material:
        key = _get(material, "publicKey", dict, where, "bundle.verificationMaterial.")
        hint = key.get("hint")
        return {"kind": "key", "public_key_sha256": hint if isinstance(hint, str) else None}
    if "x509CertificateChain" in material:
        chain = _get(material, "x509CertificateChain", dict, where, "bundle.verificationMaterial.")
        certs = _get(chain, "certificates", list, where, "bundle.verificationMaterial.x509CertificateChain.")
        return {"kind": "certificate", "certificates": len(certs)}
    if "certificate" in material:
        return {"kind": "sigstore"}
    raise _invalid("bundle.verificationMaterial holds no public key, certificate chain or certificate", where)


def parse_signature_document(data: bytes, where: str = SIGNATURE_PATH) -> SignatureDocument:
    """Check a signature document's form (size, JSON, version, bundle, statement), no crypto.

    E-LIMIT-MEMBER-SIZE above :data:`MAX_SIGNATURE_BYTES`, E-SIGNATURE-VERSION for another
    version, E-SIGNATURE-INVALID for anything malformed."""
    if len(data) > MAX_SIGNATURE_BYTES:
        raise CartonFormatError("E-LIMIT-MEMBER-SIZE", f"is {len(data)} bytes; a signature is at most {MAX_SIGNATURE_BYTES}", member=where)
    doc = load_json(data, where, "the signature document")
    if not isinstance(doc, dict):
        raise _invalid("the signature document is not a JSON object", where)
    version = _get(doc, "version", int, where, "")
    if version != SIGNATURE_VERSION:
        raise CartonFormatError(
            "E-SIGNATURE-VERSION", f"version is {version}; this reader understands {SIGNATURE_VERSION}", member=where, key="version"
        )
    bundle = _get(doc, "bundle", dict, where, "")
    if _get(bundle, "mediaType", str, where, "bundle.") != BUNDLE_MEDIA_TYPE:
        raise _invalid(f"bundle.mediaType is not {BUNDLE_MEDIA_TYPE}", where)
    material = _get(bundle, "verificationMaterial", dict, where, "bundle.")
    signer = _signer_hint(material, where)
    envelope = _get(bundle, "dsseEnvelope", dict, where, "bundle.")
    if _get(envelope, "payloadType", str, where, "bundle.dsseEnvelope.") != PAYLOAD_TYPE:
        raise _invalid(f"bundle.dsseEnvelope.payloadType is not {PAYLOAD_TYPE}", where)
    signatures = _get(envelope, "signatures", list, where, "bundle.dsseEnvelope.")
    if len(signatures) != 1:
        raise _invalid(f"bundle.dsseEnvelope.signatures has {len(signatures)} entries, expected 1", where)
    _b64(_get(signatures[0], "sig", str, where, "bundle.dsseEnvelope.signatures[0]."), where, "bundle.dsseEnvelope.signatures[0].sig")
    payload = _b64(_get(envelope, "payload", str, where, "bundle.dsseEnvelope."), where, "bundle.dsseEnvelope.payload")
    return SignatureDocument(version, bundle, parse_statement(payload, where), signer)


def check_subject(statement: SignedStatement, model_id: str, spec_version: int, where: str = SIGNATURE_PATH) -> None:
    """E-SIGNATURE-MISMATCH unless the statement names this model id and format version."""
    if statement.model_id != model_id:
        raise CartonFormatError(
            "E-SIGNATURE-MISMATCH", f"signs model id {statement.model_id}, but this archive's MANIFEST has sha256 {model_id}", member=where
        )
    if statement.spec_version != spec_version:
        raise CartonFormatError(
            "E-SIGNATURE-MISMATCH", f"signs format version {statement.spec_version}, the archive has {spec_version}", member=where
        )


def check_signature_member(source: ArchiveSource, model_id: str) -> None:
    """Validation of an archive's SIGNATURE member, when it has one: its form and that it signs
    this archive's model id (no crypto: that needs a trusted key, see ``verify_signature``)."""
    if source.member(SIGNATURE_PATH) is None:
        return
    data = read_member(source, SIGNATURE_PATH, MAX_SIGNATURE_BYTES)
    check_subject(parse_signature_document(data).statement, model_id, SPEC_VERSION)


def signature_document_bytes(bundle: dict[str, Any]) -> bytes:
    """The document for a bundle: canonical JSON (sorted keys, no spaces), one line."""
    return json.dumps({"version": SIGNATURE_VERSION, "bundle": bundle}, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode() + b"\n"


__all__ = [
    "BUNDLE_MEDIA_TYPE",
    "DETACHED_SUFFIX",
    "MAX_SIGNATURE_BYTES",
    "PAYLOAD_TYPE",
    "PREDICATE_TYPE",
    "SIGNATURE_VERSION",
    "STATEMENT_TYPE",
    "SignatureDocument",
    "SignedStatement",
    "check_signature_member",
    "check_subject",
    "load_json",
    "parse_signature_document",
    "parse_statement",
    "signature_document_bytes",
    "statement_document",
]
