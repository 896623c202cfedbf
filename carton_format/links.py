"""LINKS: where to fetch files that the zip leaves out, keyed by their sha256.

LINKS is outside MANIFEST, so adding or changing links never changes the manifest hash.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .errors import CartonFormatError
from .manifest import LINKS_PATH, is_sha256_hex

LINKS_VERSION = 1


@dataclass(frozen=True)
class Links:
    """``urls`` maps sha256 -> URLs to try in order."""

    urls: dict[str, list[str]]
    version: int | None = LINKS_VERSION  # None when the file has no version key

    def urls_for(self, sha256: str) -> list[str]:
        """URLs to try for the file with this sha256 (empty when it has none)."""
        return self.urls.get(sha256, [])


def check_url(url: str, key: str) -> None:
    """Only absolute http(s) URLs with a host, no whitespace or control characters."""
    problem = None
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        problem = "contains whitespace or control characters"
    else:
        try:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https"):
                problem = "is not an http or https URL"
            elif not parts.hostname:
                problem = "has no host"
            else:
                parts.port  # noqa: B018 - raises ValueError for a malformed port
        except ValueError as exc:
            problem = f"is malformed ({exc})"
    if problem:
        raise CartonFormatError("E-LINKS-URL", f"{url[:200]!r} {problem}", member=LINKS_PATH, key=key)


def links_from_document(doc: dict[str, Any]) -> Links:
    """Semantic checks on a schema-checked LINKS document."""
    urls: dict[str, list[str]] = {}
    for sha, url_list in doc.get("urls", {}).items():
        if not is_sha256_hex(sha):
            raise CartonFormatError("E-LINKS-INVALID", f"{sha[:80]!r} is not a lowercase hex sha256", member=LINKS_PATH, key="urls")
        for i, url in enumerate(url_list):
            check_url(url, f"urls.{sha}[{i}]")
        urls[sha] = list(url_list)
    return Links(urls, doc.get("version"))


def links_to_document(links: Links) -> dict[str, Any]:
    """The LINKS document for ``links``, after checking its hashes and URLs (``E-ARG-INVALID``)."""
    for sha, url_list in links.urls.items():
        if not is_sha256_hex(sha):
            raise CartonFormatError("E-ARG-INVALID", f"linked_files key {sha!r} is not a lowercase hex sha256")
        if not url_list:
            raise CartonFormatError("E-ARG-INVALID", f"linked_files[{sha}] has no URL")
        for i, url in enumerate(url_list):
            try:
                check_url(url, f"urls.{sha}[{i}]")
            except CartonFormatError as exc:
                raise CartonFormatError("E-ARG-INVALID", f"linked_files: {exc.message}") from None
    return {"version": LINKS_VERSION if links.version is None else links.version, "urls": {sha: list(links.urls[sha]) for sha in sorted(links.urls)}}

__all__ = [
    "LINKS_VERSION",
    "Links",
    "check_url",
    "links_from_document",
    "links_to_document",
]
