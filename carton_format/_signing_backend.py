"""The model-signing (OpenSSF) pieces :mod:`carton_format.signing` uses; importing this module
needs the ``signing`` extra (model-signing, sigstore, pyopenssl).

model-signing's high-level API hashes files and directories; a Carton signature signs one
statement of our own (the model id), so this uses the library's lower-level pieces: its key,
certificate and Sigstore signers' key material and bundle assembly, DSSE PAE encoding and
verifiers.  The one change: ECDSA signatures are RFC 6979 deterministic
(``cryptography``'s ``deterministic_signing``), so signing the same archive with the same key
gives the same bytes (deterministic archives, reproducible conformance cases).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import io
import json
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec
from model_signing._signing import sign_certificate, sign_ec_key, sign_sigstore, sign_sigstore_pb
from model_signing._signing import signing as ms_signing
from sigstore_models import intoto as intoto_pb
from sigstore_models.bundle import v1 as bundle_pb

from .errors import CartonFormatError
from .signature_doc import BUNDLE_MEDIA_TYPE, PAYLOAD_TYPE

log = logging.getLogger(__name__)

#: What loading an unusable key or certificate raises (not PEM, a password needed, an RSA key
#: where an elliptic-curve one is needed: no ``.curve``, an unsupported curve).
_KEY_ERRORS = (ValueError, TypeError, AttributeError, UnsupportedAlgorithm)


class _RawPayload(ms_signing.Payload):
    """A model-signing payload whose statement bytes are given (canonical JSON of ours):
    protobuf's JSON of a Struct orders keys differently from run to run."""

    def __init__(self, raw: bytes) -> None:  # no manifest: the statement is ours
        self.raw = raw


def _sign_deterministic(self: Any, payload: _RawPayload) -> sign_sigstore_pb.Signature:
    """model-signing's key/certificate ``Signer.sign`` with RFC 6979 ECDSA and our payload bytes."""
    public_key = self._private_key.public_key()
    raw_signature = intoto_pb.Signature(
        sig=base64.b64encode(
            self._private_key.sign(
                sign_sigstore_pb.pae(payload.raw),
                ec.ECDSA(sign_ec_key.get_ec_key_hash(public_key), deterministic_signing=True),
            )
        ),
        keyid="",
    )
    envelope = intoto_pb.Envelope(payload=base64.b64encode(payload.raw), payload_type=PAYLOAD_TYPE, signatures=[raw_signature])
    return sign_sigstore_pb.Signature(
        bundle_pb.Bundle(
            media_type=BUNDLE_MEDIA_TYPE, verification_material=self._get_verification_material(), dsse_envelope=envelope
        )
    )


class _KeySigner(sign_ec_key.Signer):
    sign = _sign_deterministic  # type: ignore[assignment]


class _CertificateSigner(sign_certificate.Signer):
    sign = _sign_deterministic  # type: ignore[assignment]


class _SigstoreSigner(sign_sigstore.Signer):
    """Keyless Sigstore (OIDC, Fulcio, Rekor: online), over our payload bytes."""

    def sign(self, payload: _RawPayload) -> sign_sigstore.Signature:  # type: ignore[override]
        from sigstore import dsse as sigstore_dsse

        token = self._get_identity_token()
        with self._signing_context.signer(token) as signer:
            return sign_sigstore.Signature(signer.sign_dsse(sigstore_dsse.Statement(payload.raw)))


def _key_error(what: str, exc: Exception) -> CartonFormatError:
    return CartonFormatError("E-ARG-INVALID", f"{what}: {type(exc).__name__}: {str(exc)[:200]}")


def key_signer(key: Path, password: str | None) -> Any:
    try:
        return _KeySigner(key, password)
    except _KEY_ERRORS as exc:
        raise _key_error(f"the private key {key} cannot be used", exc) from None


def certificate_signer(key: Path, cert: Path, chain: list[Path]) -> Any:
    try:
        return _CertificateSigner(key, cert, chain)
    except _KEY_ERRORS as exc:
        raise _key_error(f"the key {key} and certificate {cert} cannot be used", exc) from None


def sigstore_signer(*, identity_token: str | None, use_staging: bool) -> Any:
    return _SigstoreSigner(identity_token=identity_token, use_staging=use_staging)


def sign(signer: Any, payload: bytes) -> dict[str, Any]:
    """The Sigstore bundle (JSON values) signing ``payload``."""
    signature = signer.sign(_RawPayload(payload))
    return json.loads(signature.bundle.to_json())


def key_verifier(key: Path) -> Any:
    try:
        return sign_ec_key.Verifier(key)
    except _KEY_ERRORS as exc:
        raise _key_error(f"the public key {key} cannot be used", exc) from None


def certificate_verifier(chain: list[Path]) -> Any:
    try:
        return sign_certificate.Verifier(chain)
    except _KEY_ERRORS as exc:
        raise _key_error(f"the certificates {', '.join(map(str, chain))} cannot be used", exc) from None


def sigstore_verifier(identity: str, issuer: str, use_staging: bool, trust_config: Path | None) -> Any:
    return sign_sigstore.Verifier(identity=identity, oidc_issuer=issuer, use_staging=use_staging, trust_config=trust_config)


def _bundle_for(verifier: Any, bundle: dict[str, Any]) -> Any:
    """The library's signature object for a bundle, normalised as its ``Signature.read`` does."""
    if isinstance(verifier, sign_sigstore.Verifier):
        from sigstore import models as sigstore_models

        return sign_sigstore.Signature(sigstore_models.Bundle.from_json(json.dumps(bundle)))
    parsed = json.loads(json.dumps(bundle))  # a copy to normalise
    material = parsed["verificationMaterial"]
    material.setdefault("tlogEntries", [])
    if "publicKey" in material:
        material["publicKey"].setdefault("hint", None)
        for k in ("rawBytes", "keyDetails"):
            material["publicKey"].pop(k, None)
    return sign_sigstore_pb.Signature(bundle_pb.Bundle.from_dict(parsed))


def verify(verifier: Any, bundle: dict[str, Any], where: str) -> tuple[str, bytes]:
    """(payload type, payload bytes) of a bundle the verifier accepts; E-SIGNATURE-INVALID when
    the library cannot parse it, E-SIGNATURE-UNVERIFIED when the signature does not verify."""
    try:
        signature = _bundle_for(verifier, bundle)
    except Exception as exc:  # noqa: BLE001 - pydantic/protobuf/base64 errors: a malformed bundle
        raise CartonFormatError("E-SIGNATURE-INVALID", f"the bundle cannot be parsed: {type(exc).__name__}: {str(exc)[:200]}", member=where) from None
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):  # the library prints some warnings on stdout
            payload_type, payload = verifier._verify_signed_content(signature)
    except Exception as exc:  # noqa: BLE001 - any failure of the check is "not verified", with its reason
        reason = str(exc)[:300] or type(exc).__name__
        raise CartonFormatError("E-SIGNATURE-UNVERIFIED", f"the signature does not verify: {type(exc).__name__}: {reason}", member=where) from None
    finally:
        if printed.getvalue().strip():
            log.warning("model-signing: %s", printed.getvalue().strip())
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    return payload_type, bytes(payload)


@functools.cache
def backend() -> SimpleNamespace:
    """This module's functions, as :mod:`carton_format.signing` calls them."""
    return SimpleNamespace(
        key_signer=key_signer, certificate_signer=certificate_signer, sigstore_signer=sigstore_signer, sign=sign,
        key_verifier=key_verifier, certificate_verifier=certificate_verifier, sigstore_verifier=sigstore_verifier, verify=verify,
    )


__all__ = ["backend"]
