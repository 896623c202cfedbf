"""``validate()``: every finding about an archive, never an exception for a bad archive."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from .errors import CartonError, CartonFormatError, Finding, FindingCollector, ValidationStopped
from .limits import DEFAULT_LIMITS, Limits, checked_limits
from .reader import CartonArchive, LinkedFetcher, check_source_argument
from .signature_doc import check_signature_member
from .sources import ArchiveSource, PathOrFile, open_source

log = logging.getLogger(__name__)


@dataclass
class ValidationReport:
    """Findings for one archive; ``ok`` is True when there is no error (warnings allowed).

    At most ``Limits.max_findings`` findings are listed; ``findings_omitted`` counts the ones
    left out (``errors_omitted`` of them errors) and a ``W-FINDINGS-OMITTED`` warning, listed
    last, says how many.  ``findings_omitted_exact`` is False when a check stopped looking at
    the limit (a document with millions of schema violations): the count is then a lower bound.
    """

    source: str
    findings: list[Finding] = field(default_factory=list)
    manifest_sha256: str | None = None
    findings_omitted: int = 0
    errors_omitted: int = 0
    findings_omitted_exact: bool = True

    @property
    def errors(self) -> list[Finding]:
        """The findings that are errors (``E-``)."""
        return [f for f in self.findings if f.is_error]

    @property
    def warnings(self) -> list[Finding]:
        """The findings that are warnings (``W-``)."""
        return [f for f in self.findings if not f.is_error]

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings allowed), listed or left out."""
        return not self.errors and not self.errors_omitted

    def to_dict(self) -> dict[str, object]:
        """The report as plain JSON values (``carton validate --json``)."""
        return {
            "file": self.source,
            "ok": self.ok,
            "manifest_sha256": self.manifest_sha256,
            "errors": [f.to_dict() for f in self.errors],
            "warnings": [f.to_dict() for f in self.warnings],
            "findings_omitted": self.findings_omitted,
            "findings_omitted_exact": self.findings_omitted_exact,
        }


def validate(
    source: PathOrFile | ArchiveSource,
    *,
    verify_hashes: bool = True,
    limits: Limits = DEFAULT_LIMITS,
    progress: bool | None = None,
    fetch_linked: LinkedFetcher | None = None,
) -> ValidationReport:
    """Check an archive (a ``.carton`` path, an unpacked directory, a seekable binary file or
    an ArchiveSource) against the v1 spec and report every finding.

    Independent problems are all reported (every unlisted member, every hash mismatch...), up
    to ``limits.max_findings``; problems that make the rest meaningless (not a zip, no MANIFEST)
    end the check.  Nothing under ``model/`` is ever deserialised.  Never raises (but for
    KeyboardInterrupt and the like): a bad argument is an ``E-ARG-INVALID`` finding, and an
    unexpected failure of the validator itself an ``E-INTERNAL`` finding (and a logged traceback).
    ``fetch_linked`` (as for ``read()``) fetches the metadata documents an archive leaves behind
    LINKS (a shrunk carton.toml); without it they are reported as ``E-LINKS-NOT-FETCHED``.
    """
    report = ValidationReport(_label(source))
    try:
        limits = checked_limits(limits)
    except CartonError as exc:
        report.findings = [exc.to_finding()]
        return report
    collector = FindingCollector(max_findings=limits.max_findings)
    internal = None
    try:
        _check(source, verify_hashes, limits, progress, collector, report, fetch_linked)
    except Exception as exc:  # validate() never raises: a bug of ours becomes a finding (and a log)
        log.exception("internal error while validating %s", report.source)
        internal = internal_error(exc).to_finding()
    _finish(report, collector, limits, internal)
    return report


def internal_error(exc: BaseException) -> CartonFormatError:
    """The ``E-INTERNAL`` error for an exception the validator did not expect."""
    text = str(exc)
    if len(text) > 200:
        text = text[:197] + "..."
    return CartonFormatError(
        "E-INTERNAL",
        f"internal error ({type(exc).__name__}: {text}); the archive's validity is unknown (a bug: please report it)",
    )


def _check(
    source: PathOrFile | ArchiveSource,
    verify_hashes: bool,
    limits: Limits,
    progress: bool | None,
    collector: FindingCollector,
    report: ValidationReport,
    fetch_linked: LinkedFetcher | None = None,
) -> None:
    try:
        check_source_argument(source)
        if fetch_linked is not None and not callable(fetch_linked):
            raise CartonFormatError("E-ARG-INVALID", f"fetch_linked must be callable, not {type(fetch_linked).__name__}")
        opened = open_source(source, limits)
    except CartonError as exc:
        collector.error(exc)
        return
    try:
        archive = CartonArchive(opened, limits=limits, collector=collector, fetch_linked=fetch_linked)
        report.manifest_sha256 = archive.manifest_sha256
        if verify_hashes:
            archive.verify(progress=progress)
        else:
            collector.warn("W-HASHES-NOT-VERIFIED", "hash verification was skipped (--no-verify-hashes)")
        archive.check_tensors()
        check_signature_member(opened, archive.manifest_sha256)  # its form; the crypto is verify_signature()'s
    except CartonError as exc:
        collector.error(exc)
    except ValidationStopped:
        pass
    finally:
        opened.close()


def _finish(report: ValidationReport, collector: FindingCollector, limits: Limits, internal: Finding | None) -> None:
    report.findings = list(collector.findings)
    if internal is not None:  # listed even when the list is full
        report.findings.append(internal)
    report.findings_omitted = collector.omitted
    report.errors_omitted = collector.omitted_errors
    report.findings_omitted_exact = collector.omitted_exact
    if collector.omitted or not collector.omitted_exact:
        count = f"{collector.omitted}" if collector.omitted_exact else f"at least {collector.omitted}"
        errors = f" ({collector.omitted_errors} of them errors)" if collector.omitted_exact else ""
        stopped = "" if collector.omitted_exact else "; checking stopped there, so there may be more"
        report.findings.append(
            Finding(
                "W-FINDINGS-OMITTED",
                f"{count} more finding(s){errors} were left out: at most {limits.max_findings} are listed "
                f"(Limits.max_findings){stopped}",
            )
        )


def _label(source: object) -> str:
    try:
        if isinstance(source, ArchiveSource):
            return str(source.location)
        if hasattr(source, "read"):
            return str(getattr(source, "name", "<stream>"))
        return str(source)
    except Exception:  # noqa: BLE001 - a label must never stop validate()
        return f"<{type(source).__name__}>"


__all__ = ["ValidationReport", "internal_error", "validate"]
