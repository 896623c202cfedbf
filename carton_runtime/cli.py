"""``carton pack``, ``carton run`` and ``carton selftest`` (added to the ``carton`` command
through the ``carton.cli`` entry-point group).

Exit codes: 0 success, 1 failure (a failing self test, an invalid archive, a load or inference
error), 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

import carton_format as cf

from .errors import CartonError

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def _kv(text: str, what: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"{what} must look like NAME=VALUE, not {text!r}")
    key, value = text.split("=", 1)
    if not key:
        raise argparse.ArgumentTypeError(f"{what} needs a name before '=': {text!r}")
    return key, value


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
    from .registry import find_runner_by_name, to_semver

    runner = find_runner_by_name("torchscript")  # usable runners only
    if runner is None:
        return "*"
    version = str(runner.framework_version)
    core = to_semver(version).split("+")[0].split("-")[0].split(".")
    return "=" + ".".join(core[:2])


# -- pack ------------------------------------------------------------------------------------------


def cmd_pack(args: argparse.Namespace) -> int:
    from .pack import pack

    opts = dict(_kv(o, "--opt") for o in args.opt) if args.opt else None
    if opts:
        opts = {k: _opt_value(v) for k, v in opts.items()}
    misc = {}
    for item in args.misc or []:
        name, value = _kv(item, "--misc")
        misc[name] = Path(value[1:] if value.startswith("@") else value)
    links: dict[str, list[str]] = {}
    for item in args.link or []:
        sha, url = _kv(item, "--link")
        links.setdefault(sha, []).append(url)
    output = args.output or str(Path(args.model).with_suffix(".carton"))
    path = pack(
        args.model,
        args.runner,
        args.framework_version or (_default_framework_version() if args.runner == "torchscript" else "*"),
        args.compat_version,
        opts,
        model_name=args.name,
        short_description=args.short_description,
        model_description=Path(args.description_file).read_text() if args.description_file else args.description,
        license=args.license,
        repository=args.repository,
        homepage=args.homepage,
        required_platforms=args.platform or None,
        misc_files=misc or None,
        linked_files=links or None,
        output_path=output,
        compression=args.compression,
        overwrite=args.overwrite,
    )
    with cf.read(path, verify_hashes=False) as archive:
        print(f"packed {path} ({Path(path).stat().st_size} bytes), manifest sha256 {archive.manifest_sha256}")
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

    return sync.load(
        args.source,
        visible_device=args.device,
        override_runner_name=args.override_runner,
        override_required_framework_version=args.override_framework_version,
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


# -- registration -----------------------------------------------------------------------------------


def _wrap(func: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except CartonError as exc:
            print(f"carton {args.command}: {exc}", file=sys.stderr)
            return EXIT_FAIL

    return run


def _load_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="ARCHIVE_OR_URL", help="a .carton file, an unpacked carton directory, file:// or http(s):// URL")
    p.add_argument("--device", default=None, help="visible_device: cpu, a GPU index or a GPU-/MIG-GPU- UUID (default: GPU 0, else CPU)")
    p.add_argument("--override-runner", default=None, help="override_runner_name")
    p.add_argument("--override-framework-version", default=None, help="override_required_framework_version, e.g. '=2.13' or '*'")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "pack", help="pack a model (e.g. a TorchScript file) into a .carton",
        description="Pack MODEL (for torchscript: the file written by torch.jit.save) with its metadata.",
    )
    p.add_argument("model", metavar="MODEL")
    p.add_argument("-o", "--output", help="output archive (default: MODEL with the .carton suffix)")
    p.add_argument("--runner", default="torchscript", help="runner_name (default: torchscript)")
    p.add_argument("--framework-version", help="required_framework_version, e.g. '=2.13' (default: the installed torch major.minor)")
    p.add_argument("--compat-version", type=int, default=None, help="runner_compat_version (default: the runner's)")
    p.add_argument("--opt", action="append", metavar="KEY=VALUE", help="runner option, e.g. num_threads=4 (repeatable)")
    p.add_argument("--name", help="model_name")
    p.add_argument("--short-description")
    p.add_argument("--description", help="model_description (markdown)")
    p.add_argument("--description-file", help="read model_description from a file")
    p.add_argument("--license")
    p.add_argument("--repository")
    p.add_argument("--homepage")
    p.add_argument("--platform", action="append", metavar="TRIPLE", help="required platform target triple (repeatable)")
    p.add_argument("--misc", action="append", metavar="NAME=@FILE", help="add a misc file (repeatable)")
    p.add_argument(
        "--link", action="append", metavar="SHA256=URL", help="leave the model file with this sha256 out of the zip, fetched from URL (repeatable)"
    )
    p.add_argument("--compression", choices=("stored", "zstd", "deflate"), default="stored")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
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


__all__ = ["register"]
