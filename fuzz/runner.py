"""Running the targets: atheris workers, a time-shared run of many targets, smoke runs, replay
and minimisation of findings.

One worker process fuzzes one target (``python -m fuzz worker``): it imports ``carton_format``
under atheris' instrumentation and hands libFuzzer a test function that applies the rule of
``targets.check``.  A finding stops libFuzzer, so :func:`run` restarts the worker for the rest of
the target's time, telling it the signatures found so far: it then skips those and can find the
next one.  Findings already reported and not yet fixed (``fuzz/findings/known.json``, status
``open``) are skipped the same way, so that a smoke run inside ``make test`` stays green while
their owners fix them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import archive_spec

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FINDINGS = HERE / "findings"
KNOWN_FILE = FINDINGS / "known.json"
DICTS = {
    "validate": "zip.dict",
    "zip": "zip.dict",
    "archive": "toml.dict",
    "toml": "toml.dict",
    "index": "toml.dict",
    "links": "toml.dict",
    "manifest": "manifest.dict",
    "versionreq": "versionreq.dict",
}
#: libFuzzer's hard limits: an input running this long is a hang, a worker above this RSS an OOM.
HANG_TIMEOUT_S = 60
RSS_LIMIT_MB = 2048
MAX_RESTARTS = 25
_INSTRUMENTED = ("carton_format", "tomli")


# -- the worker ----------------------------------------------------------------------------------


def _import_instrumented() -> None:
    """Import every module of carton_format (and tomli) with atheris' coverage instrumentation."""
    import importlib
    import pkgutil

    import atheris

    with atheris.instrument_imports(include=list(_INSTRUMENTED)):
        import tomli  # noqa: F401 - imported to be instrumented

        import carton_format

        for module in pkgutil.walk_packages(carton_format.__path__, "carton_format."):
            importlib.import_module(module.name)


