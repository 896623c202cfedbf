"""Signed archives: ``sign()`` and ``verify_signature()``, thin over OpenSSF model-signing.

Signing costs what reading MANIFEST costs, whatever the model's size: the statement signed names
the model id (the sha256 of MANIFEST) and the format version (see :mod:`.signature_doc`), and the
signature is appended as the SIGNATURE member without rewriting member data (or written beside the
archive as ``FILE.sig``).  Verifying checks the signature, then (``deep=True``) every member
against MANIFEST with :func:`~carton_format.validate`, so a valid signature vouches for every byte.

model-signing and sigstore are an optional extra (``pip install 'carton-py[signing]'``), imported
only here and only when called: without them ``E-SIGNATURE-UNAVAILABLE``.  Offline methods: an
elliptic-curve key (P-256/384/521) or a certificate chain; keyless Sigstore needs the network.
Signatures are deterministic (RFC 6979 ECDSA): the same key and archive give the same bytes.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ._atomic import atomic_output, output_path
from ._zip.append import append_to_open_zip
from ._zip.source import ZipSource
from .errors import CartonError, CartonFormatError, Finding
from .limits import DEFAULT_LIMITS, Limits
from .manifest import SIGNATURE_PATH
from .metadata import SPEC_VERSION
from .reader import CartonArchive, LinkedFetcher, read
from .signature_doc import (
    DETACHED_SUFFIX,
    MAX_SIGNATURE_BYTES,
    PAYLOAD_TYPE,
    SignatureDocument,
    check_subject,
    parse_signature_document,
    parse_statement,
    signature_document_bytes,
    statement_document,
)
from .sources import read_member

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]


@dataclass
class SignResult:
    """Where a signature went and what it signs."""

    file: str
    model_id: str
    spec_version: int
    signature_location: str  # "member SIGNATURE" or the detached file's path
    method: str  # key | certificate | sigstore
    signature_bytes: int

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (``carton sign --json``)."""
        return dict(self.__dict__)


@dataclass
class SignatureReport:
    """The answer of :func:`verify_signature`; ``verified`` is True only with no reason against."""

    file: str
    verified: bool = False
    model_id: str | None = None
    spec_version: int | None = None
    signature_location: str | None = None
    method: str | None = None
    signer: dict[str, Any] = field(default_factory=dict)
    reasons: list[Finding] = field(default_factory=list)
    deep: bool = True
    warnings: list[Finding] = field(default_factory=list)  # of the deep check (W-HASHES-NOT-VERIFIED: linked files not fetched)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (``carton verify --json``)."""
        return {
            "file": self.file,
            "verified": self.verified,
            "model_id": self.model_id,
            "spec_version": self.spec_version,
            "signature_location": self.signature_location,
            "method": self.method,
            "signer": self.signer,
            "deep": self.deep,
            "reasons": [r.to_dict() for r in self.reasons],
            "warnings": [w.to_dict() for w in self.warnings],
        }


# -- the optional extra ---------------------------------------------------------------------


def _extra() -> Any:
    """model-signing's pieces (imported on first use); E-SIGNATURE-UNAVAILABLE without them."""
    try:
        from ._signing_backend import backend
    except ImportError as exc:
        raise CartonFormatError(
            "E-SIGNATURE-UNAVAILABLE", f"signing needs the 'signing' extra: pip install 'carton-py[signing]' ({exc})"
        ) from None
    return backend()


# -- signing ----------------------------------------------------------------------------------


def _check_path(value: object, what: str, *, file: bool = True) -> Path:
    """``value`` as a Path that exists (a file unless ``file=False``), else E-ARG-INVALID naming ``what``."""
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
        raise CartonFormatError("E-ARG-INVALID", f"{what} must be a path, not {value!r}")
    path = Path(value)
    if file and not path.is_file():
        raise CartonFormatError("E-ARG-INVALID", f"{what} {os.fspath(path)!r} is not a file")
    if not path.exists():
        raise CartonFormatError("E-ARG-INVALID", f"{what} {os.fspath(path)!r} does not exist")
    return path


