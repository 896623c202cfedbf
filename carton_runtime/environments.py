"""Runner environments: a Python virtual environment per (interpreter, requirements), built
on demand, cached, never the user's environment.

A model that needs packages (the ``python`` runner's ``requirements.txt``) or another framework
version (a torch runner in a worker with its own torch) runs in an environment of its own under
``<runner data dir>/envs/<key>`` (:func:`carton_runtime.config.load_config`), where ``key`` is a
sha256 over what decides its content: the interpreter's identity (path, implementation, version,
machine), the normalised requirement lines (sorted), the sha256 of the local files and
directories they name (wheels, sdists, project directories, ``--find-links`` directories,
included ``-r`` / ``-c`` files: a rebuilt wheel is another environment), our own runtime
dependencies pinned to the versions installed here, and where our packages live.  Same inputs,
same directory: a second load builds nothing.

Relative paths in the requirements resolve against the directory holding ``requirements.txt``
(the model directory), as for ``pip install -r requirements.txt`` run there, so a code directory
shipping its own wheels installs offline; they are made absolute before the installer sees them
(:func:`resolve_local`), because its commands run in a private empty directory (a module planted
in a shared working directory such as /tmp would be imported by ``python -m pip``).

Building (under a file lock ``<key>.lock``, so two processes never build the same environment):
a ``.<key>.tmp-*`` directory next to it gets a venv (``uv venv`` when ``uv`` is on PATH, else
``python -m venv``), the requirements and our dependencies are installed (``uv pip install``, or
pip: this interpreter's pip with ``--python`` when it has one, else the venv's own), our packages
``carton_format`` / ``carton_runtime`` are made importable through a *shim* directory holding only
symbolic links to them (named by a ``.pth`` file; the host's other packages stay invisible), an
import check runs, the directory is renamed into place and a marker file (``carton-env.json``) is
written last.  An environment without the marker is half built (a crash, a full disk): it is never
used, and the next build replaces it.  pip and uv read their usual configuration (``pip.conf``,
``PIP_INDEX_URL``, ``PIP_EXTRA_INDEX_URL``, ``UV_INDEX_URL``), which is how another package index
(for example one with CUDA torch wheels) is chosen.  A failed install is ``E-RUNTIME-ENV`` with the
installer's last lines; its whole output stays in ``<runner data dir>/envs/logs/``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import carton_format as cf
from carton_format.file_memo import Memo, file_identity

from . import progress
from .config import load_config
from .errors import CartonRuntimeError

log = logging.getLogger(__name__)

#: Bumped when the layout of an environment changes (part of every key).
LAYOUT_VERSION = 1
MARKER = "carton-env.json"
SHIM_DIR = "carton-shim"
PTH_NAME = "carton-runtime-shim.pth"
#: Our packages, made importable in every environment (through the shim).
OUR_PACKAGES = ("carton_format", "carton_runtime")
#: What our packages import (pyproject.toml's dependencies, and filelock of the runtime extra).
RUNTIME_DEPENDENCIES = ("numpy", "zstandard", "semver", "jsonschema", "tomli", "tomli-w", "tqdm", "filelock")
#: Runners whose automatic environment is "torch at the required version".
TORCH_RUNNERS = ("torchscript", "torch_export", "aotinductor")
#: How long a process waits for another one building the same environment.
LOCK_TIMEOUT_S = 3600.0
#: Lines of the installer's output quoted in an E-RUNTIME-ENV error.
TAIL_LINES = 12


@dataclass(frozen=True)
class Interpreter:
    """A Python interpreter an environment is built from (``path`` runs it)."""

    path: str
    version: str
    implementation: str
    machine: str

    @property
    def major_minor(self) -> str:
        """``3.11`` of ``3.11.7``."""
        return ".".join(self.version.split(".")[:2])

    def identity(self) -> dict[str, str]:
        """What of the interpreter goes into an environment's key."""
        return {"path": os.path.realpath(self.path), "version": self.version, "implementation": self.implementation, "machine": self.machine}


@dataclass(frozen=True)
class Environment:
    """A built environment: its directory and its interpreter."""

    root: Path
    python: str
    key: str
    created: bool  # built by this call (False: found ready)


@dataclass(frozen=True)
class WorkerEnvironment:
    """How to start a worker process: its interpreter, extra ``sys.path`` entries and
    environment variables (what ``carton_runtime.isolation.load_in_worker`` takes)."""

    python: str
    sys_path: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)


def _env_error(message: str) -> CartonRuntimeError:
    return CartonRuntimeError("E-RUNTIME-ENV", message)


# -- interpreters ---------------------------------------------------------------------------------


def host_interpreter() -> Interpreter:
    """The interpreter running this process (its base interpreter when in a venv: environments
    are built from the base, so the host venv's packages never leak into them)."""
    base = getattr(sys, "_base_executable", None) or sys.executable
    return Interpreter(base, platform.python_version(), sys.implementation.name, platform.machine())