def worker_main(argv: list[str]) -> int:
    """``worker TARGET [--known FILE] [--crash-dir DIR] -- LIBFUZZER_ARGS``: fuzz one target."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m fuzz worker")
    parser.add_argument("target")
    parser.add_argument("--known", type=Path)
    parser.add_argument("--crash-dir", type=Path, required=True)
    own, _, libfuzzer_args = _split(argv)
    args = parser.parse_args(own)
    _import_instrumented()
    import atheris

    from . import targets

    target = targets.ALL_TARGETS[args.target]
    known = frozenset(json.loads(args.known.read_text("utf-8"))) if args.known else frozenset()
    _warm_up(target)

    def test_one_input(data: bytes) -> None:
        try:
            targets.check(target, data, known=known)
        except Exception as exc:
            targets.record(args.crash_dir, target, data, exc)
            raise

    kwargs: dict[str, Any] = {}
    if target.structured:
        kwargs["custom_mutator"] = lambda data, max_size, seed: archive_spec.mutate(data, max_size, seed, atheris.Mutate)
        kwargs["custom_crossover"] = archive_spec.crossover
    atheris.Setup([sys.argv[0], *libfuzzer_args], test_one_input, **kwargs)
    atheris.Fuzz()
    return 0  # pragma: no cover - atheris.Fuzz() exits the process


def _split(argv: list[str]) -> tuple[list[str], str, list[str]]:
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], "--", argv[i + 1 :]
    return argv, "", []


def _warm_up(target: Any) -> None:
    """One untimed call: lazy imports and compiled schemas must not count against the bound."""
    from carton_format.errors import CartonError

    for data in (b"", archive_spec.encode(archive_spec.ArchiveSpec())):
        try:
            target.run(data)
        except CartonError:
            pass
        except Exception:  # noqa: BLE001 - a finding on the empty input is found again by the fuzzer
            pass


# -- running workers -----------------------------------------------------------------------------


@dataclass
class Finding:
    """One unique finding of a run."""

    target: str
    signature: str
    input: str
    traceback: str = ""


@dataclass
class TargetStats:
    """What the runs of one target did."""

    target: str
    seconds: float = 0.0
    executions: int = 0
    new_units: int = 0
    corpus_size: int = 0
    restarts: int = 0
    skipped_known: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


def select(spec: str) -> list[str]:
    """Target names from ``all`` or a comma-separated list."""
    from . import targets

    if spec == "all":
        return list(targets.TARGETS)
    names = [n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in targets.ALL_TARGETS]
    if unknown:
        raise SystemExit(f"unknown fuzz target(s) {', '.join(unknown)}; known: {', '.join(targets.TARGETS)}")
    return names


def known_signatures(target: str) -> list[str]:
    """Signatures of the open findings reported for ``target`` (fuzz/findings/known.json)."""
    if not KNOWN_FILE.exists():
        return []
    entries = json.loads(KNOWN_FILE.read_text("utf-8"))
    return [e["signature"] for e in entries if e["target"] == target and e.get("status", "open") == "open"]


def _stat(log: str, name: str) -> int:
    match = re.search(rf"stat::{name}:\s*(\d+)", log)
    return int(match.group(1)) if match else 0


def _last_status_count(log: str) -> int:
    counts = re.findall(r"^#(\d+)\s", log, flags=re.MULTILINE)
    return int(counts[-1]) if counts else 0


def _libfuzzer_finding(target: str, log: str, crash_dir: Path) -> Finding | None:
    """A finding libFuzzer itself reported (a hang, out of memory, a signal): no Python traceback."""
    kind = None
    if "ALARM: working on the last Unit" in log or "libFuzzer: timeout" in log:
        kind = "hang (libFuzzer -timeout)"
    elif "out-of-memory" in log:
        kind = "out of memory (libFuzzer -rss_limit_mb)"
    elif "deadly signal" in log:
        kind = "deadly signal"
    if kind is None:
        return None
    match = re.search(r"Test unit written to (\S+)", log)
    name = ""
    if match and Path(match.group(1)).exists():
        crash_dir.mkdir(parents=True, exist_ok=True)
        copy = crash_dir / f"{target}-{Path(match.group(1)).name}.input"
        shutil.copyfile(match.group(1), copy)
        name = copy.name
    return Finding(target, kind, name, log[-4000:])


def _worker_command(target: str, known: Path, crash_dir: Path, libfuzzer_args: list[str]) -> list[str]:
    return [sys.executable, "-m", "fuzz", "worker", target, "--known", str(known), "--crash-dir", str(crash_dir), "--", *libfuzzer_args]


def _fuzz_target(
    target: str, seconds: float, out: Path, seed_dir: Path, *, extra_args: list[str], corpus: Path, session_known: list[str]
) -> TargetStats:
    """Fuzz one target for ``seconds``, restarting the worker after each new finding."""
    from . import targets

    info = targets.ALL_TARGETS[target]
    stats = TargetStats(target)
    crash_dir = out / "crashes"
    artifacts = out / "artifacts" / target
    logs = out / "logs"
    for folder in (corpus, artifacts, logs, crash_dir):
        folder.mkdir(parents=True, exist_ok=True)
    known = list(dict.fromkeys([*known_signatures(target), *session_known]))
    stats.skipped_known = list(known)
    deadline = time.monotonic() + seconds
    while True:
        remaining = deadline - time.monotonic()
        if remaining < 2 or stats.restarts > MAX_RESTARTS:
            break
        known_file = out / f"known-{target}.json"
        known_file.write_text(json.dumps(known), "utf-8")
        args = [
            str(corpus),
            str(seed_dir),
            f"-max_total_time={max(int(remaining), 1)}",
            f"-max_len={info.max_len}",
            f"-timeout={HANG_TIMEOUT_S}",
            f"-rss_limit_mb={RSS_LIMIT_MB}",
            f"-artifact_prefix={artifacts}/",
            "-print_final_stats=1",
            *extra_args,
        ]
        if target in DICTS:
            args.append(f"-dict={HERE / 'dicts' / DICTS[target]}")
        before = {p.name for p in crash_dir.glob(f"{target}-*.json")}
        started = time.monotonic()
        log_path = logs / f"{target}-{stats.restarts}.log"
        with open(log_path, "w", encoding="utf-8", errors="replace") as log_file:
            try:
                returncode = subprocess.run(
                    _worker_command(target, known_file, crash_dir, args),
                    cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONHASHSEED": "0"},
                    timeout=remaining + HANG_TIMEOUT_S + 120, check=False,
                ).returncode
            except subprocess.TimeoutExpired:  # libFuzzer's own -timeout did not fire: a hang all the same
                returncode = -1
                log_file.write("\nALARM: working on the last Unit (the runner killed the worker)\n")
        stats.seconds += time.monotonic() - started
        log = log_path.read_text("utf-8", errors="replace")
        stats.executions += _stat(log, "number_of_executed_units") or _last_status_count(log)
        stats.new_units += _stat(log, "new_units_added")
        if returncode == 0:
            break
        new = sorted({p.name for p in crash_dir.glob(f"{target}-*.json")} - before)
        found = [_finding_from(crash_dir / name) for name in new]
        if not found:
            lib = _libfuzzer_finding(target, log, crash_dir)
            if lib is None:
                raise RuntimeError(f"the {target} worker failed (exit {returncode}) without a finding; see {log_path}")
            found = [lib]
        for finding in found:
            if finding.signature not in known:
                stats.findings.append(finding)
                known.append(finding.signature)
        stats.restarts += 1
        if extra_args and any(a.startswith("-runs=") for a in extra_args):
            break  # a fixed-length run (smoke) ends at its first finding
    stats.corpus_size = sum(1 for _ in corpus.iterdir())
    return stats


def _finding_from(path: Path) -> Finding:
    data = json.loads(path.read_text("utf-8"))
    return Finding(data["target"], data["signature"], data["input"], data["traceback"])


def _report(stats: list[TargetStats], out: Path, title: str) -> None:
    summary = {"title": title, "targets": [asdict(s) for s in stats]}
    (out / "summary.json").write_text(json.dumps(summary, indent=2), "utf-8")
    print(f"\n{title}")
    print(f"{'target':<12} {'seconds':>8} {'executions':>11} {'exec/s':>8} {'new units':>10} {'corpus':>7}  findings")
    for s in stats:
        rate = s.executions / s.seconds if s.seconds else 0.0
        print(f"{s.target:<12} {s.seconds:>8.0f} {s.executions:>11} {rate:>8.1f} {s.new_units:>10} {s.corpus_size:>7}  {len(s.findings)}")
        for f in s.findings:
            print(f"    {f.signature}  ->  {out / 'crashes' / f.input}")
    total_s = sum(s.seconds for s in stats)
    print(f"{'total':<12} {total_s:>8.0f} {sum(s.executions for s in stats):>11}")
    print(f"summary: {out / 'summary.json'}")


def _prepare_seeds(names: list[str], out: Path, max_seeds: int | None = None) -> dict[str, Path]:
    from . import seeds, targets

    seed_root = out / "seeds"
    if seed_root.exists():
        shutil.rmtree(seed_root)
    folders = seeds.write_seeds(seed_root, {n: targets.ALL_TARGETS[n].max_len for n in names})
    if max_seeds is not None:
        for folder in folders.values():
            files = sorted(folder.iterdir())
            step = max(len(files) / max_seeds, 1.0)
            keep = {files[int(i * step)] for i in range(min(max_seeds, len(files)))}
            for f in files:
                if f not in keep:
                    f.unlink()
    return folders


def run(names: list[str], seconds: float, out: Path) -> int:
    """Fuzz ``names`` for ``seconds`` in all, each target its share by weight; exit 1 on findings."""
    from . import targets

    out.mkdir(parents=True, exist_ok=True)
    seed_dirs = _prepare_seeds(names, out)
    weights = {n: targets.ALL_TARGETS[n].weight for n in names}
    total_weight = sum(weights.values())
    all_stats = []
    start = time.monotonic()
    for i, name in enumerate(names):
        left = seconds - (time.monotonic() - start)
        share = left * weights[name] / sum(weights[n] for n in names[i:])
        print(f"fuzzing {name} for {share:.0f} s ({weights[name]}/{total_weight} of {seconds:.0f} s)", flush=True)
        stats = _fuzz_target(name, share, out, seed_dirs[name], extra_args=[], corpus=out / "corpus" / name, session_known=[])
        all_stats.append(stats)
        print(f"  {stats.executions} executions in {stats.seconds:.0f} s, {len(stats.findings)} finding(s)", flush=True)
    _report(all_stats, out, f"fuzz run: {seconds:.0f} s over {len(names)} target(s)")
    return 1 if any(s.findings for s in all_stats) else 0


def smoke(names: list[str], runs: int, seconds: float, max_seeds: int, out: Path) -> int:
    """A short, fixed-seed run of each target (fresh corpus); exit 1 on a new finding."""
    out.mkdir(parents=True, exist_ok=True)
    seed_dirs = _prepare_seeds(names, out, max_seeds)
    all_stats = []
    for name in names:
        corpus = out / "corpus" / name
        if corpus.exists():
            shutil.rmtree(corpus)
        seeds_here = sum(1 for _ in seed_dirs[name].iterdir())
        stats = _fuzz_target(
            name, seconds, out, seed_dirs[name],
            extra_args=["-seed=1", f"-runs={runs + seeds_here}"], corpus=corpus, session_known=[],
        )
        all_stats.append(stats)
    _report(all_stats, out, f"fuzz smoke: -seed=1, {runs} runs after the seeds, at most {seconds:.0f} s per target")
    for s in all_stats:
        for f in s.findings:
            print(f"\n--- {f.target}: {f.signature}\n{f.traceback}", file=sys.stderr)
    return 1 if any(s.findings for s in all_stats) else 0


# -- replay and minimisation ---------------------------------------------------------------------


def outcome(target: str, data: bytes) -> str | None:
    """None when ``data`` passes the rule, else the finding's signature (no instrumentation)."""
    from . import targets

    try:
        targets.check(targets.ALL_TARGETS[target], data)
    except Exception as exc:  # noqa: BLE001 - the finding is the result
        return targets.signature(exc)
    return None