def _archive_path(value: object) -> Path:
    return _check_path(value, "the archive", file=False)


def sign(
    path: PathLike,
    *,
    key: PathLike | None = None,
    cert: PathLike | None = None,
    chain: Sequence[PathLike] = (),
    password: str | None = None,
    sigstore: bool = False,
    identity_token: str | None = None,
    use_staging: bool = False,
    detached: bool = False,
    output: PathLike | None = None,
    overwrite: bool = False,
    limits: Limits = DEFAULT_LIMITS,
) -> SignResult:
    """Sign the archive at ``path`` with a private key (``key``, PEM; with ``cert`` and ``chain``,
    the certificates from the signing certificate's issuer up to the CA, a certificate signature)
    or keyless Sigstore (``sigstore=True``, online).

    In the archive (the SIGNATURE member, appended in place; a previous one is replaced) unless
    ``detached`` (``output`` or ``path + '.sig'``).  With ``output`` and not ``detached``, the signed
    archive is a copy written there and ``path`` is left alone.  Only the metadata is read: the
    archive is not verified (``verify_signature`` does that)."""
    archive_path = _archive_path(path)
    if sigstore == (key is not None):
        raise CartonFormatError("E-ARG-INVALID", "give exactly one of key= (a private key) and sigstore=True")
    if isinstance(chain, (str, os.PathLike)):
        chain = [chain]
    if (cert is None) != (not chain):
        raise CartonFormatError("E-ARG-INVALID", "cert= (the signing certificate) and chain= (the certificates above it, up to the CA) go together")
    backend = _extra()
    if sigstore:
        method, signer = "sigstore", backend.sigstore_signer(identity_token=identity_token, use_staging=use_staging)
    elif cert is not None:
        method = "certificate"
        signer = backend.certificate_signer(_check_path(key, "key"), _check_path(cert, "cert"), [_check_path(c, "chain") for c in chain])
    else:
        method, signer = "key", backend.key_signer(_check_path(key, "key"), password)

    def document_for(archive: CartonArchive) -> tuple[str, bytes]:
        model_id = archive.manifest_sha256
        payload = json.dumps(statement_document(model_id, SPEC_VERSION), sort_keys=True, separators=(",", ":")).encode()
        document = signature_document_bytes(backend.sign(signer, payload))
        parse_signature_document(document)  # what we write, we can read
        return model_id, document

    if detached or archive_path.is_dir():
        with read(archive_path, verify_hashes=False, limits=limits) as archive:
            model_id, document = document_for(archive)
        if detached:
            target = output_path(output if output is not None else os.fspath(archive_path) + DETACHED_SUFFIX)
        elif output is not None:
            raise CartonFormatError("E-ARG-INVALID", "output= is for .carton files; sign an unpacked directory in place")
        else:
            target = archive_path / SIGNATURE_PATH
        with atomic_output(target, overwrite=overwrite or output is None) as (fh, _tmp):
            fh.write(document)
        where = os.fspath(target) if detached else f"member {SIGNATURE_PATH}"
    else:
        where = f"member {SIGNATURE_PATH}"
        target_archive = _copy(archive_path, output_path(output), overwrite) if output is not None else archive_path
        try:
            model_id, document = _append_signature(target_archive, document_for, limits)
        except BaseException:
            if target_archive != archive_path:
                target_archive.unlink(missing_ok=True)  # no unsigned copy left behind
            raise
    log.info("signed %s (model id %s) with %s: %s", archive_path, model_id, method, where)
    return SignResult(os.fspath(archive_path), model_id, SPEC_VERSION, where, method, len(document))


