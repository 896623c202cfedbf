"""The loading policy on signatures: ``load(..., require_signature=...)``, ``CARTON_REQUIRE_SIGNATURE``
or the config file's ``require_signature`` key.

Off by default.  When set, an archive is loaded only if it carries a valid signature (the
SIGNATURE member, or ``FILE.sig`` beside a local file) from the trusted root; anything else is
``E-RUNTIME-SIGNATURE``, raised right after the archive's metadata is opened: before a runner is
chosen, before any model file is fetched or any model code runs.  The members themselves are
verified against MANIFEST as the load reads them (LINKS-fetched ones included), so a signed
model id vouches for every byte that is loaded.

What ``require_signature`` may be:

* ``None``: the configured policy (``CARTON_REQUIRE_SIGNATURE``, else the config key), else off;
* ``False``: off for this load;
* a path (str or PathLike) to a PEM file: a public key (``BEGIN PUBLIC KEY``) or CA
  certificates (``BEGIN CERTIFICATE``, for certificate signatures);
* a mapping ``{"key": PATH}``, ``{"chain": PATH or [PATHS]}`` or ``{"identity": ID, "issuer": URL}``
  (Sigstore; optional ``trust_config``, ``use_staging``), the same as a config-file table;
* a :class:`carton_format.signing.TrustRoot`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Mapping

from carton_format import CartonFormatError
from carton_format.signing import SignatureReport, TrustRoot, verify_archive_signature

from .config import ENV_REQUIRE_SIGNATURE, REQUIRE_SIGNATURE_KEY, config_path
from .config import _read_file as read_config_file
from .errors import CartonRuntimeError

log = logging.getLogger(__name__)

_MAPPING_KEYS = frozenset({"key", "chain", "identity", "issuer", "trust_config", "use_staging"})
_PEM_PEEK = 1 << 20  # a PEM file of CA certificates is a few KiB


def _arg_error(where: str, message: str) -> CartonRuntimeError:
    return CartonRuntimeError("E-RUNTIME-ARG", f"{where}: {message}", name="require_signature")


def _from_pem(path: Path, where: str) -> TrustRoot:
    try:
        with open(path, "rb") as f:
            head = f.read(_PEM_PEEK)
    except OSError as exc:
        raise _arg_error(where, f"cannot read {path}: {exc.strerror or exc}") from None
    if b"-----BEGIN CERTIFICATE-----" in head:
        return TrustRoot.of(chain=[path])
    if b"-----BEGIN PUBLIC KEY-----" in head:
        return TrustRoot.of(key=path)
    if b"PRIVATE KEY-----" in head:
        raise _arg_error(where, f"{path} is a private key; trust the public key (openssl ec -in KEY -pubout)")
    raise _arg_error(where, f"{path} is neither a PEM public key nor PEM certificates")


def trust_root(value: Any, where: str = "load(require_signature=...)") -> TrustRoot | None:
    """The trust root ``value`` names (None: off); E-RUNTIME-ARG for anything malformed."""
    try:
        if value is None or value is False:
            return None
        if isinstance(value, TrustRoot):
            return value
        if isinstance(value, (str, os.PathLike)) and not isinstance(value, bool):
            text = os.fspath(value)
            if not isinstance(text, str) or not text or "\0" in text:
                raise _arg_error(where, f"{value!r} is not a usable path")
            path = Path(text).expanduser()
            if not path.is_file():
                raise _arg_error(where, f"{path} is not a file (a PEM public key or CA certificates)")
            return _from_pem(path, where)
        if isinstance(value, Mapping):
            unknown = sorted(str(k) for k in value if k not in _MAPPING_KEYS)
            if unknown:
                raise _arg_error(where, f"unknown key(s) {', '.join(unknown)}; expected key, chain or identity + issuer")
            expand = {k: Path(os.fspath(v)).expanduser() if k in ("key", "trust_config") and isinstance(v, (str, os.PathLike)) else v
                      for k, v in value.items()}
            return TrustRoot.of(**expand)
    except CartonFormatError as exc:  # TrustRoot.of: E-ARG-INVALID
        raise _arg_error(where, exc.message) from None
    raise _arg_error(where, f"must be None, False, a PEM path, a mapping or a TrustRoot, not {type(value).__name__}")


def configured_trust_root() -> tuple[TrustRoot | None, str]:
    """The configured policy: ``CARTON_REQUIRE_SIGNATURE`` (a PEM path), else the config file's
    ``require_signature`` (a PEM path or a table), else off; and where it came from."""
    env = os.environ.get(ENV_REQUIRE_SIGNATURE)
    if env:
        return trust_root(env, ENV_REQUIRE_SIGNATURE), ENV_REQUIRE_SIGNATURE
    path, named = config_path()
    data = read_config_file(path, named)
    if data is not None and REQUIRE_SIGNATURE_KEY in data:
        where = f"config file {path}: {REQUIRE_SIGNATURE_KEY}"
        value = data[REQUIRE_SIGNATURE_KEY]
        if value is False or value == "":
            return None, where
        return trust_root(value, where), where
    return None, "default (off)"


def effective_trust_root(require_signature: Any) -> tuple[TrustRoot | None, str]:
    """The policy of one load: its argument, else the configured one."""
    if require_signature is None:
        return configured_trust_root()
    return trust_root(require_signature), "load(require_signature=...)"


def enforce(require_signature: Any, archive: Any, local_path: Path | None, location: str) -> SignatureReport | None:
    """Refuse (E-RUNTIME-SIGNATURE) an opened archive without a valid signature from the trusted
    root, when a policy applies; the report when it was checked, None when no policy applies."""
    trust, origin = effective_trust_root(require_signature)
    if trust is None:
        return None
    detached_base = local_path if local_path is not None and local_path.is_file() else None
    report = verify_archive_signature(archive, trust, archive_path=detached_base)  # reports, never raises
    if not report.verified:
        first = report.reasons[0]
        raise CartonRuntimeError(
            "E-RUNTIME-SIGNATURE",
            f"refused to load {location} (a valid signature is required by {origin}): {first.code} {first.message}",
        )
    log.info("signature of %s verified (%s, %s; policy from %s)", location, report.method, report.signature_location, origin)
    return report


__all__ = ["configured_trust_root", "effective_trust_root", "enforce", "trust_root"]