def replay(target: str, files: list[Path]) -> int:
    """Check each file under the rule; print tracebacks of findings; exit 1 if any."""
    import traceback

    from . import targets

    failed = 0
    for path in files:
        try:
            targets.check(targets.ALL_TARGETS[target], path.read_bytes())
            print(f"{path}: ok")
        except Exception as exc:  # noqa: BLE001 - reported
            failed += 1
            print(f"{path}: {targets.signature(exc)}")
            traceback.print_exception(exc)
    return 1 if failed else 0


def _ddmin(data: bytes, still_fails: Any, budget_s: float) -> bytes:
    """Delta debugging over bytes: drop chunks while ``still_fails`` holds (within a time budget)."""
    deadline = time.monotonic() + budget_s
    chunk = max(len(data) // 2, 1)
    while chunk >= 1 and time.monotonic() < deadline:
        i = 0
        shrunk = False
        while i < len(data) and time.monotonic() < deadline:
            candidate = data[:i] + data[i + chunk :]
            if still_fails(candidate):
                data = candidate
                shrunk = True
            else:
                i += chunk
        if not shrunk:
            chunk //= 2
    return data


def minimize(target: str, data: bytes, budget_s: float = 120.0) -> bytes:
    """A smaller input with the same finding signature (structure first for ``archive``)."""
    wanted = outcome(target, data)
    if wanted is None:
        raise ValueError("the input does not fail: nothing to minimise")

    def fails(candidate: bytes) -> bool:
        return outcome(target, candidate) == wanted

    if target == "archive" and (spec := archive_spec.decode(data)) is not None:
        deadline = time.monotonic() + budget_s
        i = 0
        while i < len(spec.members) and time.monotonic() < deadline:  # drop whole members
            trial = archive_spec.ArchiveSpec(spec.members[:i] + spec.members[i + 1 :], spec.flags)
            if fails(archive_spec.encode(trial)):
                spec = trial
            else:
                i += 1
        for m in spec.members:  # then shrink each member's content
            original = m.data

            def member_fails(candidate: bytes, m: archive_spec.Member = m, original: bytes = original) -> bool:
                m.data = candidate
                ok = fails(archive_spec.encode(spec))
                m.data = original
                return ok

            m.data = _ddmin(original, member_fails, max(deadline - time.monotonic(), 1.0) / max(len(spec.members), 1))
        return archive_spec.encode(spec)
    return _ddmin(data, fails, budget_s)


def minimize_file(target: str, path: Path, output: Path) -> int:
    """Minimise ``path`` into ``output``."""
    data = path.read_bytes()
    small = minimize(target, data)
    output.write_bytes(small)
    print(f"{path}: {len(data)} -> {len(small)} bytes, {outcome(target, small)}; written to {output}")
    return 0


__all__ = ["Finding", "TargetStats", "minimize", "outcome", "replay", "run", "select", "smoke", "worker_main"]