def _append_signature(path: Path, document_for: Any, limits: Limits) -> tuple[str, bytes]:
    """Read the metadata and append SIGNATURE over one open file: its end records are read once
    (and once more to check what was written)."""
    try:
        f = open(path, "r+b", buffering=0)  # noqa: SIM115 - closed below
    except OSError as exc:
        raise CartonFormatError("E-IO", f"{path}: {exc.strerror or exc}") from None
    with f:
        source = ZipSource(f, limits=limits, path=path)
        with read(source, verify_hashes=False, limits=limits) as archive:
            model_id, document = document_for(archive)
            append_to_open_zip(f, source.zip_reader, SIGNATURE_PATH, document, limits=limits)
    return model_id, document


def _copy(source: Path, target: Path, overwrite: bool) -> Path:
    with atomic_output(target, overwrite=overwrite) as (fh, _tmp), open(source, "rb") as src:
        shutil.copyfileobj(src, fh, 4 << 20)
    return target


# -- verifying --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrustRoot:
    """Whom a signature must come from: exactly one of a public key (``key``, PEM), the CA
    certificates of certificate signatures (``chain``), or a Sigstore ``identity`` from ``issuer``
    (``trust_config``: a custom Sigstore trust configuration; ``use_staging``: the staging instance)."""

    key: Path | None = None
    chain: tuple[Path, ...] = ()
    identity: str | None = None
    issuer: str | None = None
    trust_config: Path | None = None
    use_staging: bool = False

    @classmethod
    def of(cls, *, key: Any = None, chain: Any = None, identity: Any = None, issuer: Any = None,
           trust_config: Any = None, use_staging: bool = False) -> "TrustRoot":
        """A checked trust root (E-ARG-INVALID: none or several given, a file that is missing)."""
        if isinstance(chain, (str, os.PathLike)):
            chain = [chain]
        given = [key is not None, bool(chain), identity is not None]
        if sum(given) != 1:
            raise CartonFormatError("E-ARG-INVALID", "give exactly one trust root: key=, chain= or identity= (with issuer=)")
        if identity is not None and (not isinstance(identity, str) or not isinstance(issuer, str) or not issuer):
            raise CartonFormatError("E-ARG-INVALID", "identity= (a str) needs issuer= (the OIDC issuer URL)")
        return cls(
            key=_check_path(key, "key") if key is not None else None,
            chain=tuple(_check_path(c, "chain") for c in (chain or ())),
            identity=identity,
            issuer=issuer if identity is not None else None,
            trust_config=_check_path(trust_config, "trust_config") if trust_config is not None else None,
            use_staging=bool(use_staging),
        )

    def verifier(self, backend: Any) -> tuple[str, Any]:
        """(method, model-signing verifier) for this root."""
        if self.key is not None:
            return "key", backend.key_verifier(self.key)
        if self.chain:
            return "certificate", backend.certificate_verifier(list(self.chain))
        return "sigstore", backend.sigstore_verifier(self.identity, self.issuer, self.use_staging, self.trust_config)


def _load_document(archive: CartonArchive, archive_path: Path | None, signature: PathLike | None,
                   report: SignatureReport) -> SignatureDocument:
    """The signature document: ``signature`` (a detached file), else the SIGNATURE member, else
    ``FILE.sig`` beside the archive (when it has a local path)."""
    if signature is None and archive.source.member(SIGNATURE_PATH) is not None:
        report.signature_location = f"member {SIGNATURE_PATH}"
        data = read_member(archive.source, SIGNATURE_PATH, MAX_SIGNATURE_BYTES)
        return parse_signature_document(data, SIGNATURE_PATH)
    if signature is None and archive_path is None:
        raise CartonFormatError("E-SIGNATURE-MISSING", f"the archive has no {SIGNATURE_PATH} member")
    detached = Path(signature) if signature is not None else Path(os.fspath(archive_path) + DETACHED_SUFFIX)  # type: ignore[arg-type]
    if signature is None and not detached.is_file():
        raise CartonFormatError("E-SIGNATURE-MISSING", f"the archive has no {SIGNATURE_PATH} member and there is no {detached.name}")
    report.signature_location = os.fspath(detached)
    try:
        with open(detached, "rb") as f:
            data = f.read(MAX_SIGNATURE_BYTES + 1)
    except OSError as exc:
        raise CartonFormatError("E-IO", f"{os.fspath(detached)}: {exc.strerror or exc}") from None
    return parse_signature_document(data, os.fspath(detached))