def venv_python(root: Path) -> Path:
    """The interpreter of the venv at ``root``."""
    return root / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def resolve_interpreter(path: Any) -> str:
    """An interpreter given by the user: an executable file, or a venv directory (its
    ``bin/python``).  ``E-RUNTIME-ARG`` when there is none."""
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise CartonRuntimeError("E-RUNTIME-ARG", f"environment must be 'auto' or the path of an interpreter or venv, not {path!r}")
    given = Path(os.fspath(path)).expanduser()
    candidate = venv_python(given) if given.is_dir() else given
    if not candidate.is_file() or not os.access(candidate, os.X_OK):
        what = f"{given} is a directory without {candidate.relative_to(given)}" if given.is_dir() else f"{given} is not an executable file"
        raise CartonRuntimeError("E-RUNTIME-ARG", f"environment: {what} (give an interpreter or a venv directory)", name="environment")
    return str(candidate)


# -- requirements ---------------------------------------------------------------------------------

_COMMENT = re.compile(r"(^|\s)#.*$")


def normalize_requirements(text: str | Sequence[str]) -> tuple[str, ...]:
    """Requirement lines as pip reads them (continuations joined, comments, blank lines and
    repeated whitespace dropped), sorted and unique: the part of an environment's key that
    says what is installed."""
    raw = text.splitlines() if isinstance(text, str) else [str(line) for line in text]
    lines: list[str] = []
    pending = ""
    for line in raw:
        if line.endswith("\\"):
            pending += line[:-1]
            continue
        line = _COMMENT.sub("", pending + line)
        pending = ""
        line = " ".join(line.split())
        if line:
            lines.append(line)
    if pending.strip():
        lines.append(" ".join(_COMMENT.sub("", pending).split()))
    return tuple(sorted(set(lines)))


def runtime_requirements() -> tuple[str, ...]:
    """Our runtime dependencies pinned to the versions installed here (a worker imports our
    packages, which must find what they were tested with)."""
    pinned = []
    for name in RUNTIME_DEPENDENCIES:
        try:
            pinned.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pinned.append(name)
    return tuple(pinned)


def our_package_dirs() -> dict[str, str]:
    """Where ``carton_format`` and ``carton_runtime`` live here (the shim links to them)."""
    here = Path(__file__).resolve().parent
    return {"carton_runtime": str(here), "carton_format": str(Path(cf.__file__).resolve().parent)}


def _pep440_pre(pre: str, where: str) -> str:
    match = re.fullmatch(r"(a|alpha|b|beta|c|rc|pre|preview)[.-]?(\d*)", pre.lower())
    if not match:
        raise _env_error(f"{where}: the pre-release {pre!r} has no PEP 440 equivalent (use a, b or rc)")
    kind = {"alpha": "a", "beta": "b", "c": "rc", "pre": "rc", "preview": "rc"}.get(match.group(1), match.group(1))
    return f"{kind}{match.group(2) or 0}"


def _release(major: int, minor: int | None, patch: int | None, pre: str, where: str) -> str:
    parts = [str(p) for p in (major, minor, patch) if p is not None]
    return ".".join(parts) + (_pep440_pre(pre, where) if pre else "")


def _comparator_to_pep440(cmp: Any, where: str) -> list[str]:
    op, major, minor, patch = cmp.op, cmp.major, cmp.minor, cmp.patch
    exact = _release(major, minor, patch, cmp.pre, where)
    name = op.name
    if name in ("EXACT", "WILDCARD"):
        return [f"=={exact}" if patch is not None else f"=={exact}.*"]
    if name == "GREATER_EQ":
        return [f">={exact}"]
    if name == "LESS":
        return [f"<{exact}"]
    if name == "GREATER":
        if patch is not None:
            return [f">{exact}"]
        return [f">={major + 1}"] if minor is None else [f">={major}.{minor + 1}"]
    if name == "LESS_EQ":
        if patch is not None:
            return [f"<={exact}"]
        return [f"<{major + 1}"] if minor is None else [f"<{major}.{minor + 1}"]
    if name == "TILDE":
        upper = f"{major + 1}" if minor is None else f"{major}.{minor + 1}"
        return [f">={exact}", f"<{upper}"]
    # CARET
    if major > 0 or minor is None:
        upper = f"{major + 1}"
    elif minor > 0 or patch is None:
        upper = f"0.{minor + 1}"
    else:
        upper = f"0.0.{patch + 1}"
    return [f">={exact}", f"<{upper}"]


def pep440_specifier(requirement: str) -> str:
    """A Cargo-style version requirement (``=2.13``, ``^2.1``, ``>=2, <3``) as a PEP 440
    specifier (``==2.13.*``, ``>=2.1,<3``, ``>=2,<3``); ``*`` is the empty specifier."""
    req = cf.VersionReq.parse(requirement)
    specs: list[str] = []
    for cmp in req.comparators:
        specs.extend(_comparator_to_pep440(cmp, f"version requirement {requirement!r}"))
    return ",".join(specs)


