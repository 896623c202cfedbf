"""A structured form of an archive for the ``archive`` target, and its mutator.

The fuzzer mutates *members* (names, contents, compression, kind), not zip bytes: every input
is rebuilt into a well-formed zip with the project's own ``ZipWriter`` and a MANIFEST
recomputed from the contents, so CRC-32s and MANIFEST hashes are right and the mutations get
past the integrity checks into the parsers behind them (TOML, schema, tensor index, string
tensors, LINKS, references).

Encoding (all integers little-endian)::

    b"CFZ1"  u8 flags  { u8 kind  u8 method  u16 name_len  u32 data_len  name  data }*

``flags`` bit 0: keep the MANIFEST member as given instead of recomputing it.  ``kind``: 0 a
file, 1 a symlink (data = link text), 2 listed in MANIFEST but left out of the zip (a file
behind LINKS; data = its content, served by the fetcher).  ``method`` 0/1/2: stored, deflate,
zstd.  Decoding is lenient: a truncated tail is dropped, unknown values wrap around.
"""

from __future__ import annotations

import hashlib
import io
import posixpath
import random
import re
import struct
from dataclasses import dataclass, field
from typing import Callable

MAGIC = b"CFZ1"
KEEP_MANIFEST = 1
FILE, SYMLINK, LINKED = 0, 1, 2
METHODS = (0, 8, 93)
_HEAD = struct.Struct("<BBHI")

MANIFEST = "MANIFEST"
LINKS = "LINKS"
#: Names worth inserting: every member the reader interprets, and a few near misses.
INTERESTING_NAMES = (
    "carton.toml",
    "tensor_data/index.toml",
    "tensor_data/tensor_0.bin",
    "tensor_data/tensor_0.toml",
    "tensor_data/tensor_1.bin",
    "misc/_example_misc_file_0",
    "misc/notes.md",
    "model/model.pt",
    "model/sub/link",
    LINKS,
    MANIFEST,
    "Carton.toml",
    "model/",
    "misc/",
)


@dataclass
class Member:
    """One member of a structured archive."""

    name: str
    data: bytes
    kind: int = FILE
    method: int = 0


@dataclass
class ArchiveSpec:
    """A structured archive: members in zip order, and flags."""

    members: list[Member] = field(default_factory=list)
    flags: int = 0


def encode(spec: ArchiveSpec) -> bytes:
    """The bytes of ``spec`` (see the module docstring)."""
    out = bytearray(MAGIC)
    out.append(spec.flags & 0xFF)
    for m in spec.members:
        name = m.name.encode("utf-8", "surrogatepass")[:0xFFFF]
        out += _HEAD.pack(m.kind & 0xFF, m.method & 0xFF, len(name), len(m.data))
        out += name
        out += m.data
    return bytes(out)


def decode(data: bytes) -> ArchiveSpec | None:
    """The structured archive in ``data``; None when it does not start with the magic."""
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 1:
        return None
    spec = ArchiveSpec(flags=data[len(MAGIC)])
    pos = len(MAGIC) + 1
    while pos + _HEAD.size <= len(data):
        kind, method, name_len, data_len = _HEAD.unpack_from(data, pos)
        pos += _HEAD.size
        name = data[pos : pos + name_len]
        pos += name_len
        body = data[pos : pos + data_len]
        pos += data_len
        spec.members.append(Member(name.decode("utf-8", "replace"), body, kind % 3, method % 3))
    return spec


@dataclass
class Built:
    """A rebuilt archive: the zip bytes, and the content of each path left out of the zip."""

    zip_bytes: bytes
    linked: dict[str, bytes]
    manifest: dict[str, str]


def build(spec: ArchiveSpec, zip_writer: type, format_manifest: Callable[[dict[str, str]], bytes], error: type) -> Built:
    """Rebuild ``spec`` as a zip with fixed-up CRCs and MANIFEST.

    ``zip_writer`` is ``ZipWriter``, ``format_manifest`` the MANIFEST formatter and ``error``
    the exception type the writer raises for a member it refuses (such members are dropped:
    the writer's own argument checks are not what is being fuzzed here).
    """
    buf = io.BytesIO()
    writer = zip_writer(buf)
    contents: dict[str, bytes] = {}
    linked: dict[str, bytes] = {}
    links: list[str] = []
    raw_manifest: bytes | None = None
    for m in spec.members:
        if m.name == MANIFEST:
            if spec.flags & KEEP_MANIFEST and raw_manifest is None:
                raw_manifest = m.data
            continue
        try:
            if m.kind == SYMLINK and m.name != LINKS:
                target = m.data.decode("utf-8", "replace")
                writer.add_symlink(m.name, target)
                links.append(m.name)
                contents[m.name] = m.data  # replaced by the target's content below
            elif m.kind == LINKED and m.name != LINKS:
                if m.name in contents or m.name in linked or "\x00" in m.name or not m.name:
                    continue
                linked[m.name] = m.data
            else:
                writer.add_bytes(m.name, m.data, method=METHODS[m.method])
                contents[m.name] = m.data
        except error:
            continue
    manifest: dict[str, str] = {}
    for name, data in {**contents, **linked}.items():
        if name == LINKS:
            continue
        if name in links:
            data = _resolve(name, contents, links, linked)
        manifest[name] = hashlib.sha256(data).hexdigest()
    try:
        manifest_bytes = raw_manifest if raw_manifest is not None else format_manifest(manifest)
        writer.add_bytes(MANIFEST, manifest_bytes, method=0)
    except error:
        pass  # a member already took the name in a case-insensitive way: an archive without MANIFEST
    writer.close()
    return Built(buf.getvalue(), linked, manifest)


