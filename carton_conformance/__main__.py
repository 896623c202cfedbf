"""``python -m carton_conformance``: run the suite against an adapter, regenerate cases, report coverage.

    python -m carton_conformance run --adapter "CMD" [--only PATTERN] [--report report.json] [--junit junit.xml]
                              [--known-failures FILE] [--strict-known-failures] [--write-known-failures FILE]
                              [--markdown] [--timeout S] [--one-shot] [-v]
    python -m carton_conformance list [--only PATTERN]
    python -m carton_conformance coverage [--spec spec/format-v1.md]
    python -m carton_conformance generate [--out DIR]

``--adapter builtin`` runs this repository's implementation, ``--adapter original`` the original
(cartonml-nightly in .venv-original, or $CARTON_ORIGINAL_PYTHON).  Exit status of ``run``: 0 when
no case failed unexpectedly, 1 otherwise, 2 for a usage error or an adapter that cannot start.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import harness


def _run(args: argparse.Namespace) -> int:
    cases = harness.select(harness.load_cases(args.cases), args.only)
    if not cases:
        print("no case matches", file=sys.stderr)
        return 2
    known = harness.load_known_failures(args.known_failures)
    missing = [p for p in known if not any(harness.known_reason(c.id, {p: ""}) is not None for c in harness.load_cases(args.cases))]
    if missing:
        print(f"--known-failures names cases that do not exist: {', '.join(missing)}", file=sys.stderr)
        return 2
    try:
        adapter = harness.Adapter(args.adapter, persistent=False if args.one_shot else None)
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 2

    def progress(result: harness.Result) -> None:
        if args.verbose or result.status == "failed":
            print(f"{result.status.upper():<13} {result.case.id}" + (f"  ({result.reason[:200]})" if result.reason else ""),
                  file=sys.stderr, flush=True)

    try:
        run = harness.run_cases(cases, adapter, timeout=args.timeout, known=known, progress=progress)
    finally:
        adapter.close()
    print(harness.format_summary(run, args.strict_known_failures))
    if args.markdown:
        print()
        print(harness.format_markdown(run), end="")
    if args.report:
        Path(args.report).write_text(json.dumps(run.to_json(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    if args.junit:
        harness.write_junit(run, Path(args.junit))
    if args.write_known_failures:
        Path(args.write_known_failures).write_text(harness.known_failures_toml(run), encoding="utf-8")
    return 1 if run.unexpected(args.strict_known_failures) else 0


def _list(args: argparse.Namespace) -> int:
    for case in harness.select(harness.load_cases(args.cases), args.only):
        print(f"{case.id}\t{case.expect['result']}\t{','.join(case.requirements)}\t{case.description}")
    return 0


def _coverage(args: argparse.Namespace) -> int:
    cov = harness.coverage(harness.load_cases(args.cases), args.spec)
    known = set(harness.spec_requirements(args.spec))
    uncovered = [req for req, ids in cov.items() if req in known and not ids]
    unknown = sorted(req for req in cov if req not in known)
    for req, ids in cov.items():
        if req in known:
            print(f"{req:<16} {len(ids):>4}  {ids[0] if ids else '-- NO CASE --'}")
    print(f"{len(known) - len(uncovered)} of {len(known)} requirements have at least one case")
    if unknown:
        print(f"cases cite requirements the spec does not have: {', '.join(unknown)}")
    return 1 if uncovered or unknown else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m carton_conformance", description="Carton v1 conformance suite")
    parser.add_argument("--cases", type=Path, default=harness.CASES_DIR, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the cases against an adapter")
    run.add_argument("--adapter", required=True, help='adapter command line, or "builtin" / "original"')
    run.add_argument("--only", action="append", metavar="PATTERN", help="case id glob or substring (repeatable)")
    run.add_argument("--report", metavar="FILE", help="write per-case results and totals as JSON")
    run.add_argument("--junit", metavar="FILE", help="write a JUnit XML report")
    run.add_argument("--known-failures", type=Path, metavar="FILE", help="TOML [known-failures] table: case id or glob = reason")
    run.add_argument("--strict-known-failures", action="store_true", help="also fail when a known failure passes")
    run.add_argument("--write-known-failures", metavar="FILE", help="write every failing case as a known-failures file")
    run.add_argument("--markdown", action="store_true", help="also print the summary as a Markdown table")
    run.add_argument("--timeout", type=float, default=20.0, help="seconds per case (infer cases get 3x); default 20")
    run.add_argument("--one-shot", action="store_true", help="one process per case even if the adapter can serve")
    run.add_argument("-v", "--verbose", action="store_true", help="print every case as it runs")
    lst = sub.add_parser("list", help="list the cases")
    lst.add_argument("--only", action="append", metavar="PATTERN")
    cov = sub.add_parser("coverage", help="spec requirements and the cases that cite them")
    cov.add_argument("--spec", type=Path, default=harness.REPO / "spec" / "format-v1.md")
    gen = sub.add_parser("generate", help="regenerate carton_conformance/cases deterministically")
    gen.add_argument("--out", type=Path, default=harness.CASES_DIR)
    args = parser.parse_args(argv)
    if args.command == "run":
        return _run(args)
    if args.command == "list":
        return _list(args)
    if args.command == "coverage":
        return _coverage(args)
    from .generate import generate

    reg = generate(args.out)
    print(f"wrote {len(reg.cases)} cases to {args.out}")
    return 0

__all__ = ["main"]


if __name__ == "__main__":
    sys.exit(main())