# -- local files the requirements name -------------------------------------------------------------

#: Bounds of the local content an environment's key hashes (files and bytes in all, and how deep
#: ``-r`` / ``-c`` files may include others): E-RUNTIME-ENV beyond them.
LOCAL_MAX_FILES = 50_000
LOCAL_MAX_BYTES = 8 << 30
INCLUDE_MAX_DEPTH = 8
#: What imports and builds write into a project directory: not part of its content.
_SKIPPED_DIRS = ("__pycache__", ".git", ".hg", ".svn")
_ARCHIVE_SUFFIXES = (".whl", ".tar.gz", ".tgz", ".tar.bz2", ".tbz", ".tar.xz", ".txz", ".tar", ".zip")
#: Options whose value may be a local path, and what it names there.
_PATH_OPTIONS = {
    "-r": "requirement", "--requirement": "requirement", "-c": "constraint", "--constraint": "constraint",
    "-f": "find-links", "--find-links": "find-links", "-e": "editable", "--editable": "editable",
    "-i": "index", "--index-url": "index", "--extra-index-url": "index",
}  # fmt: skip
_URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_NAMED_URL = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*\s*(?:\[[^\]]*\])?)\s*@\s*(?P<url>[^\s;]+)(?P<rest>.*)$")
_EXTRAS = re.compile(r"^(?P<path>.*?)(?P<extras>\[[^\]]*\])$")
_ENV_VAR = re.compile(r"\$\{([A-Z0-9_]+)\}")  # what pip and uv expand in requirements files


@dataclass(frozen=True)
class LocalRequirements:
    """Requirement lines as the installer gets them (local paths made absolute, ``-r`` files
    inlined, so they mean the same whatever its working directory) and the sha256 of each local
    file or directory they name: ``(reference, digest)``, the reference relative to the base
    directory when inside it (so a model directory keys the same wherever it is unpacked)."""

    lines: tuple[str, ...]
    digests: tuple[tuple[str, str], ...]