def verify_signature(
    path: PathLike,
    *,
    key: PathLike | None = None,
    chain: PathLike | Sequence[PathLike] | None = None,
    identity: str | None = None,
    issuer: str | None = None,
    trust_config: PathLike | None = None,
    use_staging: bool = False,
    signature: PathLike | None = None,
    deep: bool = True,
    fetch_linked: LinkedFetcher | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> SignatureReport:
    """Check that the archive at ``path`` is signed by the trusted ``key`` (a PEM public key), a
    certificate that ``chain`` (CA certificates) vouches for, or the Sigstore ``identity`` from
    ``issuer``; then (``deep``) validate every member against MANIFEST.

    Never raises for a bad archive or signature: the reasons are in the report (coded findings).
    A bad argument (no trust root, a key file that does not exist) is ``E-ARG-INVALID``."""
    trust = TrustRoot.of(key=key, chain=chain, identity=identity, issuer=issuer, trust_config=trust_config, use_staging=use_staging)
    archive_path = _archive_path(path)
    report = SignatureReport(os.fspath(archive_path), deep=deep)
    try:
        with read(archive_path, verify_hashes=False, limits=limits) as archive:
            report = verify_archive_signature(archive, trust, signature=signature, archive_path=archive_path)
    except CartonError as exc:  # the archive cannot be read at all
        report.reasons.append(exc.to_finding())
    report.file, report.deep = os.fspath(archive_path), deep
    if deep and not report.reasons:
        from .validate import validate

        result = validate(archive_path, limits=limits, fetch_linked=fetch_linked)
        report.reasons.extend(result.errors)
        report.warnings.extend(result.warnings)
    report.verified = not report.reasons
    return report


def verify_archive_signature(archive: CartonArchive, trust: TrustRoot, *, signature: PathLike | None = None,
                             archive_path: Path | None = None) -> SignatureReport:
    """The signature check alone, on an opened archive (the runtime's loading policy: its
    members are verified against MANIFEST as they are loaded).  Never raises for a bad signature."""
    report = SignatureReport(str(archive.source.location), model_id=archive.manifest_sha256, spec_version=SPEC_VERSION, deep=False)
    try:
        _verify(archive, trust, report, signature, archive_path)
    except CartonError as exc:
        report.reasons.append(exc.to_finding())
    report.verified = not report.reasons
    return report


def _verify(archive: CartonArchive, trust: TrustRoot, report: SignatureReport, signature: Any, archive_path: Path | None) -> None:
    model_id = archive.manifest_sha256
    document = _load_document(archive, archive_path, signature, report)
    report.signer = dict(document.signer)
    where = SIGNATURE_PATH if report.signature_location == f"member {SIGNATURE_PATH}" else str(report.signature_location)
    check_subject(document.statement, model_id, SPEC_VERSION, where)  # cheap, before any crypto
    backend = _extra()
    report.method, verifier = trust.verifier(backend)
    payload_type, payload = backend.verify(verifier, document.bundle, where)
    if payload_type != PAYLOAD_TYPE:
        raise CartonFormatError("E-SIGNATURE-INVALID", f"the signed payload is {payload_type!r}, not {PAYLOAD_TYPE}", member=where)
    check_subject(parse_statement(payload, where), model_id, SPEC_VERSION, where)  # what was verified


__all__ = ["SignResult", "SignatureReport", "TrustRoot", "sign", "verify_archive_signature", "verify_signature"]
