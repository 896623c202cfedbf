"""Signature cases (spec section 18): ``inspect`` cases for the form of the SIGNATURE member, which a
validator checks without keys, and ``verify`` cases, which check a signature against a trusted
public key and then every member.

Signatures are made here with the pieces of OpenSSF model-signing (its key material, DSSE PAE
encoding and Sigstore bundle classes), never with carton_format, and with RFC 6979 deterministic
ECDSA over the committed test keys in ``carton_conformance/keys/``: regenerating gives the same bytes.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from .carton import CaseArchive, minimal, sha256, standard
from .inspect_cases import Inspect
from .registry import Case, Registry

KEYS = Path(__file__).resolve().parents[1] / "keys"
SIGNER, OTHER = KEYS / "signer.pem", KEYS / "other.pem"
PREDICATE_TYPE = "https://carton.run/signature/v1"
SIG_CATS = ["signature"]


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def statement(model_id: str, spec_version: int = 1, **change: Any) -> dict[str, Any]:
    doc = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "MANIFEST", "digest": {"sha256": model_id}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {"format": "carton", "spec_version": spec_version},
    }
    doc.update(change)
    return doc


def bundle(payload: bytes, key: Path = SIGNER) -> dict[str, Any]:
    """A Sigstore bundle (as model-signing's key signer makes them) signing ``payload``."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from model_signing._signing import sign_ec_key, sign_sigstore_pb
    from sigstore_models import intoto as intoto_pb
    from sigstore_models.bundle import v1 as bundle_pb

    signer = sign_ec_key.Signer(key)
    private = signer._private_key
    sig = private.sign(sign_sigstore_pb.pae(payload), ec.ECDSA(sign_ec_key.get_ec_key_hash(private.public_key()), deterministic_signing=True))
    envelope = intoto_pb.Envelope(payload=base64.b64encode(payload), payload_type="application/vnd.in-toto+json",
                                  signatures=[intoto_pb.Signature(sig=base64.b64encode(sig), keyid="")])
    made = bundle_pb.Bundle(media_type="application/vnd.dev.sigstore.bundle.v0.3+json",
                            verification_material=signer._get_verification_material(), dsse_envelope=envelope)
    return json.loads(made.to_json())


def document(b: dict[str, Any], version: Any = 1) -> bytes:
    return canonical({"version": version, "bundle": b}) + b"\n"


def signed(c: CaseArchive, key: Path = SIGNER) -> CaseArchive:
    out = c.copy()
    out.signature = document(bundle(canonical(statement(sha256(c.manifest_data()))), key))
    return out


def model_id(c: CaseArchive) -> str:
    return sha256(c.manifest_data())


def generate(reg: Registry) -> None:
    t = Inspect(reg)
    _inspect(t)
    _verify(reg)


def _with_bundle(c: CaseArchive, change: dict[str, Any]) -> CaseArchive:
    out = c.copy()
    b = bundle(canonical(statement(model_id(c))))
    b.update(change)
    out.signature = document({k: v for k, v in b.items() if v is not None})
    return out


def _inspect(t: Inspect) -> None:
    c = minimal()
    t.valid("signature/signed-by-key", "A SIGNATURE member (ECDSA P-256 key) after MANIFEST: not in MANIFEST, ignored by readers.",
            ["FMT-SIG-1", "FMT-SIG-2", "FMT-SIG-4", "FMT-SIG-5", "FMT-SIG-6", "FMT-SIG-8", "FMT-MANIFEST-8"], signed(c))
    other = c.copy()
    other.signature = document(bundle(canonical(statement(model_id(standard())))))
    t.invalid("signature/other-manifest", "SIGNATURE signs the model id of another archive (another MANIFEST).",
              ["FMT-SIG-6"], other, SIG_CATS, ["E-SIGNATURE-MISMATCH"])
    d = c.copy()
    d.signature = document(bundle(canonical(statement(model_id(c), spec_version=2))))
    t.invalid("signature/other-spec-version", "SIGNATURE signs this model id with spec_version 2.", ["FMT-SIG-6"], d, SIG_CATS,
              ["E-SIGNATURE-MISMATCH"])
    d = c.copy()
    d.signature = b'{"version":1,"bundle":{'
    t.invalid("signature/malformed-json", "SIGNATURE is not valid JSON.", ["FMT-SIG-2"], d, SIG_CATS, ["E-SIGNATURE-INVALID"])
    t.invalid("signature/bundle-media-type", "The bundle's mediaType is not the Sigstore bundle v0.3 type.", ["FMT-SIG-2"],
              _with_bundle(c, {"mediaType": "application/json"}), SIG_CATS, ["E-SIGNATURE-INVALID"])
    t.invalid("signature/bundle-without-envelope", "The bundle has no dsseEnvelope (a malformed bundle).", ["FMT-SIG-4"],
              _with_bundle(c, {"dsseEnvelope": None}), SIG_CATS, ["E-SIGNATURE-INVALID"])
    t.invalid("signature/bundle-without-key", "The bundle's verificationMaterial is empty.", ["FMT-SIG-4"],
              _with_bundle(c, {"verificationMaterial": {}}), SIG_CATS, ["E-SIGNATURE-INVALID"])
    two = statement(model_id(c), subject=[{"name": "MANIFEST", "digest": {"sha256": model_id(c)}}] * 2)
    d = c.copy()
    d.signature = document(bundle(canonical(two)))
    t.invalid("signature/statement-two-subjects", "The signed statement has two subjects.", ["FMT-SIG-5"], d, SIG_CATS,
              ["E-SIGNATURE-INVALID"])
    d = c.copy()
    d.signature = document(bundle(canonical(statement(model_id(c), predicateType="https://model_signing/signature/v1.0"))))
    t.invalid("signature/statement-predicate-type", "The signed statement is a model-signing file manifest, not a Carton signature.",
              ["FMT-SIG-5"], d, SIG_CATS, ["E-SIGNATURE-INVALID"])
    d = c.copy()
    d.signature = document(bundle(canonical(statement(model_id(c)))), version=2)
    t.invalid("signature/version-2", "The signature document has version 2.", ["FMT-SIG-3"], d, SIG_CATS, ["E-SIGNATURE-VERSION"])
    d = c.copy()
    d.signature = b" " * ((1 << 20) + 1)
    t.invalid("signature/too-large", "SIGNATURE (zstd) declares 1 MiB + 1 byte.", ["FMT-SIG-1"], d, ["limit"],
              ["E-LIMIT-MEMBER-SIZE", "E-LIMIT-RATIO"], overrides={"SIGNATURE": {"method": 93}})
    d = c.copy()
    d.files["SIGNATURE"] = signed(c).signature or b""
    t.invalid("manifest/lists-signature", "MANIFEST lists SIGNATURE.", ["FMT-MANIFEST-5"], d, ["manifest"], ["E-MANIFEST-SYNTAX"])


def _verify(reg: Registry) -> None:
    c = minimal()
    pub = (KEYS / "signer.pub.pem").read_bytes()
    other_pub = (KEYS / "other.pub.pem").read_bytes()

    def case(name: str, description: str, archive: CaseArchive, key: bytes, expect: dict[str, Any]) -> None:
        fields = {"archive": "archive.carton", "key": "public.pem"}
        reg.add(Case(f"verify/{name}", "verify", description, ["FMT-SIG-7"], expect,
                     {"archive.carton": archive.zip(), "public.pem": key}, fields))

    def rejected(codes: list[str], categories: list[str] = SIG_CATS) -> dict[str, Any]:
        return {"result": "not-verified", "categories": categories, "codes": codes}

    case("verified/key", "Signed by the trusted key, every member intact.", signed(c), pub,
         {"result": "verified", "manifest_sha256": model_id(c)})
    case("verified/standard", "An archive with tensors and misc files, signed by the trusted key.", signed(standard()), pub,
         {"result": "verified", "manifest_sha256": model_id(standard())})
    case("not-verified/wrong-key", "Signed by another key than the trusted one.", signed(c, OTHER), pub, rejected(["E-SIGNATURE-UNVERIFIED"]))
    case("not-verified/unsigned", "The archive has no signature.", c, pub, rejected(["E-SIGNATURE-MISSING"]))
    forged = c.copy()
    other_sig = json.loads(document(bundle(canonical(statement(model_id(standard()))))))["bundle"]
    other_sig["dsseEnvelope"]["payload"] = base64.b64encode(canonical(statement(model_id(c)))).decode()
    forged.signature = document(other_sig)
    case("not-verified/forged-payload", "Another archive's signature with its payload replaced by a statement about this one.",
         forged, pub, rejected(["E-SIGNATURE-UNVERIFIED"]))
    tampered = signed(c)
    tampered.manifest = c.manifest_data()  # MANIFEST (and so the signature) of the intact archive
    tampered.files["model/model.pt"] = bytes(b ^ 1 if i == 0 else b for i, b in enumerate(c.files["model/model.pt"]))
    case("not-verified/member-changed", "Validly signed MANIFEST, but model/model.pt differs from it (CRC intact).", tampered, pub,
         rejected(["E-MANIFEST-MISMATCH"], ["manifest"]))
    case("not-verified/other-key-listed", "Signed by the trusted key's twin: the bundle names a key that is not the trusted one.",
         signed(c), other_pub, rejected(["E-SIGNATURE-UNVERIFIED"]))


__all__ = ["generate"]
