"""``carton pack``, ``carton run``, ``carton selftest`` and ``carton cache ls|info|clear|prune``
(added to the ``carton`` command through the ``carton.cli`` entry-point group).

Exit codes: 0 success, 1 failure (a failing self test, an invalid archive, a load or inference
error), 2 usage error.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np

import carton_format as cf

from . import progress
from .errors import CartonError, CartonRuntimeError

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def _kv(text: str, what: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"{what} must look like NAME=VALUE, not {text!r}")
    key, value = text.split("=", 1)
    if not key:
        raise argparse.ArgumentTypeError(f"{what} needs a name before '=': {text!r}")
    return key, value


def _kv_type(what: str) -> Any:
    """An argparse ``type`` for NAME=VALUE options (a malformed one is a usage error, exit 2)."""

    def parse(text: str) -> tuple[str, str]:
        return _kv(text, what)

    return parse


def _seconds(text: str) -> float:
    """``--call-timeout`` / ``--load-timeout``: a positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"not a positive number of seconds: {text!r}")
    return value


def _opt_value(text: str) -> Any:
    """Runner option values: int, float, true/false, else str."""
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def _default_framework_version() -> str:
    from .pack import default_framework_version
    from .registry import find_runner_by_name

    runner = find_runner_by_name("torchscript")  # usable runners only
    return "*" if runner is None else default_framework_version(runner)


# -- pack ------------------------------------------------------------------------------------------


