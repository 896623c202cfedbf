"""The ``carton`` command line: validate, info and ls (the runtime adds pack, run, selftest).

Exit codes: 0 success / all valid, 1 an archive is invalid or an operation failed, 2 usage error.
Other packages add sub-commands through the ``carton.cli`` entry-point group: each entry point is
a function ``register(subparsers)`` that adds parsers whose ``func`` returns an exit code.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from importlib.metadata import entry_points
from typing import Any, Sequence

from ._signing_cli import register as register_signing
from .describe import describe_info
from .errors import CartonError, Finding
from .reader import read
from .validate import ValidationReport, internal_error, validate

log = logging.getLogger(__name__)

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


def _finding_line(source: str, finding: Finding) -> str:
    where = ""
    if finding.member:
        where += f"{finding.member}: "
    if finding.key:
        where += f"{finding.key}: "
    return f"{source}: {finding.code} {where}{finding.message}"


def _validate_one(path: str, verify_hashes: bool) -> ValidationReport:
    """validate() never raises; should it ever, the file gets an E-INTERNAL report and the
    other files are still checked and printed."""
    try:
        return validate(path, verify_hashes=verify_hashes)
    except Exception as exc:  # the other files' reports must not be lost (the traceback is logged)
        log.exception("internal error while validating %s", path)
        return ValidationReport(path, [internal_error(exc).to_finding()])


def cmd_validate(args: argparse.Namespace) -> int:
    reports = []
    for path in args.files:
        report = _validate_one(path, not args.no_verify_hashes)
        reports.append(report)
        if not args.json:  # text: each file's lines as soon as it is checked
            for finding in report.findings:
                print(_finding_line(report.source, finding))
            if report.ok:
                print(f"{report.source}: OK manifest {report.manifest_sha256}")
            sys.stdout.flush()
    if args.json:
        print(json.dumps({"ok": all(r.ok for r in reports), "files": [r.to_dict() for r in reports]}, indent=2))
    return EXIT_OK if all(r.ok for r in reports) else EXIT_INVALID


def _fail(source: str, exc: CartonError, as_json: bool) -> int:
    if as_json:
        print(json.dumps({"file": source, "ok": False, "error": exc.to_finding().to_dict()}, indent=2))
    else:
        print(_finding_line(source, exc.to_finding()), file=sys.stderr)
    return EXIT_INVALID


def cmd_info(args: argparse.Namespace) -> int:
    try:
        with read(args.file, verify_hashes=False) as archive:
            described = describe_info(archive.info)
            out: dict[str, Any] = {"file": args.file, "manifest_sha256": archive.manifest_sha256, **described}
    except CartonError as exc:
        return _fail(args.file, exc, args.json)
    except Exception as exc:  # a bug of ours: still one answer in the asked format (the traceback is logged)
        log.exception("internal error while reading %s", args.file)
        return _fail(args.file, internal_error(exc), args.json)
    if args.json:
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return EXIT_OK
    _print_info(out)
    return EXIT_OK


def _print_info(out: dict[str, Any]) -> None:
    runner = out["runner"]
    print(f"file:            {out['file']}")
    print(f"manifest sha256: {out['manifest_sha256']}")
    for key in ("model_name", "short_description", "license", "repository", "homepage"):
        if out.get(key) is not None:
            print(f"{key + ':':<17}{out[key]}")
    print(
        f"runner:          {runner['runner_name']} {runner['required_framework_version']} "
        f"(compat {runner['runner_compat_version']})"
    )
    if runner["opts"]:
        print(f"runner opts:     {json.dumps(runner['opts'])}")
    if out["required_platforms"]:
        print(f"platforms:       {', '.join(out['required_platforms'])}")
    for label in ("inputs", "outputs"):
        for spec in out[label] or []:
            print(f"{label[:-1]:<7}          {spec['name']}: {spec['dtype']} {json.dumps(spec['shape'])}")
    print(f"self tests:      {len(out['self_tests'] or [])}")
    print(f"examples:        {len(out['examples'] or [])}")
    for name, misc in (out["misc_files"] or {}).items():
        print(f"misc file:       {name} ({misc['misc_size']} bytes)")
    if out.get("model_description"):
        print("\n" + out["model_description"])


def cmd_ls(args: argparse.Namespace) -> int:
    try:
        return _ls(args)
    except CartonError as exc:
        return _fail(args.file, exc, args.json)
    except Exception as exc:  # a bug of ours: still one answer in the asked format (the traceback is logged)
        log.exception("internal error while listing %s", args.file)
        return _fail(args.file, internal_error(exc), args.json)


def _ls(args: argparse.Namespace) -> int:
    archive = read(args.file, verify_hashes=False)
    rows = []
    all_ok = True
    with archive:
        for member in archive.members():
            status = "linked" if not member.in_zip else "unchecked"
            if member.in_zip and not args.no_verify_hashes:
                try:
                    with archive.open(member.path) as stream:
                        while stream.read(4 << 20):
                            pass
                    status = "ok"
                except CartonError as exc:
                    status = exc.code
                    all_ok = False
            rows.append(
                {
                    "path": member.path,
                    "size": member.size,
                    "compressed_size": member.compressed_size,
                    "method": member.method,
                    "symlink_to": member.symlink_to,
                    "sha256": member.sha256,
                    "hash_status": status,
                    "linked_urls": list(member.linked_urls),
                }
            )
    if args.json:
        print(json.dumps({"file": args.file, "manifest_sha256": archive.manifest_sha256, "members": rows}, indent=2, ensure_ascii=False))
    else:
        for row in rows:
            size = "-" if row["size"] is None else str(row["size"])
            method = row["method"] or "-"
            extra = f" -> {row['symlink_to']}" if row["symlink_to"] else ""
            extra += f" [{row['linked_urls'][0]}]" if row["linked_urls"] else ""
            print(f"{size:>12}  {method:<7}  {row['hash_status']:<10}  {row['path']}{extra}")
    return EXIT_OK if all_ok else EXIT_INVALID


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="carton", description="Inspect, validate (and with carton_runtime: pack and run) Carton v1 archives.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser(
        "validate",
        help="check archives against the v1 spec",
        description="Check archives; one line per finding (FILE: CODE message). Exit 0 when all are valid, 1 when any is invalid.",
    )
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--json", action="store_true", help="machine-readable report")
    p.add_argument("--no-verify-hashes", action="store_true", help="skip the deep MANIFEST hash check")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("info", help="show an archive's metadata", description="Show metadata (reads only the metadata members).")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser(
        "ls",
        help="list members, sizes, methods and hash status",
        description="List every MANIFEST path with its size, compression method and hash status.",
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--no-verify-hashes", action="store_true", help="do not hash members (status 'unchecked')")
    p.set_defaults(func=cmd_ls)

    register_signing(sub)  # carton sign / verify (the 'signing' extra is imported when they run)

    for ep in entry_points(group="carton.cli"):
        try:
            ep.load()(sub)
        except Exception as exc:  # noqa: BLE001 - a broken plug-in must not break the core commands
            log.warning("could not load CLI commands from %s: %s", ep.value, exc)
    return parser


def _stdout_to_devnull() -> None:
    """Point stdout at devnull, so the interpreter's last flush of a closed pipe is quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no file descriptor (a test's captured stdout)
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its exit code.  A reader closing stdout early (``carton info --json F |
    head -3``) ends it quietly with exit 1, for every command (the Python docs' "Note on SIGPIPE")."""
    try:
        try:
            code = _main(argv)
        except SystemExit:  # argparse's --help and usage errors: their output may meet a closed pipe too
            sys.stdout.flush()
            raise
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's flush at exit
        return code
    except BrokenPipeError:
        _stdout_to_devnull()
        return EXIT_INVALID


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING - 10 * min(args.verbose, 2), format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except CartonError as exc:
        print(f"carton: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except KeyboardInterrupt:
        return 130

__all__ = [
    "build_parser",
    "cmd_info",
    "cmd_ls",
    "cmd_validate",
    "main",
]


if __name__ == "__main__":
    sys.exit(main())
