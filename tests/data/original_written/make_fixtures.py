"""Regenerate the archives written by the ORIGINAL implementation, and what it reads from them.

    .venv/bin/python tests/data/original_written/make_fixtures.py

Needs the original in .venv-original (`make original`).  Our writer makes a source archive, the
original's `shrink` re-writes it (zstd members, its own zip layout; with a link for the model
weights in `linked`), and the original's `get_model_info` description of each result is stored
as JSON next to it.  The Rust writer stamps the current time into the zip, so the bytes differ on
each run; the descriptions do not (tests/format/test_interop.py checks that).
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent.parent))

from tests.helpers.samples import write_kitchen_sink  # noqa: E402
from tests.helpers.original import original_describe, original_shrink  # noqa: E402



def write_minimal(directory: Path) -> Path:
    """Only the required fields and no model file.  That does not conform (FMT-PATH-5), so our
    writer refuses it: the members of a written archive are zipped again without the model."""
    import carton_format as cf
    from tests.helpers.cartoncraft import build, members_of, write_info

    info = cf.CartonInfo(runner=cf.RunnerInfo("torchscript", "=2.13", 1))
    full = write_info(directory / "with_model.carton", info).path
    members = {name: data for name, data in members_of(full).items() if not name.startswith("model/")}
    out = directory / "minimal.carton"
    out.write_bytes(build(members))
    return out


def make(out_dir: Path) -> dict[str, Path]:
    with tempfile.TemporaryDirectory() as tmp:
        source = write_kitchen_sink(Path(tmp))
        weights = (Path(tmp) / "kitchen_sink.carton.model" / "weights" / "w.bin").read_bytes()
        made = {
            "kitchen_sink_shrunk": original_shrink(source, out_dir / "kitchen_sink_shrunk.carton"),
            "kitchen_sink_linked": original_shrink(
                source, out_dir / "kitchen_sink_linked.carton",
                {hashlib.sha256(weights).hexdigest(): "https://example.com/weights/w.bin"},
            ),
            "minimal_shrunk": original_shrink(write_minimal(Path(tmp)), out_dir / "minimal_shrunk.carton"),
        }
    return made


def describe_all(made: dict[str, Path]) -> dict[str, dict]:
    names = list(made)
    return dict(zip(names, original_describe(*made.values())))


if __name__ == "__main__":
    made = make(HERE)
    for name, description in describe_all(made).items():
        (HERE / f"{name}.json").write_text(json.dumps(description, indent=1, ensure_ascii=False, sort_keys=True) + "\n")
        print(f"{name}: {made[name].stat().st_size} bytes")
