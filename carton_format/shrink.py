"""``shrink()``: a copy of an archive whose large files live behind LINKS instead.

MANIFEST (so the model's identity, the manifest hash) is copied byte for byte; every file whose
sha256 is a key of the merged LINKS (the given URLs appended to the archive's own) is left out
of the zip, whatever its path, as the original's shrink does (FMT-LINKS-7): model, misc and
tensor files, even carton.toml.  Every member copied is verified against MANIFEST on the way,
the new archive is read back before it is published (its left-out files served from the source,
so no network is needed), and it is published atomically like ``write()``.
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
from .manifest import LINKS_PATH, MANIFEST_PATH, SIGNATURE_PATH, UNLISTED_PATHS
from .reader import CARTON_TOML, read
from .signature_doc import MAX_SIGNATURE_BYTES
from .sources import ArchiveSource, PathOrFile, read_member
from .tensor_data import INDEX_PATH
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


def _used_links(merged: dict[str, list[str]], hashes: set[str]) -> dict[str, list[str]]:
    """The merged LINKS without hashes that name no MANIFEST file (LINKS lists only files left out, FMT-LINKS-6)."""
    for sha in sorted(set(merged) - hashes):
        log.warning("shrink: no file in MANIFEST has sha256 %s; not written to LINKS", sha)
    return {sha: url_list for sha, url_list in merged.items() if sha in hashes}


METADATA_DOCUMENTS = (CARTON_TOML, INDEX_PATH)


def shrink(
    source: PathOrFile | ArchiveSource,
    target: str | os.PathLike[str],
    urls: dict[str, list[str]],
    *,
    overwrite: bool = False,
    limits: Limits = DEFAULT_LIMITS,
) -> WriteResult:
    """Write to ``target`` a copy of ``source`` whose files with a sha256 in ``urls`` (sha256 ->
    URLs, merged with the archive's LINKS) are fetched from those URLs instead of stored: any
    file, not only model files (FMT-LINKS-7); leaving out carton.toml or tensor_data/index.toml
    makes every metadata read fetch it, and is logged as a warning.  Members keep their
    compression method (files of an unpacked directory are stored)."""
    target = checked_output_path(target)
    with read(source, verify_hashes=False, limits=limits) as archive:
        manifest = archive.manifest
        merged = _used_links(_merged_links(archive.links, urls), set(manifest.values()))
        links_bytes = dump_toml(links_to_document(Links(merged))) if merged else None
        # Every path whose hash LINKS lists, symlinks included: a link has its target's hash, so a
        # link to a file left out is left out too (FMT-ZIP-21: a link ends at a member of the zip).
        drop = {p for p, sha in manifest.items() if sha in merged}
        for p in METADATA_DOCUMENTS:
            if p in drop:
                log.warning("shrink: %s is left out of the zip (its hash is in LINKS): every metadata read will fetch it", p)
        src = archive.source
        written = []
        with atomic_output(target, overwrite=overwrite) as (fh, tmp):
            writer = ZipWriter(fh)
            for member in src.members():
                if member.is_dir or member.name in UNLISTED_PATHS or member.name in drop:
                    continue
                if member.is_symlink:
                    written.append(writer.add_symlink(member.name, src.link_text(member.name)))
                    continue
                method = COMPRESSION_METHODS.get(member.method, METHOD_STORED)
                with archive.open(member.name) as stream:  # hash-verified while copied
                    written.append(writer.add_stream(member.name, stream, method=method, size_hint=member.size))
            writer.add_bytes(MANIFEST_PATH, archive.manifest_info.raw, method=METHOD_STORED)
            if links_bytes is not None:
                writer.add_bytes(LINKS_PATH, links_bytes, method=METHOD_STORED)
            if src.member(SIGNATURE_PATH) is not None:  # it signs MANIFEST, which is kept: still valid
                writer.add_bytes(SIGNATURE_PATH, read_member(src, SIGNATURE_PATH, MAX_SIGNATURE_BYTES), method=METHOD_STORED)
            writer.close()
            fh.flush()
            # The copy is checked before it is published; files left out come from the source
            # (verified there against the same MANIFEST), so even a left-out carton.toml needs no network.
            with read(tmp, verify_hashes=True, limits=limits, fetch_linked=lambda path, _sha, _urls: archive.open(path)):
                pass
        log.info("shrank %s into %s (%d files behind LINKS)", archive.source.location, target, len(drop))
        return WriteResult(target, archive.manifest_sha256, manifest, written)


__all__ = ["shrink"]