class _Resolver:
    """One pass over a requirements file and the files it includes (see :func:`resolve_local`)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.digests: dict[str, str] = {}
        self.files = 0
        self.bytes = 0
        self.stack: list[Path] = []

    # -- paths

    def local_path(self, value: str, here: Path, *, prefer_here: bool = False) -> Path | None:
        """The absolute path a value names (a path, or a ``file:`` URL), relative to ``here``;
        None for a remote URL.  ``prefer_here``: relative to ``here`` when it exists there,
        else to the base directory (pip's rule for ``--find-links``)."""
        if value.lower().startswith("file:"):
            from urllib.parse import unquote, urlsplit

            parts = urlsplit(value)
            if parts.netloc not in ("", "localhost"):
                return None
            value = unquote(parts.path)
            if value.startswith("//"):  # file:////x: an empty host, then //x, which is /x
                value = value[1:]
        elif _URL_SCHEME.match(value) or not value:
            return None
        path = Path(value)
        if path.is_absolute():
            return Path(os.path.normpath(path))
        if prefer_here and not (here / path).exists():
            here = self.base
        return Path(os.path.normpath(here / path))

    def reference(self, path: Path) -> str:
        return path.relative_to(self.base).as_posix() if path.is_relative_to(self.base) else path.as_posix()

    # -- content

    def record(self, path: Path) -> None:
        """Add ``path``'s content digest (a file, a directory tree, or ``missing``)."""
        ref = self.reference(path)
        if ref in self.digests:
            return
        if path.is_file():
            self.digests[ref] = self._file_digest(path, ref)
        elif path.is_dir():
            self.digests[ref] = self._tree_digest(path, ref)
        else:
            self.digests[ref] = "missing"

    def _count(self, path: Path, size: int, ref: str) -> None:
        self.files += 1
        self.bytes += size
        if self.files > LOCAL_MAX_FILES or self.bytes > LOCAL_MAX_BYTES:
            raise _env_error(
                f"the requirements name local files ({ref}) beyond what an environment's key hashes ({LOCAL_MAX_FILES} files, "
                f"{LOCAL_MAX_BYTES >> 30} GiB in all; at {path}): point them at smaller directories, or serve the packages from an index"
            )

    def _file_digest(self, path: Path, ref: str) -> str:
        try:
            st = path.stat()
        except OSError as exc:
            raise _env_error(f"cannot read {path} (named by the requirements): {exc.strerror or exc}") from None
        self._count(path, st.st_size, ref)
        return _file_sha256(path)

    def _tree_digest(self, root: Path, ref: str) -> str:
        digest = hashlib.sha256(b"carton-tree-1\n")
        for dirpath, dirnames, filenames in os.walk(root):
            here = Path(dirpath)
            kept = []
            for name in sorted(dirnames):
                if name in _SKIPPED_DIRS or name.endswith(".egg-info"):
                    continue
                if (here / name).is_symlink():  # not followed: its target names it
                    digest.update(f"L {(here / name).relative_to(root).as_posix()} {os.readlink(here / name)}\n".encode())
                    continue
                kept.append(name)
            dirnames[:] = kept
            for name in sorted(filenames):
                path = here / name
                if name.endswith(".pyc"):
                    continue
                rel = path.relative_to(root).as_posix()
                if not path.is_file():  # a dangling link, a socket
                    digest.update(f"O {rel}\n".encode())
                    continue
                digest.update(f"F {rel} {self._file_digest(path, ref)}\n".encode())
        return digest.hexdigest()

    # -- lines

    def resolve(self, lines: Sequence[str], here: Path, out: list[str] | None) -> None:
        """Append ``lines`` (of a file in ``here``) to ``out`` with local paths made absolute,
        recording what they name; ``out`` None: record only (a constraints file)."""
        for line in lines:
            expanded = _ENV_VAR.sub(lambda m: os.environ.get(m.group(1), m.group(0)), line)
            args, options = _split_requirement_line(expanded)
            new_args = self._requirement(args) if args else None
            new_options = self._options(options, here, out) if options else None
            if out is None or (new_args is None and new_options is None):
                if out is not None:
                    out.append(line)  # as written (an unexpanded ${TOKEN} stays out of our files)
                continue
            parts = [new_args if new_args is not None else args, new_options if new_options is not None else options]
            joined = " ".join(p for p in parts if p)
            if joined:
                out.append(joined)

    def _requirement(self, args: str) -> str | None:
        """A requirement with its local path or ``file:`` URL made absolute, None if it has none."""
        named = _NAMED_URL.match(args)
        if named:
            path = self._url_or_path(named.group("url"))
            return None if path is None else f"{named.group('name').rstrip()} @ {path}{named.group('rest')}"
        if args.lower().startswith("file:"):
            location, _, rest = args.partition(" ")
            path = self._url_or_path(location)
            return None if path is None else f"{path} {rest}".rstrip()
        if _URL_SCHEME.match(args):
            return None
        head = args.split(";", 1)[0].rstrip()
        extras = _EXTRAS.match(head)
        value = extras.group("path") if extras else head
        if not ("/" in value or value.startswith(".") or (value.endswith(_ARCHIVE_SUFFIXES) and (self.base / value).is_file())):
            return None  # a name (pip's rule: a path has a slash or starts with a dot, or is an archive that exists)
        path = self.local_path(value, self.base)
        assert path is not None
        self.record(path)
        return str(path) + args[len(value) :]

    def _url_or_path(self, location: str) -> str | None:
        """A ``file:`` URL (or, as uv allows after ``@``, a path) as an absolute ``file://`` URL."""
        if _URL_SCHEME.match(location) and not location.lower().startswith("file:"):
            return None
        url, hash_sep, fragment = location.partition("#")
        path = self.local_path(url, self.base)
        if path is None:
            return None
        self.record(path)
        return path.as_uri() + hash_sep + fragment

    def _options(self, options: str, here: Path, out: list[str] | None) -> str | None:
        """An options part with local path values made absolute (``-r`` files inlined into
        ``out``), None if it has no local path."""
        try:
            tokens = shlex.split(options)
        except ValueError:
            return None  # unbalanced quotes: the installer says what is wrong
        result: list[str] = []
        changed = False
        i = 0
        while i < len(tokens):
            token = tokens[i]
            name, value, attached = _option_value(token)
            i += 1
            kind = _PATH_OPTIONS.get(name)
            if kind is None:
                result.append(token)
                continue
            if value is None:
                if i >= len(tokens):
                    result.append(token)
                    continue
                value, i = tokens[i], i + 1
            new_value = self._option_path(kind, value, here, out)
            if new_value is None:
                result.extend([token] if attached else [token, value])
                continue
            changed = True
            if new_value == "":  # an inlined -r file
                continue
            result.extend([f"{name}={new_value}" if name.startswith("--") else name + new_value] if attached else [name, new_value])
        if not changed:
            return None
        return shlex.join(result)

    def _option_path(self, kind: str, value: str, here: Path, out: list[str] | None) -> str | None:
        """The absolute value for one path option ("" when a ``-r`` file was inlined), None if remote."""
        if kind == "editable":
            head = _EXTRAS.match(value)
            path_text, extras = (head.group("path"), head.group("extras")) if head else (value, "")
            path = self.local_path(path_text, self.base)  # pip: relative to its working directory, in any file
            if path is None:
                return None  # git+https://..., a VCS URL
            self.record(path)
            return str(path) + extras
        path = self.local_path(value, here, prefer_here=kind == "find-links")
        if path is None:
            return None
        self.record(path)
        if kind in ("requirement", "constraint") and path.is_file():
            self._include(path, out if kind == "requirement" else None)
            return "" if kind == "requirement" and out is not None else str(path)
        return str(path)

    def _include(self, path: Path, out: list[str] | None) -> None:
        """Read an included file: a requirements file's lines go into ``out`` (pip resolves their
        path requirements against the base directory, their options against the file's own)."""
        real = path.resolve()
        if real in self.stack:
            raise _env_error(f"the requirements include {path} from itself (through {' -> '.join(p.name for p in self.stack)})")
        if len(self.stack) >= INCLUDE_MAX_DEPTH:
            raise _env_error(f"the requirements include files more than {INCLUDE_MAX_DEPTH} deep (at {path})")
        try:
            text = path.read_bytes().decode("utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise _env_error(f"cannot read {path} (included by the requirements): {exc}") from None
        self.stack.append(real)
        try:
            self.resolve(normalize_requirements(text), path.parent, out)
        finally:
            self.stack.pop()


def _split_requirement_line(line: str) -> tuple[str, str]:
    """(requirement, options) as pip splits a line: the options start at the first word
    beginning with ``-``."""
    words = line.split(" ")
    for i, word in enumerate(words):
        if word.startswith("-"):
            return " ".join(words[:i]), " ".join(words[i:])
    return line, ""


def _option_value(token: str) -> tuple[str, str | None, bool]:
    """(option name, its attached value or None, whether it was attached) of one token:
    ``--find-links=x``, ``-fx``, ``--find-links``."""
    if token.startswith("--"):
        name, eq, value = token.partition("=")
        return (name, value, True) if eq else (name, None, False)
    if token.startswith("-") and len(token) > 2 and token[:2] in _PATH_OPTIONS:
        return token[:2], token[2:], True
    return token, None, False


#: sha256 of local files the requirements name, by file identity (carton_format.file_memo).
_digest_memo: Memo[str] = Memo(max_items=4096)


def _file_sha256(path: Path) -> str:
    """sha256 of a file, remembered per file identity (device, inode, size, times) in this process."""
    identity = file_identity(path)
    known = _digest_memo.get(identity)
    if known is not None:
        return known
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        raise _env_error(f"cannot read {path} (named by the requirements): {exc.strerror or exc}") from None
    _digest_memo.put(identity, digest.hexdigest())
    return digest.hexdigest()


def _working_dir() -> Path:
    try:
        return Path.cwd()
    except OSError:  # removed under us: pip could resolve nothing relative there either
        return Path(os.sep)


def resolve_local(requirements: Sequence[str], base: Path) -> LocalRequirements:
    """Requirement lines whose local paths resolve against ``base`` (the directory holding the
    requirements file), as ``pip install -r requirements.txt`` run there: wheels, sdists and
    project directories (``./wheels/x.whl``, ``-e ./src``), ``file:`` URLs, ``--find-links``,
    ``--index-url`` directories and ``-r`` / ``-c`` files (relative to the file naming them).
    Remote requirements stay as written and add no digest."""
    base = Path(os.path.abspath(base))
    resolver = _Resolver(base)
    lines: list[str] = []
    resolver.resolve(normalize_requirements(list(requirements)), base, lines)
    return LocalRequirements(tuple(lines), tuple(sorted(resolver.digests.items())))


# -- building -------------------------------------------------------------------------------------


def envs_root() -> Path:
    """``<runner data dir>/envs``: where environments live."""
    return load_config().runner_data_dir / "envs"


def environment_key(
    interpreter: Interpreter, requirements: Sequence[str], find_links: Sequence[str] = (), local: Sequence[tuple[str, str]] = ()
) -> str:
    """The sha256 naming the environment for these inputs (see the module docstring); ``local``:
    the digests of the local files the requirements name (:attr:`LocalRequirements.digests`)."""
    document: dict[str, Any] = {
        "layout": LAYOUT_VERSION,
        "interpreter": interpreter.identity(),
        "requirements": list(normalize_requirements(list(requirements))),
        "runtime": list(runtime_requirements()),
        "packages": our_package_dirs(),
        "find_links": sorted(Path(d).name for d in find_links),  # content-addressed directories: their names say it all
    }
    if local:  # only then: requirements naming nothing local keep the keys they always had
        document["local"] = sorted([str(ref), str(digest)] for ref, digest in local)
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode("utf-8")).hexdigest()


def is_ready(root: Path) -> bool:
    """Whether the environment at ``root`` was completely built (its marker was written last)
    and its interpreter is still there."""
    marker = root / MARKER
    try:
        data = json.loads(marker.read_text("utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("key") == root.name and venv_python(root).exists()


def ensure_environment(
    requirements: Sequence[str] = (),
    *,
    interpreter: Interpreter | None = None,
    find_links: Sequence[str] = (),
    root: Path | None = None,
    purpose: str = "",
    base_dir: Path | None = None,
) -> Environment:
    """The environment for ``requirements`` (plus our runtime dependencies) on ``interpreter``
    (default: this one), built if it is not there yet.  ``find_links``: local directories of
    wheels pip may use, each named by the sha256 of its content (a model's bundled wheels,
    ``.carton/bundled_wheels/<sha256>/``): the key uses their names, not where they are.
    ``base_dir``: what relative paths in the requirements are relative to (the directory holding
    the requirements file; default: the working directory, as for pip), see
    :func:`resolve_local`; the key adds the content of the local files they name, not where
    they are.  ``purpose`` names it in log lines."""
    interpreter = interpreter or host_interpreter()
    reqs = normalize_requirements(list(requirements))
    local = resolve_local(reqs, Path(base_dir) if base_dir is not None else _working_dir())
    base = Path(root) if root is not None else envs_root()
    key = environment_key(interpreter, reqs, find_links, local.digests)
    dest = base / key
    if is_ready(dest):
        log.debug("runner environment %s is ready (%s)", dest, purpose or "no purpose given")
        return Environment(dest, str(venv_python(dest)), key, created=False)
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _env_error(f"cannot create the runner environments directory {base}: {exc.strerror or exc}") from None
    from filelock import FileLock, Timeout

    lock = FileLock(str(base / f"{key}.lock"))
    try:
        with lock.acquire(timeout=LOCK_TIMEOUT_S):
            if is_ready(dest):  # another process built it while we waited
                return Environment(dest, str(venv_python(dest)), key, created=False)
            _build(dest, interpreter, reqs, local, find_links, purpose)
    except Timeout:
        raise _env_error(f"waited {LOCK_TIMEOUT_S:.0f} s for another process building {dest}; remove {lock.lock_file} if none is") from None
    return Environment(dest, str(venv_python(dest)), key, created=True)


def _remove(path: Path) -> None:
    """Remove a directory tree (first renamed aside, so a half-removed one never has the name)."""
    if not path.exists() and not path.is_symlink():
        return
    aside = path.with_name(f".{path.name}.old-{os.getpid()}-{time.monotonic_ns()}")
    try:
        path.rename(aside)
    except OSError:
        aside = path
    shutil.rmtree(aside, ignore_errors=True)


def _build(
    dest: Path, interpreter: Interpreter, reqs: tuple[str, ...], local: LocalRequirements, find_links: Sequence[str], purpose: str
) -> None:
    if dest.exists():
        log.warning("runner environment %s is incomplete (no %s: a build was interrupted); building it again", dest, MARKER)
        _remove(dest)
    for stale in dest.parent.glob(f".{dest.name}.*"):  # leftovers of interrupted builds (we hold the lock)
        shutil.rmtree(stale, ignore_errors=True)
    what = ", ".join(reqs) or "no requirements"
    log.info("creating runner environment %s for %s (%s; Python %s)", dest.name[:12], purpose or "a model", what, interpreter.version)
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    log_path = dest.parent / "logs" / f"{dest.name}.log"
    try:
        with progress.phase("environment"), _Installer(log_path, f"env {dest.name[:12]}") as installer:
            installer.create_venv(interpreter, tmp)
            installer.install(tmp, local.lines + runtime_requirements(), find_links)
            _add_shim(tmp)
            installer.check_imports(tmp)
        tmp.rename(dest)
        _fix_scripts(dest, tmp)
        marker = {
            "key": dest.name,
            "interpreter": interpreter.identity(),
            "requirements": list(reqs),
            "local": [list(item) for item in local.digests],
            "runtime": list(runtime_requirements()),
            "created": time.time(),
        }
        _write_marker(dest, marker)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("created runner environment %s in %.1f s (%s)", dest, time.perf_counter() - started, what)


def _write_marker(dest: Path, data: dict[str, Any]) -> None:
    part = dest / f"{MARKER}.part"
    with open(part, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(part, dest / MARKER)


def _site_packages(root: Path) -> Path:
    """The venv's purelib directory (asked of the venv's interpreter: layouts differ)."""
    done = subprocess.run(
        [str(venv_python(root)), "-I", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise _env_error(f"the new environment's interpreter does not start: {done.stderr.strip()[-300:]}")
    return Path(done.stdout.strip().splitlines()[-1])


def shim_dir_contents(shim: Path) -> None:
    """Fill ``shim`` with symbolic links to our packages (only those: nothing else of the host)."""
    shim.mkdir(parents=True, exist_ok=True)
    for name, target in our_package_dirs().items():
        link = shim / name
        if link.is_symlink() or link.exists():
            link.unlink()
        os.symlink(target, link, target_is_directory=True)


def _add_shim(root: Path) -> None:
    shim = root / SHIM_DIR
    shim_dir_contents(shim)
    # relative to the environment's prefix, so the line stays right when the directory is renamed
    line = f"import os, sys; p = os.path.join(sys.prefix, {SHIM_DIR!r}); p in sys.path or sys.path.append(p)\n"
    (_site_packages(root) / PTH_NAME).write_text(line, "utf-8")


def _fix_scripts(dest: Path, built_at: Path) -> None:
    """Console scripts written while the venv lived at ``built_at`` name it in their ``#!``
    line; point them at ``dest``."""
    bindir = venv_python(dest).parent
    old, new = str(built_at).encode(), str(dest).encode()
    for script in bindir.iterdir():
        if script.is_symlink() or not script.is_file():
            continue
        try:
            with open(script, "rb") as f:
                head = f.read(2)
                if head != b"#!":
                    continue
                data = head + f.read()
        except OSError:
            continue
        if old in data:
            script.write_bytes(data.replace(old, new))
    cfg = dest / "pyvenv.cfg"
    if cfg.exists():
        text = cfg.read_bytes()
        if old in text:
            cfg.write_bytes(text.replace(old, new))


def _clean_env() -> dict[str, str]:
    """The environment for installer subprocesses: the host's, without what would make them
    see or change the host's packages."""
    env = dict(os.environ)
    for name in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "PIP_USER", "PIP_TARGET", "PIP_PREFIX", "CONDA_PREFIX"):
        env.pop(name, None)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_NO_INPUT"] = "1"
    return env


def _host_pip_usable() -> bool:
    """Whether this interpreter has a pip that installs into another one (``--python``: 22.3+)."""
    try:
        version = metadata.version("pip")
    except metadata.PackageNotFoundError:
        return False
    match = re.match(r"(\d+)\.(\d+)", version)
    return bool(match) and (int(match.group(1)), int(match.group(2))) >= (22, 3)


def error_tail(output: str, lines: int = TAIL_LINES) -> str:
    """The part of an installer's output worth quoting: from its first ``ERROR`` line (at most
    ``lines`` lines), else its last ``lines`` lines."""
    all_lines = [line.rstrip() for line in output.splitlines() if line.strip()]
    for i, line in enumerate(all_lines):
        if line.lstrip().startswith(("ERROR", "error:", "×", "x ")):
            return "\n".join(all_lines[i : i + lines])
    return "\n".join(all_lines[-lines:])


class _Installer:
    """Runs the venv and install commands, streaming their output to a log file and (on a
    terminal, see :mod:`carton_runtime.progress`) a tqdm status line."""

    def __init__(self, log_path: Path, desc: str) -> None:
        self.log_path = log_path
        self.desc = desc
        self.uv = shutil.which("uv")
        self._bar: Any = None
        self._log: Any = None
        self._cwd: str | None = None

    def __enter__(self) -> _Installer:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # the commands' working directory is on their sys.path (``-m``, ``-c``): an empty private one,
        # never a shared one like /tmp, where anybody's attr.py or pip.py would be imported
        self._cwd = tempfile.mkdtemp(prefix="carton-env-cwd-")
        self._log = open(self.log_path, "w", encoding="utf-8", errors="replace")
        enabled = progress.setting()
        if enabled is not False:
            from tqdm import tqdm

            self._bar = tqdm(total=None, desc=f"creating {self.desc}", unit=" lines", file=sys.stderr, disable=None if enabled is None else False)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()
        if self._log is not None:
            self._log.close()
        if self._cwd is not None:
            shutil.rmtree(self._cwd, ignore_errors=True)

    def run(self, args: list[str], what: str) -> None:
        self._log.write(f"$ {' '.join(args)}\n")
        self._log.flush()
        kept: list[str] = []
        try:
            proc = subprocess.Popen(
                args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace", env=_clean_env(), cwd=self._cwd
            )
        except OSError as exc:
            raise _env_error(f"{what}: cannot run {args[0]}: {exc.strerror or exc}") from None
        with proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                self._log.write(line)
                kept.append(line)
                if len(kept) > 400:
                    del kept[:200]
                if self._bar is not None:
                    self._bar.update(1)
                    self._bar.set_postfix_str(line.strip()[:60], refresh=False)
            status = proc.wait()
        self._log.flush()
        if status != 0:
            raise _env_error(f"{what} failed (exit status {status}); its last lines:\n{error_tail(''.join(kept))}\n(whole output: {self.log_path})")

    def create_venv(self, interpreter: Interpreter, root: Path) -> None:
        if self.uv:
            self.run([self.uv, "venv", "--quiet", "--python", interpreter.path, str(root)], "creating the environment (uv venv)")
        else:
            args = [interpreter.path, "-m", "venv", str(root)]
            if _host_pip_usable():
                args.insert(3, "--without-pip")
            self.run(args, "creating the environment (python -m venv)")

    def install(self, root: Path, reqs: Sequence[str], find_links: Sequence[str]) -> None:
        req_file = root / "carton-requirements.txt"
        req_file.write_text("".join(f"{line}\n" for line in reqs), "utf-8")
        links = [arg for d in find_links for arg in ("--find-links", d)]
        python = str(venv_python(root))
        if self.uv:
            self.run([self.uv, "pip", "install", "--python", python, "-r", str(req_file), *links], "installing the requirements (uv pip install)")
        elif _host_pip_usable():
            args = [sys.executable, "-m", "pip", "--python", python, "install", "--no-input", "-r", str(req_file), *links]
            self.run(args, "installing the requirements (pip install)")
        else:
            self.run([python, "-m", "pip", "install", "--no-input", "-r", str(req_file), *links], "installing the requirements (pip install)")

    def check_imports(self, root: Path) -> None:
        code = "import numpy, carton_format, carton_runtime"
        self.run([str(venv_python(root)), "-c", code], "checking the new environment (import numpy, carton_format, carton_runtime)")


# -- what the loader asks for ---------------------------------------------------------------------

_shared_shim_lock = threading.Lock()


def shared_shim() -> Path:
    """A directory with links to our packages only (for interpreters given by the user, through
    ``PYTHONPATH``), kept under the environments directory."""
    digest = hashlib.sha256(json.dumps(our_package_dirs(), sort_keys=True).encode()).hexdigest()[:16]
    shim = envs_root() / f"shim-{digest}"
    with _shared_shim_lock:
        if not all((shim / name).is_symlink() for name in OUR_PACKAGES):
            tmp = Path(tempfile.mkdtemp(prefix=f".{shim.name}.tmp-", dir=_mkdir(shim.parent)))
            shim_dir_contents(tmp)
            _remove(shim)
            try:
                tmp.rename(shim)
            except OSError:  # another process put it there first
                shutil.rmtree(tmp, ignore_errors=True)
    return shim


def _mkdir(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _env_error(f"cannot create {path}: {exc.strerror or exc}") from None
    return path


def torch_requirement(required_framework_version: str) -> str:
    """``torch==X`` / ``torch<spec>`` for a torch runner's Cargo-style framework requirement."""
    spec = pep440_specifier(required_framework_version)
    return f"torch{spec}" if spec else "torch"


def _check_python_version(required_framework_version: str, interpreter: Interpreter) -> None:
    from .registry import to_semver

    req = cf.VersionReq.parse(required_framework_version)
    if not req.matches(to_semver(interpreter.version)):
        raise CartonRuntimeError(
            "E-RUNTIME-NO-RUNNER",
            f"the model needs Python {required_framework_version}; the interpreter here is Python {interpreter.version} "
            f"({interpreter.path}). Install a matching Python and pass environment='/path/to/python', or pass "
            f"override_required_framework_version='={interpreter.major_minor}' to try this one",
        )


def worker_environment_for(runner_name: str, required_framework_version: str, environment: Any) -> WorkerEnvironment:
    """The worker process for a model of ``runner_name`` needing ``required_framework_version``.

    ``environment``: ``"auto"`` provisions one (torch runners: an environment with a torch
    satisfying the requirement, ``torch==X`` when it pins one; ``python``: this interpreter with
    our dependencies, when its version matches); a path to an interpreter or venv is used as it
    is (it must have numpy and our other dependencies; our packages come through ``PYTHONPATH``);
    None is this process's own interpreter."""
    if environment is None:
        return WorkerEnvironment(sys.executable)
    if isinstance(environment, str) and environment == "auto":
        if runner_name in TORCH_RUNNERS:
            env = ensure_environment([torch_requirement(required_framework_version)], purpose=f"runner {runner_name}")
            return WorkerEnvironment(env.python)
        if runner_name == "python":
            interpreter = host_interpreter()
            _check_python_version(required_framework_version, interpreter)
            env = ensure_environment([], interpreter=interpreter, purpose="runner python")
            return WorkerEnvironment(env.python)
        raise CartonRuntimeError(
            "E-RUNTIME-ARG",
            f"environment='auto': no automatic environment for runner {runner_name!r} (automatic: python, {', '.join(TORCH_RUNNERS)}); "
            "pass the path of an interpreter or venv",
            name="environment",
        )
    python = resolve_interpreter(environment)
    return WorkerEnvironment(python, (), {"PYTHONPATH": str(shared_shim())})


__all__ = [
    "LAYOUT_VERSION",
    "MARKER",
    "RUNTIME_DEPENDENCIES",
    "TORCH_RUNNERS",
    "Environment",
    "Interpreter",
    "LocalRequirements",
    "WorkerEnvironment",
    "ensure_environment",
    "environment_key",
    "envs_root",
    "error_tail",
    "host_interpreter",
    "is_ready",
    "normalize_requirements",
    "pep440_specifier",
    "resolve_interpreter",
    "resolve_local",
    "runtime_requirements",
    "shared_shim",
    "torch_requirement",
    "worker_environment_for",
]
