"""``validate()``: every finding about an archive, never an exception for a bad archive."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from .errors import CartonFormatError, Finding, FindingCollector, ValidationStopped
from .limits import DEFAULT_LIMITS, Limits
from .reader import CartonArchive
from .sources import ArchiveSource, PathOrFile, open_source

log = logging.getLogger(__name__)


@dataclass
class ValidationReport:
    """Findings for one archive; ``ok`` is True when there is no error (warnings allowed)."""

    source: str
    findings: list[Finding] = field(default_factory=list)
    manifest_sha256: str | None = None

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
        """True when there is no error (warnings allowed)."""
        return not self.errors

    def to_dict(self) -> dict[str, object]:
        """The report as plain JSON values (``carton validate --json``)."""
        return {
            "file": self.source,
            "ok": self.ok,
            "manifest_sha256": self.manifest_sha256,
            "errors": [f.to_dict() for f in self.errors],
            "warnings": [f.to_dict() for f in self.warnings],
        }


def validate(
    source: PathOrFile | ArchiveSource,
    *,
    verify_hashes: bool = True,
    limits: Limits = DEFAULT_LIMITS,
    progress: bool | None = None,
) -> ValidationReport:
    """Check an archive (a ``.carton`` path, an unpacked directory, a seekable binary file or
    an ArchiveSource) against the v1 spec and report every finding.

    Independent problems are all reported (every unlisted member, every hash mismatch...);
    problems that make the rest meaningless (not a zip, no MANIFEST) end the check.  Nothing
    under ``model/`` is ever deserialised.
    """
    collector = FindingCollector()
    report = ValidationReport(_label(source))
    try:
        opened = open_source(source, limits)
    except CartonFormatError as exc:
        collector.error(exc)
        report.findings = collector.findings
        return report
    try:
        archive = CartonArchive(opened, limits=limits, collector=collector)
        report.manifest_sha256 = archive.manifest_sha256
        if verify_hashes:
            archive.verify(progress=progress)
        else:
            collector.warn("W-HASHES-NOT-VERIFIED", "hash verification was skipped (--no-verify-hashes)")
        archive.check_tensors()
    except CartonFormatError as exc:
        collector.error(exc)
    except ValidationStopped:
        pass
    finally:
        opened.close()
    report.findings = _dedupe(collector.findings)
    return report


def _label(source: object) -> str:
    if isinstance(source, ArchiveSource):
        return source.location
    if hasattr(source, "read"):
        return str(getattr(source, "name", "<stream>"))
    return str(source)


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen: set[Finding] = set()
    result = []
    for f in findings:
        if f not in seen:
            seen.add(f)
            result.append(f)
    return result


__all__ = ["ValidationReport", "validate"]
