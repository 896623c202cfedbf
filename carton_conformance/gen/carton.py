"""A model of one Carton archive for the generator: documents, tensors, files -> members -> zip.

The generator never uses ``carton_format``'s writer or reader: it renders every member itself,
so the cases test our implementation instead of agreeing with it by construction.  ``expected()``
computes the normalised description (carton_conformance/README.md, "Normalised form") from the same
data the members were rendered from.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import tomlw
from . import zipcraft as zc

MODEL_BYTES = b"not a real TorchScript file: validators never deserialise model/ (FMT-READ-7)\n"
FILE_ATTR = zc.unix_attr(zc.S_IFREG | 0o644)
LINK_ATTR = zc.unix_attr(zc.S_IFLNK | 0o777)
VERSION_MADE_BY = (zc.UNIX << 8) | 63

NUMPY = {
    "float32": "<f4", "float64": "<f8", "int8": "i1", "int16": "<i2", "int32": "<i4", "int64": "<i8",
    "uint8": "u1", "uint16": "<u2", "uint32": "<u4", "uint64": "<u8",
}
TOP_ORDER = [
    "spec_version", "model_name", "short_description", "model_description", "license", "repository", "homepage",
    "required_platforms", "input", "output", "self_test", "example", "runner",
]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest_bytes(entries: dict[str, str]) -> bytes:
    ordered = sorted(entries.items(), key=lambda kv: kv[0].encode("utf-8"))
    return "".join(f"{p}={h}\n" for p, h in ordered).encode("utf-8")


def tensor_json(value: Any) -> dict[str, Any]:
    """Normalised tensor: dtype, shape and flat values (C order); floats that JSON cannot hold as strings."""
    if isinstance(value, list) and value and isinstance(value[0], np.ndarray):
        return {"dtype": "nested", "inner": [tensor_json(v) for v in value]}
    array = np.asarray(value)
    flat = array.reshape(-1)
    if array.dtype.kind in "UO":
        return {"dtype": "string", "shape": list(array.shape), "values": [str(x) for x in flat]}
    dtype = array.dtype.name
    if array.dtype.kind == "f":
        values = [float(x) if np.isfinite(x) else str(float(x)) for x in flat]
    else:
        values = [int(x) for x in flat]
    return {"dtype": dtype, "shape": list(array.shape), "values": values}


def opts_json(opts: dict[str, Any] | None) -> dict[str, Any] | None:
    """Runner options with their TOML type: integer and float stay apart even where JSON cannot tell."""
    if opts is None:
        return None
    out = {}
    for k, v in opts.items():
        kind = "boolean" if isinstance(v, bool) else "integer" if isinstance(v, int) else "float" if isinstance(v, float) else "string"
        out[k] = {"type": kind, "value": v if kind != "float" or np.isfinite(v) else str(v)}
    return out


@dataclass
class CaseArchive:
    """Everything that goes into one archive.  Edit fields, then ``members()`` / ``zip()``."""

    doc: dict[str, Any]
    index: list[dict[str, Any]] | None = field(default_factory=list)  # None: no index.toml
    files: dict[str, bytes] = field(default_factory=dict)  # tensor files, misc/, model/, others
    values: dict[str, Any] = field(default_factory=dict)  # tensor name -> array / list of arrays (nested)
    links: bytes | None = None
    signature: bytes | None = None  # the SIGNATURE member (spec section 18), written last
    toml_text: str | None = None  # carton.toml text override (after rendering doc)
    index_text: str | None = None
    manifest: bytes | None = None  # MANIFEST override
    omit: set[str] = field(default_factory=set)  # members listed in MANIFEST but left out of the zip
    unlisted: set[str] = field(default_factory=set)  # members in the zip but not in MANIFEST
    display_req: str | None = None  # normalised runner.required_framework_version (default: as written)
    symlinks: dict[str, str] = field(default_factory=dict)  # model/ symlink member -> target

    def copy(self) -> "CaseArchive":
        return copy.deepcopy(self)

    # -- content --------------------------------------------------------------------------

    def add_tensor(self, name: str, value: Any, *, file: str | None = None) -> str:
        """Add a numeric or string tensor (index entry, file, expected value); returns its reference."""
        n = len(self.index or [])
        array = np.asarray(value)
        if array.dtype.kind in "UO":
            file = file or f"tensor_{n}.toml"
            data = tomlw.dumps({"data": [str(x) for x in array.reshape(-1)]}).encode()
            dtype = "string"
        else:
            file = file or f"tensor_{n}.bin"
            dtype = array.dtype.name
            data = np.ascontiguousarray(array).astype(NUMPY[dtype]).tobytes()
        assert self.index is not None
        self.index.append({"name": name, "dtype": dtype, "shape": list(array.shape), "file": file, "inner": []})
        self.files[f"tensor_data/{file}"] = data
        self.values[name] = array
        return f"@tensor_data/{name}"

    def add_nested(self, name: str, inner: list[Any]) -> str:
        assert self.index is not None
        names = []
        base = len(self.index)
        entry = {"name": name, "dtype": "nested", "inner": names}
        self.index.append(entry)
        for k, value in enumerate(inner):
            inner_name = f"{name}_inner_{k}"
            self.add_tensor(inner_name, value, file=f"tensor_{base}_{k}.{'toml' if np.asarray(value).dtype.kind in 'UO' else 'bin'}")
            names.append(inner_name)
        self.values[name] = [np.asarray(v) for v in inner]
        return f"@tensor_data/{name}"

    # -- rendering --------------------------------------------------------------------------

    def carton_toml(self) -> bytes:
        if self.toml_text is not None:
            return self.toml_text.encode("utf-8")
        ordered = {k: self.doc[k] for k in TOP_ORDER if k in self.doc}
        ordered.update({k: v for k, v in self.doc.items() if k not in ordered})
        return tomlw.dumps(ordered).encode("utf-8")

    def index_toml(self) -> bytes | None:
        if self.index_text is not None:
            return self.index_text.encode("utf-8")
        if self.index is None:
            return None
        if not self.index:
            return b"tensor = []\n"
        return tomlw.dumps({"tensor": self.index}).encode("utf-8")

    def content(self) -> dict[str, bytes]:
        """Every file (path -> bytes) before MANIFEST, LINKS and symlinks."""
        out = {"carton.toml": self.carton_toml()}
        index = self.index_toml()
        if index is not None:
            out["tensor_data/index.toml"] = index
        out.update(self.files)
        return out

    def resolved(self, path: str, content: dict[str, bytes]) -> bytes:
        """Content of a path, following symlinks (relative to the link's directory)."""
        seen = 0
        while path in self.symlinks:
            target = self.symlinks[path]
            parts = path.split("/")[:-1]
            for comp in target.split("/"):
                if comp in ("", "."):
                    continue
                if comp == "..":
                    parts.pop()
                else:
                    parts.append(comp)
            path = "/".join(parts)
            seen += 1
            assert seen <= 40
        return content[path]

    def manifest_entries(self) -> dict[str, str]:
        content = self.content()
        entries = {p: sha256(d) for p, d in content.items() if p not in self.unlisted}
        for link in self.symlinks:
            if link not in self.unlisted:
                entries[link] = sha256(self.resolved(link, content))
        return entries

    def manifest_data(self) -> bytes:
        return self.manifest if self.manifest is not None else manifest_bytes(self.manifest_entries())

    def members(self) -> dict[str, tuple[bytes, bool]]:
        """Zip members in writer order (FMT-WRITE-2): name -> (data, is_symlink)."""
        content = self.content()
        items: dict[str, tuple[bytes, bool]] = {p: (d, False) for p, d in content.items()}
        items.update({p: (t.encode("utf-8"), True) for p, t in self.symlinks.items()})
        ordered = {p: items[p] for p in sorted(items, key=lambda s: s.encode("utf-8")) if p not in self.omit}
        ordered["MANIFEST"] = (self.manifest_data(), False)
        if self.links is not None:
            ordered["LINKS"] = (self.links, False)
        if self.signature is not None:
            ordered["SIGNATURE"] = (self.signature, False)
        return ordered

    def zip_members(self, method: int = zc.STORED, overrides: dict[str, dict[str, Any]] | None = None) -> list[zc.Member]:
        overrides = overrides or {}
        out = []
        for name, (data, is_link) in self.members().items():
            kw: dict[str, Any] = dict(external_attr=LINK_ATTR if is_link else FILE_ATTR, version_made_by=VERSION_MADE_BY)
            m = zc.STORED if is_link or name in ("MANIFEST", "LINKS", "SIGNATURE") else method
            kw.update(overrides.get(name, {}))
            m = kw.pop("method", m)
            out.append(zc.member(kw.pop("name", name), data, m, **kw))
        return out

    def zip(self, method: int = zc.STORED, overrides: dict[str, dict[str, Any]] | None = None, **archive: Any) -> bytes:
        return zc.build(self.zip_members(method, overrides), **archive)

    # -- expectations --------------------------------------------------------------------------

    def expected(self) -> dict[str, Any]:
        """The normalised result of a successful inspect: info, manifest, manifest_sha256."""
        doc = self.doc
        content = self.content()
        manifest = self.manifest_data()
        listed = {line.rsplit("=", 1)[0] for line in manifest.decode().splitlines() if line}

        def resolve(ref: str) -> Any:
            if ref.startswith("@tensor_data/"):
                return tensor_json(self.values[ref[len("@tensor_data/"):]])
            path = "misc/" + ref[len("@misc/"):]
            return misc_json(content[path])

        def refs(mapping: dict[str, str] | None) -> dict[str, Any] | None:
            if mapping is None:
                return None
            return {k: resolve(mapping[k]) for k in sorted(mapping)}

        def spec(s: dict[str, Any]) -> dict[str, Any]:
            shape = s["shape"]
            out = {"name": s["name"], "dtype": s["dtype"],
                   "shape": None if shape == "*" else shape if isinstance(shape, str) else [None if d == "*" else d for d in shape]}
            for k in ("description", "internal_name"):
                if k in s:
                    out[k] = s[k]
            return out

        runner = doc["runner"]
        misc = {p[len("misc/"):]: misc_json(content[p]) for p in sorted(listed) if p.startswith("misc/")}
        info = {
            **{k: doc.get(k) for k in ("model_name", "short_description", "model_description", "license", "repository", "homepage")},
            "required_platforms": doc.get("required_platforms"),
            "runner": {
                "runner_name": runner["runner_name"],
                "required_framework_version": self.display_req or runner["required_framework_version"],
                "runner_compat_version": runner.get("runner_compat_version"),
                "opts": opts_json(runner.get("opts")),
            },
            "inputs": None if "input" not in doc else [spec(s) for s in doc["input"]],
            "outputs": None if "output" not in doc else [spec(s) for s in doc["output"]],
            "self_tests": None if "self_test" not in doc else [
                {"name": t.get("name"), "description": t.get("description"), "inputs": refs(t["inputs"]),
                 "expected_out": refs(t.get("expected_out"))}
                for t in doc["self_test"]
            ],
            "examples": None if "example" not in doc else [
                {"name": e.get("name"), "description": e.get("description"), "inputs": refs(e["inputs"]),
                 "sample_out": refs(e["sample_out"])}
                for e in doc["example"]
            ],
            "misc_files": misc or None,
        }
        return {"info": info, "manifest": manifest.decode("utf-8"), "manifest_sha256": sha256(manifest)}


def misc_json(data: bytes) -> dict[str, Any]:
    return {"misc_size": len(data), "sha256": sha256(data)}


# -- the base archives ------------------------------------------------------------------------


def runner(**over: Any) -> dict[str, Any]:
    r: dict[str, Any] = {"runner_name": "torchscript", "required_framework_version": "=2.13", "runner_compat_version": 1}
    r.update(over)
    return r


def minimal() -> CaseArchive:
    """Only what a valid archive needs: carton.toml with a runner, an empty index, one model file."""
    return CaseArchive(doc={"spec_version": 1, "runner": runner()}, files={"model/model.pt": MODEL_BYTES})


def standard() -> CaseArchive:
    """Every kind of metadata: specs, a self test, an example mixing tensors and misc files, misc files, opts."""
    c = CaseArchive(doc={}, files={"model/model.pt": MODEL_BYTES})
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    t0 = c.add_tensor("_tensor_0", x)
    t1 = c.add_tensor("_tensor_1", 2 * x)
    t2 = c.add_tensor("_tensor_2", np.array(["a", "b"]))
    t3 = c.add_tensor("_tensor_3", np.array([1, -2, 3], dtype=np.int64))
    c.files["misc/_example_misc_file_0"] = b"\x89PNG fake example output"
    c.files["misc/arch.png"] = b"\x89PNG fake architecture diagram"
    c.doc = {
        "spec_version": 1,
        "model_name": "doubler",
        "short_description": "Doubles its input",
        "input": [{"name": "x", "dtype": "float32", "shape": ["batch", 3]}],
        "output": [{"name": "y", "dtype": "float32", "shape": ["batch", 3]}],
        "self_test": [{"name": "t", "inputs": {"x": t0}, "expected_out": {"y": t1}}],
        "example": [{"inputs": {"s": t2, "x": t3}, "sample_out": {"y": "@misc/_example_misc_file_0"}}],
        "runner": runner(opts={"num_threads": 1}),
    }
    return c

__all__ = [
    "FILE_ATTR",
    "LINK_ATTR",
    "MODEL_BYTES",
    "NUMPY",
    "TOP_ORDER",
    "VERSION_MADE_BY",
    "CaseArchive",
    "manifest_bytes",
    "minimal",
    "misc_json",
    "opts_json",
    "runner",
    "sha256",
    "standard",
    "tensor_json",
]
