"""``get_linked_files``: the Hugging Face Hub LFS files of a repo as ``linked_files`` for ``pack``.

The original's ``cartonml.utils.hf.get_linked_files``, same signature and result: packing with
it leaves those files out of the archive and loads fetch them from the Hub (verified against
MANIFEST), so archives stay small and several models can share cached weights.  Needs the
optional extra ``hf`` (``huggingface_hub``), imported only when called.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Optional  # Dict/Optional: the original's exact signature

from ..errors import CartonRuntimeError

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'carton-py[hf]'"


def _hub() -> Any:
    try:
        import huggingface_hub  # optional extra, imported only when used
        import huggingface_hub.utils  # HfHubHTTPError, HFValidationError (in .utils since 0.20)
    except ImportError as exc:
        raise CartonRuntimeError(
            "E-RUNTIME-ARG", f"get_linked_files needs huggingface_hub, which is not installed ({exc}): {INSTALL_HINT}"
        ) from None
    return huggingface_hub


def _check_args(repo_id: object, revision: object) -> None:
    if not isinstance(repo_id, str) or not repo_id:
        raise CartonRuntimeError("E-RUNTIME-ARG", f"repo_id must be a non-empty str like 'org/name', not {repo_id!r}", name="repo_id")
    if revision is not None and (not isinstance(revision, str) or not revision):
        raise CartonRuntimeError("E-RUNTIME-ARG", f"revision must be a non-empty str or None, not {revision!r}", name="revision")


def _repo_info(hub: Any, api: Any, repo_id: str, revision: Optional[str]) -> Any:
    """``api.repo_info(files_metadata=True)`` with the Hub's failures as coded errors (its message kept)."""
    where = f"{repo_id}@{revision or 'default branch'}"
    try:
        return api.repo_info(repo_id=repo_id, revision=revision, files_metadata=True)
    except hub.utils.HFValidationError as exc:  # a malformed repo id or revision, refused before any request
        raise CartonRuntimeError("E-RUNTIME-ARG", f"Hugging Face Hub: {exc}", name="repo_id") from None
    except hub.utils.HfHubHTTPError as exc:  # 404 (repo or revision not found, gated), 401, 5xx
        raise CartonRuntimeError("E-RUNTIME-HTTP", f"Hugging Face Hub, {where}: {exc}") from None
    except OSError as exc:  # offline mode, connection failures (requests-based hub versions)
        raise CartonRuntimeError("E-RUNTIME-HTTP", f"Hugging Face Hub, {where}: {type(exc).__name__}: {exc}") from None
    except Exception as exc:  # httpx-based hub versions raise httpx errors, which are not OSErrors
        if type(exc).__module__.split(".")[0] not in ("httpx", "httpx2", "requests", "urllib3"):
            raise
        raise CartonRuntimeError("E-RUNTIME-HTTP", f"Hugging Face Hub, {where}: {type(exc).__name__}: {exc}") from None


def _lfs_sha256(lfs: Any) -> str | None:
    """The LFS entry's sha256 when it is 64 lowercase hex digits (a MANIFEST hash), else None."""
    try:
        sha = lfs["sha256"]
    except (KeyError, TypeError, IndexError):
        sha = getattr(lfs, "sha256", None)
    if isinstance(sha, str) and len(sha) == 64 and all(c in "0123456789abcdef" for c in sha):
        return sha
    return None


def get_linked_files(repo_id: str, revision: Optional[str]) -> Dict[str, list[str]]:
    """sha256 -> URLs of every LFS file of the Hub model repo ``repo_id`` at ``revision`` (None:
    the default branch), each URL pinned to the commit the revision resolves to: pass it as
    ``linked_files`` to ``pack``.  Files with the same content share one entry."""
    _check_args(repo_id, revision)
    hub = _hub()
    api = hub.HfApi()  # its endpoint is HF_ENDPOINT (read when huggingface_hub was imported)
    info = _repo_info(hub, api, repo_id, revision)
    commit = getattr(info, "sha", None)
    if not isinstance(commit, str) or not commit:
        raise CartonRuntimeError("E-RUNTIME-HTTP", f"Hugging Face Hub, {repo_id}: the answer names no commit sha, so no URL can be pinned")
    mapping: Dict[str, list[str]] = {}
    for sibling in info.siblings or []:
        if sibling.lfs is None:
            continue
        sha = _lfs_sha256(sibling.lfs)
        if sha is None or not isinstance(sibling.rfilename, str) or not sibling.rfilename:
            raise CartonRuntimeError(
                "E-RUNTIME-HTTP", f"Hugging Face Hub, {repo_id}@{commit}: an LFS file without a valid name or sha256 in the answer: {sibling!r:.200}"
            )
        url = hub.hf_hub_url(repo_id=repo_id, filename=sibling.rfilename, revision=commit, endpoint=api.endpoint)
        mapping.setdefault(sha, []).append(url)
    log.info("%s@%s: %d LFS file(s), %d distinct", repo_id, commit, sum(map(len, mapping.values())), len(mapping))
    return mapping


__all__ = ["get_linked_files"]
