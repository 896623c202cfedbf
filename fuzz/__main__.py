"""``python -m fuzz``: run, smoke-test, replay and minimise the format layer's fuzz targets.

    python -m fuzz run --target all --seconds 600      # each target its share of the time
    python -m fuzz smoke --runs 300                    # a short fixed-seed run of every target
    python -m fuzz replay TARGET FILE...               # check inputs under the rule, no atheris
    python -m fuzz minimize TARGET FILE -o OUT         # shrink a finding, keeping its signature
    python -m fuzz worker TARGET -- LIBFUZZER_ARGS...  # one atheris process (what run starts)

Artifacts go under ``fuzz/out/`` (git-ignored) unless ``--out`` says otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "out"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["worker"]:  # before anything imports carton_format: it is instrumented here
        from .runner import worker_main

        return worker_main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="fuzz for a given time")
    run.add_argument("--target", default="all", help="'all' or comma-separated target names")
    run.add_argument("--seconds", type=float, default=600.0, help="total time, shared by the targets by weight")
    run.add_argument("--out", type=Path, default=DEFAULT_OUT)
    smoke = sub.add_parser("smoke", help="a short fixed-seed run of each target")
    smoke.add_argument("--target", default="all")
    smoke.add_argument("--runs", type=int, default=300, help="executions per target after the seeds")
    smoke.add_argument("--seconds", type=float, default=20.0, help="time cap per target")
    smoke.add_argument("--max-seeds", type=int, default=40, help="seeds replayed per target")
    smoke.add_argument("--out", type=Path, required=True)
    replay = sub.add_parser("replay", help="check inputs under the rule (no instrumentation)")
    replay.add_argument("target")
    replay.add_argument("files", nargs="+", type=Path)
    minimize = sub.add_parser("minimize", help="shrink a finding's input, keeping its signature")
    minimize.add_argument("target")
    minimize.add_argument("file", type=Path)
    minimize.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args(argv)

    from . import runner

    if args.command == "run":
        return runner.run(runner.select(args.target), args.seconds, args.out)
    if args.command == "smoke":
        return runner.smoke(runner.select(args.target), args.runs, args.seconds, args.max_seeds, args.out)
    if args.command == "replay":
        return runner.replay(args.target, args.files)
    return runner.minimize_file(args.target, args.file, args.output)


if __name__ == "__main__":
    sys.exit(main())
