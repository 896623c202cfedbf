"""The conformance adapter for this repository's implementation (carton_format, carton_runtime).

    python -m carton_conformance.adapters.builtin capabilities | inspect ARCHIVE [LIMITS_JSON] | versionreq REQ VERSION
                                          | infer ARCHIVE INPUTS | serve

``inspect`` is a validator's deep read (``carton_format.validate``) followed by a read of every
metadata value (``describe_info(with_values=True)``); ``infer`` loads the archive with
``carton_runtime.sync`` and is declared only when that API is importable; ``verify`` checks a
signature with ``carton_format.verify_signature`` and is declared only with the signing extra.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from typing import Any

import numpy as np

import carton_format as cf
from carton_format.describe import describe_info

from .protocol import PROTOCOL, main, tensor_json


def opts_json(opts: dict[str, Any] | None) -> dict[str, Any] | None:
    if opts is None:
        return None
    out = {}
    for k, v in opts.items():
        kind = "boolean" if isinstance(v, bool) else "integer" if isinstance(v, int) else "float" if isinstance(v, float) else "string"
        if kind == "float" and not np.isfinite(v):
            v = str(v)
        out[k] = {"type": kind, "value": v}
    return out


def normalised(info: cf.CartonInfo) -> dict[str, Any]:
    """describe_info(with_values=True) with runner options tagged by TOML type (README, "Normalised form")."""
    out = describe_info(info, with_values=True)
    out["runner"]["opts"] = opts_json(info.runner.opts)  # typed, from the values themselves (describe spells NaN as a string)
    return out


def error_json(code: str, message: str) -> dict[str, Any]:
    """An error as the protocol reports it; the category comes from the one code registry."""
    return {"code": code, "category": cf.category_of(code).value, "message": message}  # type: ignore[union-attr]


def tensor_from_json(doc: dict[str, Any]) -> np.ndarray:
    shape = tuple(doc["shape"])
    if doc["dtype"] == "string":
        return np.array(doc["values"], dtype=str).reshape(shape)
    values = [float(v) if isinstance(v, str) else v for v in doc["values"]]
    return np.array(values, dtype=doc["dtype"]).reshape(shape)


def _runtime() -> Any:
    """carton_runtime.sync when it provides load() and a model with infer(); None otherwise."""
    try:
        import carton_runtime.sync as carton_sync
    except Exception:  # noqa: BLE001 - not installed, not finished, or torch missing
        return None
    return carton_sync if callable(getattr(carton_sync, "load", None)) else None


def _fetcher_class() -> Any:
    """carton_runtime's LINKS fetcher (a ``fetch_linked`` callable) when importable."""
    try:
        from carton_runtime.cache import Cache
        from carton_runtime.links_fetch import LinkFetcher
    except Exception:  # noqa: BLE001
        return None
    return lambda directory, limits: LinkFetcher(Cache(directory), limits)