def _resolve(name: str, contents: dict[str, bytes], links: list[str], linked: dict[str, bytes]) -> bytes:
    """The content a symlink member finally points at (its own text when it dangles)."""
    seen = set()
    current = name
    while current in links and current not in seen:
        seen.add(current)
        target = contents[current].decode("utf-8", "replace")
        current = posixpath.normpath(posixpath.join(posixpath.dirname(current), target))
    if current in links:
        return contents[name]
    if current in contents:
        return contents[current]
    return linked.get(current, contents[name])


def mutate(data: bytes, max_size: int, seed: int, byte_mutator: Callable[[bytes, int], bytes]) -> bytes:
    """One structure-aware mutation of an encoded archive (``byte_mutator`` is libFuzzer's,
    ``atheris.Mutate``); anything that does not decode is mutated as bytes."""
    spec = decode(data)
    if spec is None:
        return byte_mutator(data, max_size)
    rng = random.Random(seed)
    members = spec.members
    if not members:
        members.append(Member(rng.choice(INTERESTING_NAMES), b""))
    i = rng.randrange(len(members))
    m = members[i]
    op = rng.random()
    if op < 0.12 and _is_toml(m.name):  # a TOML value swapped for an interesting one
        m.data = _swap_toml_value(m.data, rng)
    elif op < 0.55:  # the contents: libFuzzer's mutations (with its comparison-driven dictionary)
        room = max(max_size - (len(data) - len(m.data)), 0)
        m.data = byte_mutator(m.data, min(room, max(2 * len(m.data), 256)))
    elif op < 0.63:
        m.name = byte_mutator(m.name.encode("utf-8", "replace"), 256).decode("utf-8", "replace")
    elif op < 0.68:
        m.name = rng.choice(INTERESTING_NAMES)
    elif op < 0.76:
        m.method = rng.randrange(3)
    elif op < 0.82:
        m.kind = rng.randrange(3)
    elif op < 0.87:
        del members[i]
    elif op < 0.92:
        members.insert(rng.randrange(len(members) + 1), Member(rng.choice(INTERESTING_NAMES), m.data, m.kind, m.method))
    elif op < 0.96:
        j = rng.randrange(len(members))
        members[i], members[j] = members[j], members[i]
    else:
        spec.flags ^= KEEP_MANIFEST
    out = encode(spec)
    if len(out) > max_size:
        return byte_mutator(data, max_size)
    return out


#: Values that parsers and the code behind them tend to get wrong (TOML syntax).
TOML_VALUES = (
    "0", "-1", "1", "2", "9223372036854775807", "-9223372036854775808", "4294967296", "1e308", "-0.0", "nan", "inf", "-inf",
    '""', '"\\u0000"', '"x"', '"*"', '"float32"', '"float64"', '"uint64"', '"string"', '"nested"', '"@tensor_data/_tensor_0"',
    '"@misc/_example_misc_file_0"', '"@misc/missing"', '"../escape"', '"https://example.com/x"', '"' + "a" * 300 + '"',
    "[]", "[0]", "[1, 2]", "[[]]", '["a"]', '["a", 1]', "[18446744073709551615, 18446744073709551615]", "[4294967296, 4294967296]",
    "{}", "{ a = 1 }", "true", "false", "1979-05-27", "1979-05-27T07:32:00Z", "07:32:00",
)
_TOML_VALUE = re.compile(rb"= (.+)$", re.MULTILINE)


def _is_toml(name: str) -> bool:
    return name.endswith(".toml") or name == LINKS


def _swap_toml_value(data: bytes, rng: random.Random) -> bytes:
    sites = list(_TOML_VALUE.finditer(data))
    if not sites:
        return data
    site = rng.choice(sites)
    return data[: site.start(1)] + rng.choice(TOML_VALUES).encode() + data[site.end(1) :]


def crossover(data1: bytes, data2: bytes, max_out_size: int, seed: int) -> bytes:
    """Members of one archive with a member taken from the other."""
    a, b = decode(data1), decode(data2)
    if a is None or b is None or not b.members:
        return data1[:max_out_size]
    rng = random.Random(seed)
    donor = rng.choice(b.members)
    a.members.insert(rng.randrange(len(a.members) + 1), Member(donor.name, donor.data, donor.kind, donor.method))
    out = encode(a)
    return out if len(out) <= max_out_size else data1[:max_out_size]


__all__ = ["ArchiveSpec", "Built", "Member", "build", "crossover", "decode", "encode", "mutate"]
