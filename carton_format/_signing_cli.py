"""``carton sign`` and ``carton verify``: the command line of :mod:`carton_format.signing`.

Exit codes: 0 signed / verified, 1 not verified, unsigned or the operation failed, 2 usage.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from .errors import CartonError, Finding
from .validate import internal_error

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _line(source: str, finding: Finding) -> str:
    where = f"{finding.member}: " if finding.member else ""
    return f"{source}: {finding.code} {where}{finding.message}"


def _usage(parser: argparse.ArgumentParser, message: str) -> int:
    parser.print_usage(sys.stderr)
    print(f"{parser.prog}: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _failed(source: str, exc: CartonError, as_json: bool, key: str) -> int:
    finding = exc.to_finding()
    if as_json:
        print(json.dumps({"file": source, key: False, "error": finding.to_dict()}, indent=2))
    else:
        print(_line(source, finding), file=sys.stderr)
    return EXIT_FAILED


def cmd_sign(args: argparse.Namespace) -> int:
    if (args.key is None) == (not args.sigstore):
        return _usage(args.parser, "give --key PRIVATE.pem or --sigstore")
    if bool(args.chain) != (args.cert is not None):
        return _usage(args.parser, "--cert and --chain go together")
    from .signing import sign

    try:
        result = sign(
            args.file, key=args.key, cert=args.cert, chain=args.chain or (), sigstore=args.sigstore,
            identity_token=args.identity_token, use_staging=args.staging, detached=args.detached,
            output=args.output, overwrite=args.overwrite,
        )
    except CartonError as exc:
        return _failed(args.file, exc, args.json, "signed")
    except Exception as exc:  # a bug of ours (or an online Sigstore failure): one answer, traceback logged
        log.exception("internal error while signing %s", args.file)
        return _failed(args.file, internal_error(exc), args.json, "signed")
    if args.json:
        print(json.dumps({"signed": True, **result.to_dict()}, indent=2))
    else:
        print(f"{result.file}: signed model {result.model_id} ({result.method}) -> {result.signature_location}")
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    roots = [x for x in (args.key, args.chain, args.identity) if x]
    if len(roots) != 1:
        return _usage(args.parser, "give one trust root: --key PUBLIC.pem, --chain CA.pem or --identity ID --issuer URL")
    if args.identity and not args.issuer:
        return _usage(args.parser, "--identity needs --issuer")
    from .signing import verify_signature

    try:
        report = verify_signature(
            args.file, key=args.key, chain=args.chain, identity=args.identity, issuer=args.issuer,
            trust_config=args.trust_config, use_staging=args.staging, signature=args.signature, deep=not args.signature_only,
        )
    except CartonError as exc:
        if exc.code == "E-ARG-INVALID":  # a missing key file, no archive: a usage error
            return _usage(args.parser, exc.message)
        return _failed(args.file, exc, args.json, "verified")
    except Exception as exc:  # a bug of ours: one answer in the asked format (the traceback is logged)
        log.exception("internal error while verifying %s", args.file)
        return _failed(args.file, internal_error(exc), args.json, "verified")
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    elif report.verified:
        for warning in report.warnings:  # e.g. linked files that were not fetched, so not hashed
            print(_line(report.file, warning))
        signer = report.signer.get("public_key_sha256") or report.signer.get("kind", "")
        scope = "signature and every member in the zip" if report.deep else "signature only (--signature-only)"
        print(f"{report.file}: VERIFIED model {report.model_id} ({report.method} {signer}; {scope}; {report.signature_location})")
    else:
        for reason in report.reasons:
            print(_line(report.file, reason))
        print(f"{report.file}: NOT VERIFIED")
    return EXIT_OK if report.verified else EXIT_FAILED


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``sign`` and ``verify`` to the ``carton`` command."""
    p = sub.add_parser(
        "sign",
        help="sign an archive (its model id) with a key, a certificate or Sigstore",
        description=(
            "Sign the archive's model id (the sha256 of MANIFEST) and format version. The signature is appended as the "
            "SIGNATURE member without rewriting member data (or written to FILE.sig with --detached); it stays valid "
            "across `shrink` and recompression. Needs the 'signing' extra: pip install 'carton-py[signing]'. "
            "Exit 0 signed, 1 failed, 2 usage."
        ),
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument("--key", metavar="PRIVATE.pem", help="elliptic-curve private key (P-256/384/521, PEM)")
    p.add_argument("--cert", metavar="CERT.pem", help="signing certificate for --key (its chain goes into the bundle)")
    p.add_argument("--chain", metavar="CA.pem", action="append", help="the certificates above --cert, up to the CA (repeatable; with --cert)")
    p.add_argument("--sigstore", action="store_true", help="keyless Sigstore signing (online: OIDC, Fulcio, Rekor)")
    p.add_argument("--identity-token", metavar="TOKEN", help="OIDC token for --sigstore (else ambient credentials or a browser flow)")
    p.add_argument("--staging", action="store_true", help="use Sigstore's staging instance (testing)")
    p.add_argument("--detached", action="store_true", help="write the signature to FILE.sig (or -o) instead of into the archive")
    p.add_argument("-o", "--output", metavar="PATH", help="write the signed copy (or with --detached the signature) here")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    p.add_argument("--json", action="store_true", help="machine-readable answer")
    p.set_defaults(func=cmd_sign, parser=p)

    p = sub.add_parser(
        "verify",
        help="verify an archive's signature, then every member",
        description=(
            "Check the archive's signature (the SIGNATURE member, FILE.sig beside it, or --signature) against one trust "
            "root, then validate every member against MANIFEST. Exit 0 verified, 1 not verified or unsigned, 2 usage."
        ),
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument("--key", metavar="PUBLIC.pem", help="trusted public key (PEM)")
    p.add_argument("--chain", metavar="CA.pem", help="trusted CA certificate(s) (PEM) for certificate signatures")
    p.add_argument("--identity", metavar="ID", help="Sigstore: the signer's identity (e-mail, workflow URL)")
    p.add_argument("--issuer", metavar="URL", help="Sigstore: the identity's OIDC issuer")
    p.add_argument("--trust-config", metavar="JSON", help="Sigstore: a custom trust configuration")
    p.add_argument("--staging", action="store_true", help="Sigstore: the staging instance")
    p.add_argument("--signature", metavar="FILE.sig", help="a detached signature (default: the SIGNATURE member, else FILE.sig)")
    p.add_argument("--signature-only", action="store_true", help="check the signature, not every member (fast; not a full check)")
    p.add_argument("--json", action="store_true", help="machine-readable report")
    p.set_defaults(func=cmd_verify, parser=p)


__all__ = ["cmd_sign", "cmd_verify", "register"]