class Builtin:
    def __init__(self) -> None:
        self._runtime: Any = False  # not probed yet
        self._fetcher: Any = False

    @property
    def runtime(self) -> Any:
        if self._runtime is False:
            self._runtime = _runtime()
        return self._runtime

    @property
    def fetcher(self) -> Any:
        if self._fetcher is False:
            self._fetcher = _fetcher_class()
        return self._fetcher

    def capabilities(self) -> dict[str, Any]:
        kinds = ["inspect", "versionreq"]
        if self.runtime is not None:
            kinds.append("infer")
        if importlib.util.find_spec("model_signing") is not None:  # the 'signing' extra
            kinds.append("verify")
        try:
            from importlib.metadata import version

            ours = version("carton-py")
        except Exception:  # noqa: BLE001
            ours = "unknown"
        return {
            "protocol": PROTOCOL,
            "name": "carton-py",
            "version": ours,
            "language": "python",
            "kinds": kinds,
            "features": ["error-categories", "error-codes", "limits", "manifest", "normalized-versionreq", "warnings"]
            + (["fetch"] if self.fetcher is not None else []),
            "persistent": True,
            "runners": self._runners(),
        }

    def _runners(self) -> list[str]:
        """The runner names infer can load here (installed and usable)."""
        if self.runtime is None:
            return []
        try:
            from carton_runtime.registry import installed_runners
            from carton_runtime.runners.base import unavailable_reason
        except Exception:  # noqa: BLE001
            return ["torchscript"]
        return sorted({r.runner_name for r in installed_runners() if not unavailable_reason(r)})

    def inspect(self, archive: str, limits: dict[str, int] | None) -> tuple[int, dict[str, Any]]:
        lim = cf.Limits(**limits) if limits else cf.DEFAULT_LIMITS
        with tempfile.TemporaryDirectory(prefix="carton-conformance-cache-") as cache:
            return self._inspect(archive, lim, self.fetcher(cache, lim) if self.fetcher is not None else None)

    def _inspect(self, archive: str, lim: Any, fetch: Any) -> tuple[int, dict[str, Any]]:
        report = cf.validate(archive, limits=lim, fetch_linked=fetch)  # fetches only metadata documents behind LINKS
        warnings = sorted({w.code for w in report.warnings})
        if not report.ok:
            return 1, {"valid": False, "errors": [error_json(e.code, e.message) for e in report.errors], "warnings": warnings}
        try:
            # validate() verified every member of the zip; linked files are verified as they are fetched
            with cf.read(archive, verify_hashes=False, limits=lim, fetch_linked=fetch) as opened:
                info = normalised(opened.info)
                manifest = opened.manifest_info.raw
                sha = opened.manifest_sha256
        except cf.CartonError as exc:  # e.g. a tensor that LINKS cannot provide (E-LINKS-FETCH, E-MANIFEST-MISMATCH)
            return 1, {"valid": False, "errors": [error_json(exc.code, str(exc))], "warnings": warnings}
        return 0, {"valid": True, "info": info, "manifest": manifest.decode("utf-8"), "manifest_sha256": sha, "warnings": warnings}

    def versionreq(self, requirement: str, version: str) -> tuple[int, dict[str, Any]]:
        try:
            req = cf.VersionReq.parse(requirement)
        except cf.CartonFormatError as exc:
            return 1, {"valid": False, "errors": [error_json(exc.code, exc.message)]}
        return 0, {"valid": True, "matches": req.matches(version), "normalized": str(req)}

    def verify(self, archive: str, key: str) -> tuple[int, dict[str, Any]]:
        """The signature against the trusted public key, then every member (spec section 18)."""
        try:
            report = cf.verify_signature(archive, key=key)
        except cf.CartonError as exc:
            return 1, {"verified": False, "errors": [error_json(exc.code, str(exc))]}
        if report.verified:
            return 0, {"verified": True, "manifest_sha256": report.model_id, "method": report.method}
        return 1, {"verified": False, "errors": [error_json(f.code, f.message) for f in report.reasons]}

    def infer(self, archive: str, document: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        runtime = self.runtime
        if runtime is None:
            raise RuntimeError("carton_runtime is not available: infer is not a declared capability")
        options = document.get("options") or {}
        inputs = {k: tensor_from_json(v) for k, v in document["inputs"].items()}
        try:
            model = runtime.load(
                archive,
                visible_device="cpu",
                override_runner_name=options.get("override_runner_name"),
                override_required_framework_version=options.get("override_required_framework_version"),
                override_runner_opts=options.get("override_runner_opts"),
            )
            try:
                outputs = model.infer(inputs)
            finally:
                close = getattr(model, "close", None)
                if callable(close):
                    close()
        except cf.CartonError as exc:  # format and runtime errors alike; anything else is a crash
            return 1, {"errors": [error_json(exc.code, str(exc))]}
        return 0, {"outputs": {k: tensor_json(v) for k, v in outputs.items()}}


def run(argv: list[str] | None = None) -> int:
    with tempfile.TemporaryDirectory(prefix="carton-conformance-") as tmp:
        # the runtime's cache: never the user's, and empty for every adapter process
        os.environ.setdefault("CARTON_CACHE_DIR", tmp)
        return main(Builtin(), argv)

__all__ = [
    "Builtin",
    "error_json",
    "normalised",
    "opts_json",
    "run",
    "tensor_from_json",
]


if __name__ == "__main__":
    sys.exit(run())