def _parse_spec(text: str, flag: str) -> cf.TensorSpec:
    """``NAME:DTYPE:SHAPE``: SHAPE ``*`` is any shape, else comma-separated dims (an int, a
    symbolic name, or ``?`` for any size; empty for a scalar); SHAPE may be left out (any)."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise CartonRuntimeError("E-RUNTIME-ARG", f"{flag} {text!r}: expected NAME:DTYPE[:SHAPE], e.g. x:float32:batch,3")
    name, dtype = parts[0], parts[1]
    shape_text = parts[2].strip() if len(parts) == 3 else "*"
    shape: Any
    if shape_text == "*":
        shape = None
    elif shape_text == "":
        shape = []
    else:
        shape = []
        for dim in (d.strip() for d in shape_text.split(",")):
            if dim in ("?", "*"):
                shape.append(None)
            elif dim.isdigit():
                shape.append(int(dim))
            elif dim:
                shape.append(dim)
            else:
                raise CartonRuntimeError("E-RUNTIME-ARG", f"{flag} {text!r}: empty dimension in shape {shape_text!r}")
    return cf.TensorSpec(name, dtype, shape)


def _load_npz(path: str, flag: str) -> dict[str, Any]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (OSError, ValueError, AttributeError) as exc:
        raise CartonRuntimeError("E-RUNTIME-ARG", f"{flag}: cannot read {path} as .npz (keys = tensor names): {exc}") from None


def _load_npy(path: str, flag: str) -> Any:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise CartonRuntimeError("E-RUNTIME-ARG", f"{flag}: cannot read {path} as .npy: {exc}") from None


def _load_misc(path: str, flag: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise CartonRuntimeError("E-RUNTIME-ARG", f"{flag}: cannot read {path}: {exc.strerror or exc}") from None


def _parse_values(text: str, flag: str, *, misc_ok: bool) -> dict[str, Any]:
    """One side of a self test or example: comma-separated items, each ``FILE.npz`` (its keys
    are tensor names), ``NAME=@FILE.npy`` (one tensor) or, for examples, ``NAME=@FILE`` of
    another kind (its bytes: a misc file such as an image)."""
    values: dict[str, Any] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            raise CartonRuntimeError("E-RUNTIME-ARG", f"{flag} {text!r}: empty item")
        if "=" in item:
            name, value = _kv(item, flag)
            path = value[1:] if value.startswith("@") else value
            if path.endswith(".npy"):
                loaded: dict[str, Any] = {name: _load_npy(path, flag)}
            elif misc_ok:
                loaded = {name: _load_misc(path, flag)}
            else:
                raise CartonRuntimeError("E-RUNTIME-ARG", f"{flag} {item!r}: a self-test value is a tensor: NAME=@FILE.npy or FILE.npz")
        elif item.endswith(".npz"):
            loaded = _load_npz(item, flag)
        else:
            raise CartonRuntimeError("E-RUNTIME-ARG", f"{flag} {item!r}: expected FILE.npz or NAME=@FILE.npy")
        for name in loaded:
            if name in values:
                raise CartonRuntimeError("E-RUNTIME-ARG", f"{flag} {text!r}: {name!r} is given twice")
        values.update(loaded)
    return values


def _split_sides(text: str, flag: str) -> tuple[str, str | None]:
    sides = text.split(":")
    if len(sides) > 2 or not sides[0]:
        raise CartonRuntimeError("E-RUNTIME-ARG", f"{flag} {text!r}: expected INPUTS[:OUTPUTS] (one ':'; paths with ':' are not supported)")
    return sides[0], sides[1] if len(sides) == 2 else None


def _values_name(side: str) -> str:
    first = side.split(",")[0]
    return Path(first.split("=", 1)[1].lstrip("@") if "=" in first else first).stem


def _parse_self_test(text: str) -> cf.SelfTest:
    """``INPUTS[:EXPECTED]``, each side ``FILE.npz`` or ``NAME=@FILE.npy,...`` (see :func:`_parse_values`)."""
    inputs_text, expected_text = _split_sides(text, "--self-test")
    inputs = _parse_values(inputs_text, "--self-test", misc_ok=False)
    expected = _parse_values(expected_text, "--self-test", misc_ok=False) if expected_text else None
    return cf.SelfTest(inputs, name=_values_name(inputs_text), expected_out=expected)


def _parse_example(text: str) -> cf.Example:
    """``INPUTS:SAMPLE_OUT``, each side as for ``--self-test`` plus ``NAME=@FILE`` misc values (an image)."""
    inputs_text, out_text = _split_sides(text, "--example")
    if not out_text:
        raise CartonRuntimeError("E-RUNTIME-ARG", f"--example {text!r}: an example needs sample outputs: INPUTS:SAMPLE_OUT")
    inputs = _parse_values(inputs_text, "--example", misc_ok=True)
    return cf.Example(inputs, _parse_values(out_text, "--example", misc_ok=True), name=_values_name(inputs_text))


def _output_exists(output: str) -> cf.CartonFormatError:
    return cf.CartonFormatError("E-OUTPUT-EXISTS", f"{output} exists; pass --overwrite to replace it")


def _pack_framework_version(runner: str | None) -> str | None:
    """Without --framework-version: torchscript's default here (``*`` without torch); None (pack's
    default, the runner's: what the API records, ``=3.11`` for python) for the runners pack can
    pick from MODEL and every installed runner; ``*`` for a runner not installed here."""
    from .registry import find_runner_by_name

    if runner == "torchscript":
        return _default_framework_version()
    if runner in (None, "torch_export", "aotinductor") or find_runner_by_name(runner) is not None:
        return None
    return "*"


def _read_description(path: str) -> str:
    try:
        return Path(path).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        what = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise CartonRuntimeError("E-RUNTIME-ARG", f"--description-file: cannot read {path}: {what}") from None


def cmd_pack(args: argparse.Namespace) -> int:
    from .pack import pack

    opts = {k: _opt_value(v) for k, v in args.opt} if args.opt else None
    misc = {name: Path(value[1:] if value.startswith("@") else value) for name, value in args.misc or []}
    links: dict[str, list[str]] = {}
    for sha, url in args.link or []:
        links.setdefault(sha, []).append(url)
    inputs = [_parse_spec(text, "--input") for text in args.input_spec or []] or None
    outputs = [_parse_spec(text, "--output-spec") for text in args.output_spec or []] or None
    self_tests = [_parse_self_test(text) for text in args.self_test or []] or None
    examples = [_parse_example(text) for text in args.example or []] or None
    output = args.output or str(Path(args.model).with_suffix(".carton"))
    if not args.overwrite and (Path(output).exists() or Path(output).is_symlink()):
        raise _output_exists(output)
    try:
        path = pack(
            args.model,
            args.runner,
            args.framework_version or _pack_framework_version(args.runner),
            args.compat_version,
            opts,
            model_name=args.name,
            short_description=args.short_description,
            model_description=_read_description(args.description_file) if args.description_file else args.description,
            license=args.license,
            repository=args.repository,
            homepage=args.homepage,
            required_platforms=args.platform or None,
            inputs=inputs,
            outputs=outputs,
            self_tests=self_tests,
            examples=examples,
            misc_files=misc or None,
            linked_files=links or None,
            output_path=output,
            compression=args.compression,
            overwrite=args.overwrite,
            check_self_tests=not args.no_self_test_check,
        )
    except cf.CartonFormatError as exc:
        if exc.code == "E-OUTPUT-EXISTS":
            raise _output_exists(output) from None
        raise
    with cf.read(path, verify_hashes=False) as archive:
        manifest_sha256, runner = archive.manifest_sha256, archive.info.runner
    size = Path(path).stat().st_size
    checked = len(self_tests) if self_tests and not args.no_self_test_check else 0
    if args.json:
        _print_json(
            {
                "ok": True,
                "path": str(path),
                "size": size,
                "manifest_sha256": manifest_sha256,
                "runner": {
                    "runner_name": runner.runner_name,
                    "required_framework_version": runner.required_framework_version,
                    "runner_compat_version": runner.runner_compat_version,
                },
                "self_tests_passed": checked,
            }
        )
        return EXIT_OK
    print(f"packed {path} ({size} bytes), manifest sha256 {manifest_sha256}")
    if checked:
        print(f"{checked} self test(s) passed on the packed model")
    return EXIT_OK


# -- run ---------------------------------------------------------------------------------------------


def _parse_input(text: str, specs: dict[str, cf.TensorSpec]) -> tuple[str, Any]:
    name, value = _kv(text, "--input")
    spec = specs.get(name)
    if value.startswith("@"):
        path = Path(value[1:])
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise argparse.ArgumentTypeError(f"--input {name}: cannot read {path} as .npy: {exc}") from None
        return name, array
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = value  # a bare string
    if spec is not None and spec.dtype == "string":
        return name, np.array(parsed if isinstance(parsed, (str, list)) else value)
    if spec is not None and spec.dtype != "nested":
        try:
            return name, np.array(parsed, dtype=spec.dtype)
        except (TypeError, ValueError) as exc:
            raise argparse.ArgumentTypeError(f"--input {name}: {value!r} is not a {spec.dtype} tensor: {exc}") from None
    array = np.array(parsed)
    if array.dtype.kind == "f":
        array = array.astype(np.float32)  # the usual model dtype; pass @file.npy for others
    return name, array


def _describe_array(value: Any) -> dict[str, Any]:
    array = np.asarray(value)
    data = array.tolist()
    return {"dtype": "string" if array.dtype.kind in "UTO" else str(array.dtype), "shape": list(array.shape), "value": data}


def _print_outputs(outputs: dict[str, Any]) -> None:
    for name in sorted(outputs):
        array = np.asarray(outputs[name])
        dtype = "string" if array.dtype.kind in "UTO" else str(array.dtype)
        text = np.array2string(array, threshold=50, max_line_width=100) if array.ndim else repr(array.item())
        print(f"{name}: {dtype} {list(array.shape)}")
        for line in text.splitlines():
            print(f"  {line}")


def _load(args: argparse.Namespace) -> Any:
    from . import sync
    from .config import reverifying

    with reverifying() if args.reverify else contextlib.nullcontext():
        return sync.load(
            args.source,
            visible_device=args.device,
            override_runner_name=args.override_runner,
            override_required_framework_version=args.override_framework_version,
            isolation=args.isolation,
            call_timeout_s=args.call_timeout,
            load_timeout_s=args.load_timeout,
        )


def cmd_run(args: argparse.Namespace) -> int:
    model = _load(args)
    specs = {s.name: s for s in (model.info.inputs or [])}
    try:
        inputs = dict(_parse_input(text, specs) for text in args.input or [])
    except argparse.ArgumentTypeError as exc:
        print(f"carton run: {exc}", file=sys.stderr)
        return EXIT_USAGE
    outputs = model.infer(inputs)
    if args.save:
        out_dir = Path(args.save)
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, value in outputs.items():
            np.save(out_dir / f"{name}.npy", value)
    if args.json:
        print(json.dumps({name: _describe_array(v) for name, v in sorted(outputs.items())}, indent=2, ensure_ascii=False))
    else:
        _print_outputs(outputs)
    return EXIT_OK


# -- selftest ---------------------------------------------------------------------------------------


def cmd_selftest(args: argparse.Namespace) -> int:
    model = _load(args)
    results = model.run_self_tests()
    if args.json:
        print(
            json.dumps(
                {
                    "source": args.source,
                    "ok": all(results),
                    "tests": [
                        {"name": r.label, "passed": r.passed, "mismatches": r.mismatches, "error": r.error, "seconds": r.seconds}
                        for r in results
                    ],
                },
                indent=2,
                ensure_ascii=False,
            )
        )
    else:
        for result in results:
            print(result.summary())
        print(f"{sum(map(bool, results))}/{len(results)} self tests passed" if results else "the model has no self tests")
    return EXIT_OK if all(results) else EXIT_FAIL


# -- cache ------------------------------------------------------------------------------------------

_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([kmgt]?)(i?b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_size(text: str) -> int:
    """``--max-size``: bytes, or a number with K, M, G or T (powers of 1024; "MB", "MiB" alike)."""
    m = _SIZE.match(text)
    if m is None or (m.group(3) and m.group(3).lower() == "ib" and not m.group(2)):
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (bytes, or a number with K, M, G or T, e.g. 500M)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def _days(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"not a number of days (0 or more): {text!r}")
    return value


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


def _iso(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _cache(args: argparse.Namespace) -> Any:
    from .cache import ENV_CACHE_DIR, Cache

    cache = Cache(args.cache_dir) if args.cache_dir else Cache()
    if cache.root.exists() and not cache.root.is_dir():
        raise CartonRuntimeError("E-RUNTIME-CACHE", f"the cache root {cache.root} is not a directory (set {ENV_CACHE_DIR} or --cache-dir)")
    return cache


def _entry_json(entry: Any) -> dict[str, Any]:
    return {
        "sha256": entry.sha256,
        "size": entry.size,
        "file_size": entry.file_size,
        "url": entry.urls[0] if entry.urls else None,
        "urls": entry.urls,
        "last_used": _iso(entry.last_used),
        "last_used_unix": entry.last_used,
    }


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def cmd_cache_ls(args: argparse.Namespace) -> int:
    cache = _cache(args)
    entries = cache.entries()
    if args.json:
        _print_json({"root": str(cache.root), "entries": [_entry_json(e) for e in entries]})
        return EXIT_OK
    for e in entries:
        print(f"{e.sha256}  {human_size(e.size):>10}  {_iso(e.last_used)}  {e.urls[0] if e.urls else '-'}")
    print(f"{len(entries)} entries, {human_size(sum(e.size for e in entries))} in {cache.root}")
    return EXIT_OK


def _checked(record: dict[str, Any]) -> str | None:
    checked = record.get("checked")
    return _iso(checked) if isinstance(checked, (int, float)) and not isinstance(checked, bool) else None


def cmd_cache_info(args: argparse.Namespace) -> int:
    cache = _cache(args)
    entries = cache.entries()
    records = cache.url_records()
    total = cache.size_bytes()
    data = {
        "root": str(cache.root),
        "exists": cache.root.is_dir(),
        "total_bytes": total,
        "entries": len(entries),
        "entry_bytes": sum(e.size for e in entries),
        "url_records": len(records),
        "urls": [{"url": r["url"], "sha256": r["sha256"], "size": r.get("size"), "checked": _checked(r)} for r in records],
    }
    if args.json:
        _print_json(data)
        return EXIT_OK
    print(f"root:        {cache.root}{'' if data['exists'] else ' (does not exist yet)'}")
    print(f"total size:  {human_size(total)} ({total} bytes)")
    print(f"entries:     {len(entries)}")
    print(f"URL records: {len(records)}")
    for r in data["urls"]:
        print(f"  {r['url']} -> {r['sha256'][:16]}… (checked {r['checked'] or '?'})")
    return EXIT_OK


def cmd_cache_clear(args: argparse.Namespace) -> int:
    cache = _cache(args)
    entries, records = len(cache.entries()), len(cache.url_records())
    freed = cache.clear()
    if args.json:
        _print_json({"root": str(cache.root), "freed_bytes": freed, "entries_removed": entries, "url_records_removed": records})
    else:
        print(f"freed {human_size(freed)} ({freed} bytes): {entries} entries, {records} URL records removed from {cache.root}")
    return EXIT_OK


def cmd_cache_prune(args: argparse.Namespace) -> int:
    if args.older_than is None and args.max_size is None:
        print("carton cache prune: give --older-than DAYS and/or --max-size SIZE (carton cache clear removes everything)", file=sys.stderr)
        return EXIT_USAGE
    cache = _cache(args)
    result = cache.prune(older_than_s=None if args.older_than is None else args.older_than * 86400.0, max_size=args.max_size)
    remaining = cache.entries()
    if args.json:
        _print_json(
            {
                "root": str(cache.root),
                "removed": [_entry_json(e) for e in result.removed],
                "freed_bytes": result.freed_bytes,
                "skipped_locked": [e.sha256 for e in result.skipped],
                "remaining_entries": len(remaining),
                "total_bytes": cache.size_bytes(),
            }
        )
        return EXIT_OK
    for e in result.removed:
        print(f"removed {e.sha256}  {human_size(e.size):>10}  last used {_iso(e.last_used)}")
    for e in result.skipped:
        print(f"kept    {e.sha256}  (in use by another process)")
    print(f"freed {human_size(result.freed_bytes)} ({result.freed_bytes} bytes); {len(remaining)} entries, {human_size(cache.size_bytes())} left")
    return EXIT_OK


# -- registration -----------------------------------------------------------------------------------


def _wrap(func: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        # progress bars (stderr, on a terminal): off with --no-progress and with --json
        quiet = getattr(args, "no_progress", False) or getattr(args, "json", False)
        try:
            with progress.forced(False if quiet else None):
                return func(args)
        except CartonError as exc:
            print(f"carton {args.command}: {exc}", file=sys.stderr)
            if getattr(args, "json", False):  # the same error, machine-readable where the result would have gone
                print(json.dumps({"ok": False, "error": exc.to_finding().to_dict()}, indent=2))
            return EXIT_FAIL
        except BrokenPipeError:
            raise  # stdout closed early (carton ... | head): the entry point ends quietly
        except OSError as exc:
            if args.command != "cache":
                raise
            print(f"carton cache {args.cache_command}: {exc}", file=sys.stderr)
            return EXIT_FAIL

    return run


def _load_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="ARCHIVE_OR_URL", help="a .carton file, an unpacked carton directory, file:// or http(s):// URL")
    p.add_argument("--device", default=None, help="visible_device: cpu, a GPU index, cuda, cuda:N or a GPU-/MIG-GPU- UUID (default: GPU 0, else CPU)")
    p.add_argument("--override-runner", default=None, help="override_runner_name")
    p.add_argument("--override-framework-version", default=None, help="override_required_framework_version, e.g. '=2.13' or '*'")
    p.add_argument("--json", action="store_true", help="machine-readable output (no progress bars)")
    p.add_argument(
        "--isolation", choices=("process", "inprocess"), default=None,
        help="process: run the model in a worker process of its own (default: CARTON_ISOLATION, the config file's isolation key, else inprocess)",
    )
    p.add_argument(
        "--call-timeout", type=_seconds, default=None, metavar="SECONDS",
        help="out of process: an inference taking longer stops the worker (E-RUNTIME-TIMEOUT); default: no limit",
    )
    p.add_argument(
        "--load-timeout", type=_seconds, default=None, metavar="SECONDS",
        help="out of process: the worker's start and the model's load taking longer stop it (E-RUNTIME-TIMEOUT); default: no limit",
    )
    p.add_argument(
        "--reverify", action="store_true",
        help="hash every model file again, even one verified before and unchanged since (as CARTON_VERIFY=always)",
    )
    _progress_option(p)


def _progress_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--no-progress", action="store_true",
        help="no progress bars (shown on stderr when it is a terminal; CARTON_PROGRESS=0|1 turns them off|on)",
    )


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "pack", help="pack a model (e.g. a TorchScript file) into a .carton",
        description="Pack MODEL (for torchscript: the file written by torch.jit.save) with its metadata.",
    )
    p.add_argument("model", metavar="MODEL")
    p.add_argument("-o", "--output", help="output archive (default: MODEL with the .carton suffix)")
    p.add_argument("--runner", default=None, help="runner_name (default: from MODEL: torchscript, torch_export or aotinductor)")
    p.add_argument(
        "--framework-version",
        help="required_framework_version, e.g. '=2.13' (default: the runner's: the installed torch major.minor; python: this Python's, e.g. '=3.11')",
    )
    p.add_argument("--compat-version", type=int, default=None, help="runner_compat_version (default: the runner's)")
    p.add_argument("--opt", action="append", type=_kv_type("--opt"), metavar="KEY=VALUE", help="runner option, e.g. num_threads=4 (repeatable)")
    p.add_argument("--name", help="model_name")
    p.add_argument("--short-description")
    p.add_argument("--description", help="model_description (markdown)")
    p.add_argument("--description-file", help="read model_description from a file")
    p.add_argument("--license")
    p.add_argument("--repository")
    p.add_argument("--homepage")
    p.add_argument("--platform", action="append", metavar="TRIPLE", help="required platform target triple (repeatable)")
    p.add_argument("--misc", action="append", type=_kv_type("--misc"), metavar="NAME=@FILE", help="add a misc file (repeatable)")
    p.add_argument(
        "--link", action="append", type=_kv_type("--link"), metavar="SHA256=URL",
        help="leave the model file with this sha256 out of the zip, fetched from URL (repeatable)",
    )
    p.add_argument("--compression", choices=("stored", "zstd", "deflate"), default="stored")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument(
        "--input", "--input-spec", dest="input_spec", action="append", metavar="NAME:DTYPE:SHAPE",
        help="declare an input tensor; SHAPE '*' (any) or dims like 'batch,3' ('?' = any size) (repeatable)",
    )
    p.add_argument(
        "--output-spec", dest="output_spec", action="append", metavar="NAME:DTYPE:SHAPE",
        help="declare an output tensor, as --input (-o/--output names the archive) (repeatable)",
    )
    p.add_argument(
        "--self-test", action="append", metavar="INPUTS[:EXPECTED]",
        help="add a self test; each side FILE.npz (keys = tensor names) or NAME=@FILE.npy items, comma-separated; "
        "run on the packed model unless --no-self-test-check (repeatable)",
    )
    p.add_argument(
        "--example", action="append", metavar="INPUTS:SAMPLE_OUT",
        help="add an example; sides as for --self-test, plus NAME=@FILE for a misc value such as an image (repeatable)",
    )
    p.add_argument("--no-self-test-check", action="store_true", help="do not run the self tests before writing the archive")
    p.add_argument("--json", action="store_true", help="machine-readable result (no progress bars)")
    _progress_option(p)
    p.set_defaults(func=_wrap(cmd_pack))

    p = subparsers.add_parser(
        "run", help="load a model and run it on inputs", description="Load a model, infer once and print the outputs.",
    )
    _load_options(p)
    p.add_argument(
        "--input", action="append", metavar="NAME=VALUE",
        help="an input: NAME=@file.npy, or a JSON value / bare string, cast to the declared dtype when the model declares one (repeatable)",
    )
    p.add_argument("--save", metavar="DIR", help="also save each output as DIR/NAME.npy")
    p.set_defaults(func=_wrap(cmd_run))

    p = subparsers.add_parser(
        "selftest", help="load a model and run its self tests",
        description="Run the model's self tests; exit 1 when one fails.",
    )
    _load_options(p)
    p.set_defaults(func=_wrap(cmd_selftest))

    _register_cache(subparsers)


def _register_cache(subparsers: Any) -> None:
    cache = subparsers.add_parser(
        "cache", help="list, inspect, clear or prune the local cache",
        description="Manage the local cache (CARTON_CACHE_DIR, else cache_dir in ~/.carton/config.toml, else ~/.carton/cache). "
        "Exit codes: 0 success, 1 failure, 2 usage error.",
    )
    sub = cache.add_subparsers(dest="cache_command", metavar="SUBCOMMAND")
    sub.required = True

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--cache-dir", default=None, help="the cache root (default: CARTON_CACHE_DIR, else the config file's cache_dir, else ~/.carton/cache)"
        )
        p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser(
        "ls", help="list cached files",
        description="One line per cached file: sha256, size, last use, source URL (when known); least recently used first.",
    )
    common(p)
    p.set_defaults(func=_wrap(cmd_cache_ls))
    p = sub.add_parser(
        "info", help="where the cache is and how big",
        description="The cache root, its total size, the number of entries and the URL records.",
    )
    common(p)
    p.set_defaults(func=_wrap(cmd_cache_info))
    p = sub.add_parser(
        "clear", help="remove everything (asks nothing)",
        description="Remove every cached file, URL record and verification record; prints what was freed.",
    )
    common(p)
    p.set_defaults(func=_wrap(cmd_cache_clear))
    p = sub.add_parser(
        "prune", help="remove least recently used files",
        description="Remove cached files least recently used first: those unused for DAYS, then more until the cache is at most SIZE. "
        "A file another process holds the lock of (being produced) is kept.",
    )
    common(p)
    p.add_argument("--older-than", type=_days, metavar="DAYS", help="remove files not used for DAYS days (fractions allowed)")
    p.add_argument("--max-size", type=parse_size, metavar="SIZE", help="then remove more until the cache is at most SIZE (bytes, or e.g. 500M, 2G)")
    p.set_defaults(func=_wrap(cmd_cache_prune))


__all__ = ["register"]
