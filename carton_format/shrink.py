"""``shrink()``: a copy of an archive whose large model files live behind LINKS instead.

MANIFEST (so the model's identity, the manifest hash) is copied byte for byte; the files whose
sha256 is given are left out of the zip and recorded in LINKS, merged with the archive's own
LINKS.  Every member copied is verified against MANIFEST on the way, the new archive is checked
before it is published, and it is published atomically like ``write()``.
"""

from __future__ import annotations

import logging
import os

from ._atomic import atomic_output
from ._toml import dump_toml
from ._zip.records import METHOD_STORED
from ._zip.writer import ZipWriter
from .errors import CartonFormatError
from .limits import DEFAULT_LIMITS, Limits
from .links import Links, links_to_document
from .manifest import LINKS_PATH, MANIFEST_PATH
from .reader import read
from .sources import ArchiveSource, PathOrFile
from .writer import COMPRESSION_METHODS, WriteResult, checked_output_path

log = logging.getLogger(__name__)


def _merged_links(existing: Links | None, urls: dict[str, list[str]]) -> dict[str, list[str]]:
    if not isinstance(urls, dict):
        raise CartonFormatError("E-ARG-INVALID", "urls must be a dict of sha256 -> list of URLs")
    merged = {k: list(v) for k, v in (existing.urls if existing else {}).items()}
    for sha, url_list in urls.items():
        if not isinstance(sha, str):
            raise CartonFormatError("E-ARG-INVALID", f"urls key {sha!r} is not a str")
        if isinstance(url_list, str) or not isinstance(url_list, (list, tuple)):
            raise CartonFormatError("E-ARG-INVALID", f"urls[{sha!r}] must be a list of URLs")
        merged.setdefault(sha, [])
        merged[sha].extend(u for u in url_list if u not in merged[sha])
    return merged


def shrink(
    source: PathOrFile | ArchiveSource,
    target: str | os.PathLike[str],
    urls: dict[str, list[str]],
    *,
    overwrite: bool = False,
    limits: Limits = DEFAULT_LIMITS,
) -> WriteResult:
    """Write to ``target`` a copy of ``source`` whose model files with a sha256 in ``urls``
    (sha256 -> URLs) are fetched from those URLs instead of stored.  Members keep their
    compression method (files of an unpacked directory are stored)."""
    target = checked_output_path(target)
    with read(source, verify_hashes=False, limits=limits) as archive:
        merged = _merged_links(archive.links, urls)
        links_bytes = dump_toml(links_to_document(Links(merged)))
        manifest = archive.manifest
        drop = {p for p, sha in manifest.items() if p.startswith("model/") and sha in merged}
        for p, sha in manifest.items():
            if sha in urls and p not in drop:
                log.warning("shrink: %s is not under model/, so it stays in the zip", p)
        src = archive.source
        written = []
        with atomic_output(target, overwrite=overwrite) as (fh, tmp):
            writer = ZipWriter(fh)
            for member in src.members():
                if member.is_dir or member.name in (MANIFEST_PATH, LINKS_PATH) or member.name in drop:
                    continue
                if member.is_symlink:
                    written.append(writer.add_symlink(member.name, src.link_text(member.name)))
                    continue
                method = COMPRESSION_METHODS.get(member.method, METHOD_STORED)
                with archive.open(member.name) as stream:  # hash-verified while copied
                    written.append(writer.add_stream(member.name, stream, method=method, size_hint=member.size))
            writer.add_bytes(MANIFEST_PATH, archive.manifest_info.raw, method=METHOD_STORED)
            writer.add_bytes(LINKS_PATH, links_bytes, method=METHOD_STORED)
            writer.close()
            fh.flush()
            with read(tmp, verify_hashes=True, limits=limits):  # the copy is checked before it is published
                pass
        log.info("shrank %s into %s (%d files behind LINKS)", archive.source.location, target, len(drop))
        return WriteResult(target, archive.manifest_sha256, manifest, written)


__all__ = ["shrink"]
