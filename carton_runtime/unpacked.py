"""Remote archives stored unpacked: one copy of an http(s) model on disk.

A downloaded archive (a temporary zip) is unpacked into a cache entry laid out as an unpacked
carton (``carton.toml``, ``MANIFEST``, ``LINKS``, ``model/``, ``misc/``, ``tensor_data/``), and the
zip is deleted.  Later loads read that directory (``carton_format.read`` takes directories), and
runners use model files in place, hashed while they read them (``DirectorySource.stored_span``
is ``whole_file``), so a damaged entry is caught on every load, not only when it was written.

Nothing is weakened against reading the zip: the strict zip reader opens it (structure, member
names, MANIFEST, carton.toml, LINKS), ``check_container`` checks that members tile the file, and
every member is streamed through the zip's own size and CRC checks and its MANIFEST hash as it is
written; the directory is then read back and must give the same MANIFEST bytes (the model's
identity) and the same member set.  Symbolic-link members become relative symbolic links to
the file they resolve to (``DirectorySource`` follows them), so their bytes are stored once;
members that LINKS provides stay absent, as in the zip.

The entry's key is a sha256 over the MANIFEST hash, the LINKS bytes and the member list: what
decides what a reader of the directory sees.  Two URLs serving the same archive share one entry.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import carton_format as cf
from carton_format.integrity import copy_verified, copy_with_hashing, mismatch_error, sha256_hex
from carton_format.manifest import LINKS_PATH
from carton_format.sources import read_member

log = logging.getLogger(__name__)

KEY_VERSION = b"carton-unpacked-v1"


class CannotUnpack(Exception):
    """This file system cannot hold the archive's members faithfully (a name collision on a
    case-insensitive file system, no symbolic links, ...): keep the archive whole instead."""


def unpacked_key(archive: cf.CartonArchive, limits: cf.Limits = cf.DEFAULT_LIMITS) -> str:
    """The cache key of ``archive`` stored unpacked (see the module docstring)."""
    source = archive.source
    links = b""
    if source.member(LINKS_PATH) is not None:
        links = read_member(source, LINKS_PATH, limits.max_toml_bytes, limit_code="E-LIMIT-TOML-SIZE")
    names = sorted(m.name for m in source.members() if not m.is_dir)
    parts = [KEY_VERSION, archive.manifest_sha256.encode(), sha256_hex(links).encode() if links else b"-", *(n.encode("utf-8") for n in names)]
    return sha256_hex(b"\n".join(parts))


def _file_names(archive: cf.CartonArchive) -> set[str]:
    return {m.name for m in archive.source.members() if not m.is_dir}


def unpack(archive: cf.CartonArchive, dest: Path, limits: cf.Limits = cf.DEFAULT_LIMITS) -> None:
    """Write every member of ``archive`` (a zip opened with ``verify_hashes=False``) under
    ``dest`` (a new directory), verified as it is written; raises ``CartonFormatError`` for a
    bad archive and :class:`CannotUnpack` when the file system cannot hold it."""
    source = archive.source
    manifest = archive.manifest
    source.check_container()
    written: dict[str, str] = {}  # member -> sha256 of what was written
    links: list[str] = []
    try:
        dest.mkdir()
        for info in source.members():
            if info.is_dir:
                continue
            if info.is_symlink:
                links.append(info.name)
                continue
            target = dest / info.name
            target.parent.mkdir(parents=True, exist_ok=True)
            with source.open(info.name) as src, open(target, "xb") as out:  # "x": a name collision is never an overwrite
                if info.name in manifest:
                    copy_verified(src, out, manifest[info.name], info.name)
                    written[info.name] = manifest[info.name]
                else:  # MANIFEST and LINKS: parsed and checked when the archive was opened
                    written[info.name] = copy_with_hashing(src, out)[0]
        for name in links:
            resolved = source.resolve_symlink(name)
            actual = written.get(resolved)
            if actual != manifest.get(name):
                raise mismatch_error(name, manifest.get(name, "?"), str(actual))
            link = dest / name
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(os.path.relpath(dest / resolved, link.parent), link)
    except OSError as exc:
        raise CannotUnpack(f"{type(exc).__name__}: {exc}") from None
    _check_read_back(archive, dest, limits)


def _check_read_back(archive: cf.CartonArchive, dest: Path, limits: cf.Limits) -> None:
    """The directory must read back as the same carton: same MANIFEST bytes, same members."""
    try:
        with cf.read(dest, verify_hashes=False, limits=limits) as back:
            same = back.manifest_sha256 == archive.manifest_sha256 and _file_names(back) == _file_names(archive)
    except cf.CartonFormatError as exc:
        raise CannotUnpack(f"the unpacked copy does not read back: {exc}") from None
    if not same:
        raise CannotUnpack("the unpacked copy does not read back with the same MANIFEST and members")


__all__ = ["KEY_VERSION", "CannotUnpack", "unpack", "unpacked_key"]
